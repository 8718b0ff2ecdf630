import AccessFleet
import AccessRuntime
import AccessTestSupport
import Glibc
import Synchronization
import Testing

// Figures, not checks: run with ACCESS_FLEET_FIGURES=1 (and ACCESS_FLEET_FIGURES_COUNT=N, default
// 2000) to print the publish → acknowledgement and publish → reader latencies on a 3-node loopback
// cluster, and the client's memory. Nothing here asserts a time.
//
//     ACCESS_FLEET_FIGURES=1 swift test --filter FleetFigures

private func residentKiB() -> Int {
    guard let text = readTextFile("/proc/self/status") else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(String(line.filter(\.isNumber))) ?? 0
    }
    return 0
}

private func threads() -> Int {
    guard let text = readTextFile("/proc/self/status") else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix("Threads:") {
        return Int(String(line.filter(\.isNumber))) ?? 0
    }
    return 0
}

private func percentiles(_ values: [UInt64]) -> String {
    let sorted = values.sorted()
    func p(_ q: Double) -> String {
        let v = sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))]
        return String(format3(Double(v) / 1000)) + " µs"
    }
    return "p50 \(p(0.5)), p90 \(p(0.9)), p99 \(p(0.99)), max \(String(format3(Double(sorted.last ?? 0) / 1000))) µs (n=\(sorted.count))"
}

private func format3(_ x: Double) -> String {
    let rounded = (x * 10).rounded() / 10
    return String(rounded)
}

@Suite("Fleet figures (ACCESS_FLEET_FIGURES=1)", .serialized, .enabled(if: getenv("ACCESS_FLEET_FIGURES") != nil))
struct FleetFigures {
    @Test("publish → ack and publish → reader latency on a 3-node loopback cluster; client memory")
    func latencyAndMemory() throws {
        let count = getenv("ACCESS_FLEET_FIGURES_COUNT").flatMap { Int(String(cString: $0)) } ?? 2000
        let cluster = try NatsCluster(nodes: 3)
        let rssBefore = residentKiB()
        let threadsBefore = threads()
        let office = try NatsConnection(FleetConnectionOptions(servers: cluster.urls, name: "office", user: "office",
                                                               passwordFile: cluster.passwordFile(for: "office")))
        let ctl = try NatsConnection(FleetConnectionOptions(servers: cluster.urls, name: "ctl-1", user: "ctl-1",
                                                            passwordFile: cluster.passwordFile(for: "ctl-1")))
        let spec = StreamSpec(name: "ROSTER_xfl", subjects: ["access.xfl.roster"], replicas: 3)
        var ensured = false
        for _ in 0..<100 where !ensured {
            do { try office.ensureStream(spec); ensured = true } catch { usleep(100_000) }
        }
        let bucket = try KeyValueBucket.ensure(BucketSpec(name: "access_xfl_controllers", replicas: 3), on: office)
        let reader = ctl.read(stream: "ROSTER_xfl", filter: "access.xfl.roster")
        let rssConnected = residentKiB()
        let threadsConnected = threads()

        let sent = Mutex<[UInt64: UInt64]>([:])
        let readLatencies = Mutex<[UInt64]>([])
        let done = Atomic<Int>(0)
        let thread = try NamedThread.start(name: "figures-reader") {
            while done.load(ordering: .relaxed) < count {
                guard let m = try? reader.next(timeout: .seconds(5)) else { continue }
                let now = monotonicNanos()
                if let at = sent.withLock({ $0[m.sequence] }) { readLatencies.withLock { $0.append(now - at) } }
                done.add(1, ordering: .relaxed)
            }
        }
        let payload = [UInt8](repeating: 0x41, count: 512)
        var ackLatencies: [UInt64] = []
        let started = monotonicNanos()
        var expectedSequence: UInt64 = 0
        for i in 0..<count {
            // The reader's latency: wait for it to see the previous one, so each is measured alone.
            while done.load(ordering: .relaxed) < i { sched_yield() }
            let t0 = monotonicNanos()
            sent.withLock { $0[expectedSequence + 1] = t0 }
            let ack = try office.publish(subject: "access.xfl.roster", payload: payload, messageID: "m\(i)")
            ackLatencies.append(monotonicNanos() - t0)
            expectedSequence = ack.sequence
        }
        thread.join()
        let elapsed = Double(monotonicNanos() - started) / 1e9

        // Back-to-back publishes without waiting for the reader: what one thread can push.
        let burst = count
        let burstStart = monotonicNanos()
        for i in 0..<burst { _ = try office.publish(subject: "access.xfl.roster", payload: payload, messageID: "b\(i)") }
        let burstRate = Double(burst) / (Double(monotonicNanos() - burstStart) / 1e9)

        var kvLatencies: [UInt64] = []
        var revision = try bucket.put("ctl-1", Array("applied=0".utf8))
        for i in 0..<min(count, 500) {
            let t0 = monotonicNanos()
            revision = try bucket.update("ctl-1", Array("applied=\(i)".utf8), expectedRevision: revision)
            kvLatencies.append(monotonicNanos() - t0)
        }
        let rssAfter = residentKiB()
        reader.close()

        print("""
            FLEET FIGURES (3 nats-server 2.9.10 nodes on 127.0.0.1, R3 file stream, 512-byte payloads, debug build)
              publish → ack (office, stored on a quorum):      \(percentiles(ackLatencies))
              publish → reader next() returns (controller):    \(percentiles(readLatencies.withLock { $0 }))
              \(count) publish+read round trips in \(String(format3(elapsed))) s
              back-to-back acknowledged publishes, one thread: \(Int(burstRate))/s
              KV update with CAS (R3):                         \(percentiles(kvLatencies))
              client resident memory: \(rssBefore) KiB before, \(rssConnected) KiB with 2 connections + reader + bucket \
            (+\(rssConnected - rssBefore) KiB), \(rssAfter) KiB after \(2 * count) messages (+\(rssAfter - rssBefore) KiB)
              threads: \(threadsBefore) before, \(threadsConnected) with 2 connections
            """)
        withExtendedLifetime(bucket) {}
    }
}
