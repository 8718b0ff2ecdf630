import AccessFleet
import AccessRuntime
import AccessTestSupport
import Glibc
import Synchronization
import Testing

// The fleet transport against real nats-server clusters on 127.0.0.1 (NatsCluster: free ports,
// own data directories, the committed permission templates). Each test makes its own cluster and
// stops it by PID; every wait has a deadline. Serialized: a 3-node cluster is three processes on
// a 2-core machine.

private let community = "xfl"
private let rosterSubject = "access.\(community).roster"
private let rosterSpec = StreamSpec(name: "ROSTER_\(community)", subjects: [rosterSubject], replicas: 3,
                                    duplicateWindow: .seconds(120), denyDelete: true)
private let eventsSpec = StreamSpec(name: "EVENTS_\(community)", subjects: ["access.\(community).events.>"], replicas: 3)

private func office(_ cluster: NatsCluster, onEvent: (@Sendable (FleetConnectionEvent) -> Void)? = nil) throws -> NatsConnection {
    try NatsConnection(FleetConnectionOptions(servers: cluster.urls, name: "office", user: "office",
                                              passwordFile: cluster.passwordFile(for: "office"), tlsCAFile: cluster.caFile,
                                              requestTimeout: .seconds(3), onEvent: onEvent))
}

private func controller(_ cluster: NatsCluster, _ id: String) throws -> NatsConnection {
    try NatsConnection(FleetConnectionOptions(servers: cluster.urls, name: id, user: id,
                                              passwordFile: cluster.passwordFile(for: id), tlsCAFile: cluster.caFile,
                                              requestTimeout: .seconds(3)))
}

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// Runs `body` until it stops throwing transient errors (no leader yet, a server restarting), at
/// most until `timeout`.
private func retrying<T>(_ timeout: Duration = .seconds(20), _ body: () throws(FleetError) -> T) throws -> T {
    let deadline = monotonicNanos() + UInt64(timeout.components.seconds) * 1_000_000_000
    while true {
        do {
            return try body()
        } catch {
            switch error {
            case .timeout, .noResponders, .notConnected, .failed:
                if monotonicNanos() >= deadline { throw error }
                var ts = timespec(tv_sec: 0, tv_nsec: 50_000_000)
                nanosleep(&ts, nil)
            default:
                throw error
            }
        }
    }
}

@Suite("Fleet transport (libnats, real nats-server cluster)", .serialized)
struct FleetTransportTests {
    @Test("a publish is acknowledged once stored, with the stream's next sequence, on three replicas")
    func publishAcknowledged() throws {
        let cluster = try NatsCluster(nodes: 3)
        let conn = try office(cluster)
        let created = try retrying { () throws(FleetError) in try conn.ensureStream(rosterSpec) }
        #expect(created.replicas == 3)
        for i in 1...3 {
            let ack = try conn.publish(subject: rosterSubject, payload: bytes("change \(i)"), headers: ["Change-Set": "\(i)"])
            #expect(ack == PublishAck(stream: "ROSTER_xfl", sequence: UInt64(i), duplicate: false))
        }
        let info = try conn.streamInfo("ROSTER_xfl")
        #expect(info.messages == 3 && info.firstSequence == 1 && info.lastSequence == 3)
        #expect(info.leader.map { cluster.index(of: $0) != nil } == true)
        #expect(info.followers.count == 2)
        // Ensuring it again changes nothing and succeeds.
        #expect(try conn.ensureStream(rosterSpec).lastSequence == 3)

        let second = try #require(try conn.message(stream: "ROSTER_xfl", sequence: 2))
        #expect(text(second.payload) == "change 2" && second.headers["Change-Set"] == "2" && second.subject == rosterSubject)
        #expect(try conn.lastMessage(stream: "ROSTER_xfl", subject: rosterSubject)?.sequence == 3)
        #expect(try conn.message(stream: "ROSTER_xfl", sequence: 99) == nil)
        #expect(try conn.lastMessage(stream: "ROSTER_xfl", subject: "access.xfl.nothing") == nil)
    }

    @Test("a second publish with the same message id is reported as a duplicate and not stored")
    func duplicateMessageID() throws {
        let cluster = try NatsCluster(nodes: 3)
        let conn = try office(cluster)
        _ = try retrying { () throws(FleetError) in try conn.ensureStream(rosterSpec) }
        let first = try conn.publish(subject: rosterSubject, payload: bytes("a"), messageID: "change-set-1")
        let again = try conn.publish(subject: rosterSubject, payload: bytes("a"), messageID: "change-set-1")
        let other = try conn.publish(subject: rosterSubject, payload: bytes("b"), messageID: "change-set-2")
        #expect(!first.duplicate && again.duplicate && !other.duplicate)
        #expect(again.sequence == first.sequence)
        #expect(other.sequence == first.sequence + 1)
        #expect(try conn.streamInfo("ROSTER_xfl").messages == 2)
    }

    @Test("a publish expecting the wrong last sequence is refused with its own error; the right one is stored")
    func expectedLastSequence() throws {
        let cluster = try NatsCluster(nodes: 3)
        let conn = try office(cluster)
        _ = try retrying { () throws(FleetError) in try conn.ensureStream(rosterSpec) }
        // 0: the stream must be empty.
        #expect(try conn.publish(subject: rosterSubject, payload: bytes("1"), expectedLastSequence: 0).sequence == 1)
        let stale = failure { () throws(FleetError) in try conn.publish(subject: rosterSubject, payload: bytes("stale"), expectedLastSequence: 0) }
        guard case .wrongLastSequence(let refused)? = stale else { Issue.record("a stale expectation: \(String(describing: stale))"); return }
        #expect(refused.jetStreamCode == 10071)
        #expect(refused.operation == "publish \(rosterSubject)")
        #expect(refused.description.contains("wrong last sequence"))
        #expect(try conn.publish(subject: rosterSubject, payload: bytes("2"), expectedLastSequence: 1).sequence == 2)
        // Per subject.
        #expect(throws: FleetError.self) {
            try conn.publish(subject: rosterSubject, payload: bytes("x"), expectedLastSubjectSequence: 1)
        }
        #expect(try conn.publish(subject: rosterSubject, payload: bytes("3"), expectedLastSubjectSequence: 2).sequence == 3)
        #expect(try conn.streamInfo("ROSTER_xfl").messages == 3)
        // A subject the office may publish on but no stream takes (the status bucket is not made
        // in this test): no responders, at once, not a timeout.
        let unheardSubject = "$KV.access_xfl_controllers.nobody"
        let nowhere = failure { () throws(FleetError) in try conn.publish(subject: unheardSubject, payload: bytes("x"), timeout: .seconds(2)) }
        guard case .noResponders(let unheard)? = nowhere else { Issue.record("a publish nobody stores: \(String(describing: nowhere))"); return }
        #expect(unheard.operation == "publish \(unheardSubject)")
    }

    @Test("a reader from sequence N delivers N, N+1, … in order, without gap or repeat, across the stream leader's death")
    func readerAcrossLeaderKill() throws {
        let cluster = try NatsCluster(nodes: 3)
        let conn = try office(cluster)
        _ = try retrying { () throws(FleetError) in try conn.ensureStream(rosterSpec) }
        func publish(_ i: Int) throws {
            // The id makes a retried publish that was stored the first time a duplicate, not a second copy.
            _ = try retrying(.seconds(30)) { () throws(FleetError) in
                try conn.publish(subject: rosterSubject, payload: bytes("m\(i)"), messageID: "m\(i)", timeout: .seconds(2))
            }
        }
        for i in 1...20 { try publish(i) }

        let ctl = try controller(cluster, "ctl-1")
        let reader = ctl.read(stream: "ROSTER_xfl", filter: rosterSubject, fromSequence: 5, options: StreamReaderOptions(batch: 7))
        let received = Mutex<[StreamMessage]>([])
        // Errors the reader threw while servers died (it may: a stream briefly without a leader);
        // the thread goes on reading, as an applier would, and the order must still hold.
        let errors = Mutex<[FleetError]>([])
        let stop = Atomic<Bool>(false)
        let thread = try NamedThread.start(name: "test-reader") {
            while !stop.load(ordering: .relaxed) {
                do throws(FleetError) {
                    if let m = try reader.next(timeout: .milliseconds(200)) { received.withLock { $0.append(m) } }
                } catch {
                    errors.withLock { $0.append(error) }
                }
            }
        }
        defer {
            stop.store(true, ordering: .relaxed)
            thread.join()
            reader.close()
        }
        func waitFor(_ count: Int, _ timeout: Duration = .seconds(40)) {
            let deadline = monotonicNanos() + UInt64(timeout.components.seconds) * 1_000_000_000
            while received.withLock({ $0.count }) < count && monotonicNanos() < deadline {
                var ts = timespec(tv_sec: 0, tv_nsec: 20_000_000)
                nanosleep(&ts, nil)
            }
        }
        waitFor(16)
        #expect(received.withLock { $0.map(\.sequence) } == Array(5...20))

        // Kill the stream's leader, mid-read, and go on publishing.
        let leader = try #require(try retrying { () throws(FleetError) in try conn.streamInfo("ROSTER_xfl") }.leader)
        let killed = try #require(cluster.index(of: leader))
        cluster.kill(node: killed)
        for i in 21...40 { try publish(i) }
        waitFor(36)
        // Back, and the new leader killed too.
        try cluster.restart(node: killed)
        let second = try retrying { () throws(FleetError) -> String in
            let info = try conn.streamInfo("ROSTER_xfl")
            guard let l = info.leader, info.followers.allSatisfy({ $0.current && !$0.offline }) else {
                throw .timeout(FleetFailure(operation: "wait for replicas", status: 0, statusText: "not current"))
            }
            return l
        }
        let secondKilled = try #require(cluster.index(of: second))
        cluster.kill(node: secondKilled)
        for i in 41...60 { try publish(i) }
        waitFor(56)
        // Back again, and then the server the reader's own connection uses dies: the reader must
        // start a new consumer after the reconnect.
        try cluster.restart(node: secondKilled)
        _ = try retrying { () throws(FleetError) -> Bool in
            let info = try conn.streamInfo("ROSTER_xfl")
            guard info.leader != nil, info.followers.count == 2, info.followers.allSatisfy({ $0.current && !$0.offline }) else {
                throw .timeout(FleetFailure(operation: "wait for replicas", status: 0, statusText: "not current"))
            }
            return true
        }
        let port = try #require(ctl.health.connectedURL?.split(separator: ":").last.flatMap { Int($0) })
        let readersNode = try #require(cluster.nodes.firstIndex { $0.clientPort == port })
        cluster.kill(node: readersNode)
        for i in 61...70 { try publish(i) }
        waitFor(66)
        // It must have started a new consumer after losing its node; which check noticed first
        // (the reconnect, a failed fetch, the once-a-second check) depends on timing under load.
        let stats = reader.stats
        #expect(stats.restartsAfterReconnect + stats.restartsAfterError + stats.restartsAfterCheck + stats.restartsAfterGap >= 1, "\(stats)")

        let thrown = errors.withLock { $0 }
        #expect(thrown.allSatisfy { if case .notFound = $0 { false } else if case .notPermitted = $0 { false } else { true } },
                "\(thrown)")
        let got = received.withLock { $0 }
        let last = try retrying { () throws(FleetError) in try conn.streamInfo("ROSTER_xfl") }.lastSequence
        #expect(last == 70, "every publish stored once")
        #expect(got.map(\.sequence) == Array(5...70), "no gap, no repeat, in order")
        #expect(got.map { text($0.payload) } == (5...70).map { "m\($0)" })
        #expect(got.allSatisfy { $0.subject == rosterSubject && $0.timestampNanos > 1_700_000_000_000_000_000 })
        #expect(reader.nextSequence == 71, "\(reader.stats)")
    }

    @Test("a reader started past the end waits for new messages; purge keeps what a snapshot still needs")
    func readerWaitsAndPurge() throws {
        let cluster = try NatsCluster(nodes: 1)
        let conn = try office(cluster)
        try conn.ensureStream(StreamSpec(name: "ROSTER_xfl", subjects: [rosterSubject]))
        for i in 1...10 { _ = try conn.publish(subject: rosterSubject, payload: bytes("m\(i)")) }
        let reader = conn.read(stream: "ROSTER_xfl", fromSequence: 11)
        defer { reader.close() }
        #expect(try reader.next(timeout: .milliseconds(300)) == nil)
        _ = try conn.publish(subject: rosterSubject, payload: bytes("m11"))
        #expect(try reader.next(timeout: .seconds(5))?.sequence == 11)

        try conn.purge(stream: "ROSTER_xfl", subject: rosterSubject, keepFromSequence: 8)
        let info = try conn.streamInfo("ROSTER_xfl")
        #expect(info.firstSequence == 8 && info.messages == 4)
        #expect(try conn.message(stream: "ROSTER_xfl", sequence: 7) == nil)
        // A stream that denies purges refuses.
        try conn.ensureStream(StreamSpec(name: "EVENTS_xfl", subjects: ["access.xfl.events.>"], denyPurge: true))
        #expect(throws: FleetError.self) { try conn.purge(stream: "EVENTS_xfl") }
        // Reading a stream that does not exist is an error, not a wait.
        #expect(throws: FleetError.self) { try conn.read(stream: "NOPE").next(timeout: .seconds(2)) }
    }

    @Test("key-value: put and get with revisions, create only once, compare-and-set refuses a stale revision")
    func keyValue() throws {
        let cluster = try NatsCluster(nodes: 3)
        let conn = try office(cluster)
        let bucket = try retrying { () throws(FleetError) in
            try KeyValueBucket.ensure(BucketSpec(name: "access_xfl_controllers", replicas: 3, history: 5), on: conn)
        }
        #expect(try bucket.get("ctl-1") == nil)
        let r1 = try bucket.create("ctl-1", bytes("applied=1"))
        let twice = failure { () throws(FleetError) in try bucket.create("ctl-1", bytes("again")) }
        guard case .revisionConflict(let conflict)? = twice else { Issue.record("created twice: \(String(describing: twice))"); return }
        #expect(conflict.jetStreamCode == 10071)
        let r2 = try bucket.update("ctl-1", bytes("applied=2"), expectedRevision: r1)
        #expect(r2 > r1)
        let staleUpdate = failure { () throws(FleetError) in try bucket.update("ctl-1", bytes("applied=stale"), expectedRevision: r1) }
        guard case .revisionConflict(let staleConflict)? = staleUpdate else {
            Issue.record("a stale revision: \(String(describing: staleUpdate))")
            return
        }
        #expect(staleConflict.operation.contains("ctl-1"))
        let entry = try #require(try bucket.get("ctl-1"))
        #expect(entry.string == "applied=2" && entry.revision == r2)
        let r3 = try bucket.put("ctl-2", bytes("x"))
        #expect(r3 > r2)
        #expect(try bucket.keys() == ["ctl-1", "ctl-2"])
        try bucket.delete("ctl-2")
        #expect(try bucket.get("ctl-2") == nil)
        #expect(try bucket.keys() == ["ctl-1"])
        // Created again over its tombstone.
        try bucket.create("ctl-2", bytes("back"))
        #expect(try bucket.get("ctl-2")?.string == "back")
        // Bound again from another connection, it sees the same.
        let other = try KeyValueBucket.bind("access_xfl_controllers", on: try office(cluster))
        #expect(try other.get("ctl-1")?.revision == r2)
        #expect(throws: FleetError.self) { try bucket.put("bad key", bytes("x")) }
    }

    @Test("a controller reads the roster and writes only its own events and status key; wrong passwords are refused")
    func permissions() throws {
        let cluster = try NatsCluster(nodes: 1)
        let admin = try office(cluster)
        let single = StreamSpec(name: "ROSTER_xfl", subjects: [rosterSubject], duplicateWindow: .seconds(120), denyDelete: true)
        try admin.ensureStream(single)
        try admin.ensureStream(StreamSpec(name: "EVENTS_xfl", subjects: ["access.xfl.events.>"]))
        let status = try KeyValueBucket.ensure(BucketSpec(name: "access_xfl_controllers"), on: admin)
        _ = try admin.publish(subject: rosterSubject, payload: bytes("roster 1"))

        let ctl = try controller(cluster, "ctl-1")
        // The stream exists as it should: a controller's ensure succeeds without changing it.
        #expect(try ctl.ensureStream(single).lastSequence == 1)
        let reader = ctl.read(stream: "ROSTER_xfl", filter: rosterSubject)
        #expect(try reader.next(timeout: .seconds(5)).map { text($0.payload) } == "roster 1")
        reader.close()
        #expect(try ctl.lastMessage(stream: "ROSTER_xfl", subject: rosterSubject)?.sequence == 1)
        #expect(try ctl.publish(subject: "access.xfl.events.ctl-1.swipe", payload: bytes("e")).stream == "EVENTS_xfl")

        func expectNotPermitted(_ what: String, _ body: () throws(FleetError) -> Void) {
            let error = failure(body)
            guard case .notPermitted(let refused)? = error else { Issue.record("\(what): \(String(describing: error))"); return }
            #expect(refused.detail?.lowercased().contains("permissions violation") == true, "\(refused)")
        }
        expectNotPermitted("another controller's events") { () throws(FleetError) in
            _ = try ctl.publish(subject: "access.xfl.events.ctl-2.swipe", payload: bytes("forged"), timeout: .seconds(1))
        }
        expectNotPermitted("the roster subject") { () throws(FleetError) in
            _ = try ctl.publish(subject: rosterSubject, payload: bytes("forged roster"), timeout: .seconds(1))
        }
        let mine = try KeyValueBucket.bind("access_xfl_controllers", on: ctl)
        try mine.put("ctl-1", bytes("applied=1"))
        expectNotPermitted("another controller's key") { () throws(FleetError) in _ = try mine.put("ctl-2", bytes("forged")) }
        #expect(try status.get("ctl-1")?.string == "applied=1")
        #expect(try status.get("ctl-2") == nil)
        #expect(try admin.streamInfo("ROSTER_xfl").messages == 1)

        let wrong = failure { () throws(FleetError) in try NatsConnection(FleetConnectionOptions(servers: cluster.urls, user: "ctl-1", password: "wrong")) }
        guard case .authenticationFailed(let refusedLogin)? = wrong else { Issue.record("a wrong password: \(String(describing: wrong))"); return }
        #expect(refusedLogin.description.lowercased().contains("authorization"))
        #expect(throws: FleetError.self) {
            try NatsConnection(FleetConnectionOptions(servers: cluster.urls, user: "ctl-1", passwordFile: "/nonexistent/pw"))
        }
    }

    @Test("TLS: a client that trusts the cluster's CA connects; without it, or with another CA, it does not")
    func tls() throws {
        let cluster = try NatsCluster(nodes: 1, tls: true)
        let conn = try office(cluster)
        #expect(conn.isConnected)
        try conn.ensureStream(StreamSpec(name: "ROSTER_xfl", subjects: [rosterSubject]))
        #expect(try conn.publish(subject: rosterSubject, payload: bytes("over TLS")).sequence == 1)

        let password = cluster.passwordFile(for: "office")
        let untrusted = failure { () throws(FleetError) in try NatsConnection(FleetConnectionOptions(servers: cluster.urls, user: "office", passwordFile: password)) }
        guard case .tls? = untrusted else { Issue.record("expected a TLS error without the CA: \(String(describing: untrusted))"); return }
        let plain = cluster.urls.map { "nats://" + $0.dropFirst("tls://".count) }
        #expect(throws: FleetError.self) {
            try NatsConnection(FleetConnectionOptions(servers: plain, user: "office", passwordFile: password))
        }
        let other = TemporaryDirectory("access-nats-ca")
        let made = try PeerProcess(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=another CA",
                                    "-keyout", other.file("ca.key"), "-out", other.file("ca.pem")], log: other.file("openssl.log"))
        #expect(made.wait() == 0)
        let otherCA = failure { () throws(FleetError) in
            try NatsConnection(FleetConnectionOptions(servers: cluster.urls, user: "office", passwordFile: password, tlsCAFile: other.file("ca.pem")))
        }
        guard case .tls? = otherCA else { Issue.record("expected a TLS error with another CA: \(String(describing: otherCA))"); return }
    }

    @Test("the connection reports a lost server and its return, and publishes fail fast while it is gone")
    func connectionStatus() throws {
        let cluster = try NatsCluster(nodes: 1)
        let events = Mutex<[FleetConnectionEvent]>([])
        let conn = try office(cluster) { event in events.withLock { $0.append(event) } }
        try conn.ensureStream(StreamSpec(name: "ROSTER_xfl", subjects: [rosterSubject]))
        #expect(conn.health.status == .connected && conn.health.disconnects == 0)
        cluster.kill(node: 0)
        try poll("disconnected") { conn.health.disconnects == 1 && !conn.isConnected }
        let started = monotonicNanos()
        #expect(throws: FleetError.self) { try conn.publish(subject: rosterSubject, payload: bytes("x"), timeout: .seconds(5)) }
        #expect(monotonicNanos() - started < 2_000_000_000, "fails at once, not after the timeout")
        try cluster.restart(node: 0)
        try poll("reconnected", timeout: .seconds(20)) { conn.health.reconnects == 1 && conn.isConnected }
        #expect(try retrying { () throws(FleetError) in try conn.publish(subject: rosterSubject, payload: bytes("y")) }.sequence >= 1)
        #expect(events.withLock { $0.contains(.disconnected) && $0.contains { if case .reconnected = $0 { true } else { false } } })
        conn.close()
        try poll("closed") { conn.status == .closed }
    }
}

/// The error `body` threw, or nil (and the test fails) when it did not throw.
private func failure<T>(_ body: () throws(FleetError) -> T) -> FleetError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error
    }
}

private func poll(_ what: String, timeout: Duration = .seconds(10), _ condition: () -> Bool) throws {
    let deadline = monotonicNanos() + UInt64(timeout.components.seconds) * 1_000_000_000
    while !condition() {
        guard monotonicNanos() < deadline else { throw PeerError(description: "\(what): not within \(timeout)") }
        var ts = timespec(tv_sec: 0, tv_nsec: 20_000_000)
        nanosleep(&ts, nil)
    }
}

@Suite("Fleet cluster harness", .serialized)
struct NatsClusterHarnessTests {
    @Test("a paused stream leader is replaced; resumed, it catches up and nothing is stored twice")
    func pausedLeader() throws {
        let cluster = try NatsCluster(nodes: 3)
        let conn = try office(cluster)
        _ = try retrying { () throws(FleetError) in try conn.ensureStream(rosterSpec) }
        func publish(_ i: Int) throws {
            _ = try retrying(.seconds(30)) { () throws(FleetError) in
                try conn.publish(subject: rosterSubject, payload: bytes("m\(i)"), messageID: "m\(i)", timeout: .seconds(2))
            }
        }
        for i in 1...10 { try publish(i) }
        let leader = try #require(try conn.streamInfo("ROSTER_xfl").leader)
        let paused = try #require(cluster.index(of: leader))
        cluster.pause(node: paused)
        for i in 11...20 { try publish(i) }
        cluster.resume(node: paused)
        let info = try retrying { () throws(FleetError) -> StreamInfo in
            let info = try conn.streamInfo("ROSTER_xfl")
            // Until the cluster has settled: right after SIGCONT the old leader may still answer,
            // with its own stale view (last sequence 10), before it steps down and catches up.
            guard info.lastSequence >= 20, info.followers.count == 2, info.followers.allSatisfy({ $0.current && !$0.offline }) else {
                throw .timeout(FleetFailure(operation: "wait for replicas", status: 0, statusText: "not current"))
            }
            return info
        }
        // Every acknowledged message is there. A publish retried across the leader change (no
        // expected sequence here) may be stored twice by nats-server 2.9: the roster's publishes
        // also send the expected last sequence, which refuses such a second copy, and the
        // follower applies by sequence. Duplicates are counted, not failed.
        var payloads: [String] = []
        for sequence in info.firstSequence...max(info.firstSequence, info.lastSequence) {
            // Right after the leader change the stream may still answer 10008 (JetStream
            // temporarily unavailable): a read is retried like any other request here.
            let message = try retrying { () throws(FleetError) in try conn.message(stream: "ROSTER_xfl", sequence: sequence) }
            if let message { payloads.append(String(decoding: message.payload, as: UTF8.self)) }
        }
        let missing = (1...20).map { "m\($0)" }.filter { !payloads.contains($0) }
        #expect(missing.isEmpty, "lost: \(missing); stored: \(payloads)")
        #expect(info.lastSequence >= 20 && payloads.count == Int(info.messages))
        #expect(cluster.isRunning(node: paused))
        cluster.shutdown()
        #expect(cluster.nodes.indices.allSatisfy { !cluster.isRunning(node: $0) })
    }

    @Test("Scripts/nats-cluster.sh starts a cluster people and shell tests can use, and stops it by PID")
    func shellScript() throws {
        let dir = TemporaryDirectory("access-nats-sh")
        let script = "\(ModbusTestEnvironment.repo)/Scripts/nats-cluster.sh"
        let start = try PeerProcess(["/bin/bash", script, "start", dir.file("c"), "1"], log: dir.file("start.log"))
        #expect(start.wait() == 0, "\(start.output)")
        defer { _ = try? PeerProcess(["/bin/bash", script, "stop", dir.file("c")], log: dir.file("stop-again.log")).wait() }
        let url = try #require(start.output.split(separator: "\n").last.map(String.init))
        #expect(url.hasPrefix("nats://127.0.0.1:"))
        let env = try #require(dir.read("c/env"))
        let password = try #require(env.split(separator: "\n").first { $0.hasPrefix("NATS_OFFICE_PASSWORD=") }?.split(separator: "=", maxSplits: 1).last)
        let pid = try #require(dir.read("c/n1.pid").flatMap { Int32($0.split(separator: "\n").first ?? "") })
        #expect(kill(pid, 0) == 0)
        let conn = try NatsConnection(FleetConnectionOptions(servers: [url], user: "office", password: String(password)))
        try conn.ensureStream(StreamSpec(name: "ROSTER_xfl", subjects: [rosterSubject]))
        #expect(try conn.publish(subject: rosterSubject, payload: bytes("x")).sequence == 1)
        conn.close()
        let stop = try PeerProcess(["/bin/bash", script, "stop", dir.file("c")], log: dir.file("stop.log"))
        #expect(stop.wait() == 0, "\(stop.output)")
        #expect(kill(pid, 0) == -1 && errno == ESRCH, "the server is gone")
    }
}
