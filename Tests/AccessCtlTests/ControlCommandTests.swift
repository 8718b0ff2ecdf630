import AccessControlProtocol
import AccessCore
import AccessCtlKit
import AccessTestSupport
import Foundation
import Synchronization
import Testing

/// A stand-in for accessd's control socket: answers each typed request with `answer` and keeps
/// what it was sent, so accessctl's side is tested without linking the controller.
final class FakeAccessd: Sendable {
    let path: String
    private let listener: Int32
    let received = Mutex<[ControlRequest]>([])

    init(path: String, answer: @escaping @Sendable (ControlRequest) -> JSON) throws {
        self.path = path
        var address = try unixSocketAddress(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        let bound = withUnsafePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(fd >= 0 && bound == 0 && listen(fd, 4) == 0)
        listener = fd
        Thread.detachNewThread { [self] in
            while true {
                let client = accept(fd, nil, nil)
                guard client >= 0 else { return }  // the listener was shut down
                var bytes: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 4096)
                while !bytes.contains(0x0A) {
                    let n = read(client, &chunk, chunk.count)
                    if n <= 0 { break }
                    bytes += chunk[0..<n]
                }
                let line = String(decoding: bytes.prefix { $0 != 0x0A }, as: UTF8.self)
                let reply: JSON
                if let json = JSON.parse(line), let request = try? ControlRequest(json: json) {
                    self.received.withLock { $0.append(request) }
                    reply = answer(request)
                } else {
                    reply = ControlReply.failure("malformed request")
                }
                let out = Array((reply.rendered() + "\n").utf8)
                _ = out.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
                close(client)
            }
        }
    }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        unlink(path)
    }
}

@Suite("accessctl commands that talk to accessd")
struct ControlCommandTests {
    static let metricsText = """
        # HELP access_events_total Durable events by type and reason.
        # TYPE access_events_total counter
        access_events_total{type="access",reason="granted"} 2
        access_swipe_to_relay_seconds_bucket{le="+Inf"} 1
        access_swipe_to_relay_seconds_sum 0.000012
        access_roster_people 1

        """

    static let status = ControlStatus(
        controller: "test-ctl", decisions: 4, granted: 2, garbledFrames: 1, gpioOverruns: 0, eventStoreFailures: 0,
        swipeToRelay: .init(count: 1, p50: 12, p99: 31, max: 40),
        doors: [.init(id: "b01-door", mode: .alwaysClosed, released: false, fire: false)],
        lanes: [.init(portal: "lane-in", position: .open, loopOccupied: true, locked: false)],
        fenceZones: [.init(portal: "fence-zone-3", armed: true, latched: ["broken"])])

    /// accessctl with a config whose `[control] socket` is a fake accessd answering `answer`.
    final class Site {
        let dir = TemporaryDirectory("accessctl-control")
        let config: String
        let accessd: FakeAccessd

        init(answer: @escaping @Sendable (ControlRequest) -> JSON) throws {
            let socket = dir.file("ctl.sock")
            config = dir.write("site.toml", """
                [controller]
                id = "test-ctl"
                [database]
                path = "\(dir.file("access.db"))"
                [[portal]]
                id = "b01-door"
                [control]
                socket = "\(socket)"
                """)
            accessd = try FakeAccessd(path: socket, answer: answer)
        }

        deinit { accessd.stop() }

        func run(_ arguments: String...) -> (code: Int32, out: String, err: String) {
            let captured = CapturedOutput()
            let console = Console(out: { captured.appendOut($0) }, err: { captured.appendErr($0) })
            let code = AccessCtl.run(["--config", config, "--operator", "tester"] + arguments, console: console)
            return (code, captured.stdout, captured.stderr)
        }
    }

    @Test func metricsJSONIsEverySampleWithItsLabelsAndValue() throws {
        let site = try Site { _ in ControlReply.metrics(text: Self.metricsText).json }
        let r = site.run("metrics", "--json")
        #expect(r.code == 0, "\(r.err)")
        let json = try #require(JSON.parse(r.out.trimmingCharacters(in: .whitespacesAndNewlines)), "\(r.out)")
        guard case .array(let samples)? = json["samples"] else { Issue.record("no samples: \(r.out)"); return }
        #expect(samples.count == 4)
        #expect(samples[0] == .object([("name", "access_events_total"), ("labels", .object([("type", "access"), ("reason", "granted")])), ("value", 2)]))
        #expect(samples[1]["labels"]?["le"] == "+Inf" && samples[1]["value"] == 1)
        #expect(samples[2]["value"] == .double(0.000012))
        #expect(samples[3] == .object([("name", "access_roster_people"), ("labels", .object([])), ("value", 1)]))
        #expect(site.accessd.received.withLock { $0 } == [.metrics])
    }

    @Test func metricsWithoutJSONIsThePrometheusTextUnchanged() throws {
        let site = try Site { _ in ControlReply.metrics(text: Self.metricsText).json }
        let r = site.run("metrics")
        #expect(r.code == 0 && r.out == Self.metricsText)
    }

    @Test func statusReadsTheTypedReply() throws {
        let site = try Site { _ in ControlReply.status(Self.status).json }
        let text = site.run("status")
        #expect(text.code == 0)
        #expect(text.out == """
            controller test-ctl
            decisions 4, granted 2, garbled frames 1, GPIO overruns 0, event-store retries 0
            swipe → relay over the last 1 grants: p50 12 µs, p99 31 µs, max 40 µs
            door b01-door: always-closed, locked
            lane lane-in: arm open, vehicle on loop
            fence fence-zone-3: armed, ALARM broken

            """)
        let json = site.run("status", "--json")
        #expect(JSON.parse(json.out.trimmingCharacters(in: .whitespacesAndNewlines))?["granted"] == 2)
        #expect(JSON.parse(json.out.trimmingCharacters(in: .whitespacesAndNewlines))?["ok"] == nil)
    }

    @Test func aDoorCommandGoesAsATypedRequestWithTheOperator() throws {
        let site = try Site { _ in ControlReply.portal(PortalState(released: false)).json }
        let r = site.run("door", "always-closed", "b01-door")
        #expect(r.code == 0 && r.out == "b01-door: always-closed done; lock locked\n")
        #expect(site.accessd.received.withLock { $0 } == [.door(portal: "b01-door", command: .alwaysClosed, operator: "tester")])
    }

    @Test func readerResetAndAntiPassbackResetGoAsTypedRequestsWithTheOperator() throws {
        let site = try Site { request in
            switch request {
            case .reader: ControlReply.portal(PortalState(alarm: true)).json
            case .antiPassbackReset(let person, _) where person == "P1": ControlReply.antiPassbackReset(cleared: true).json
            default: ControlReply.failure("no person P404 on the roster")
            }
        }
        let reader = site.run("reader", "reset", "reader-north-in")
        #expect(reader.code == 0 && reader.out == "reader reader-north-in: reset done; tamper alarm still latched (the switch is still open)\n")
        let apb = site.run("apb", "reset", "P1")
        #expect(apb.code == 0 && apb.out == "anti-passback reset for P1 at every portal\n")
        let unknown = site.run("apb", "reset", "P404")
        #expect(unknown.code == 1 && unknown.err == "accessctl: no person P404 on the roster\n")
        #expect(site.accessd.received.withLock { $0 } == [
            .reader(reader: "reader-north-in", command: .reset, operator: "tester"),
            .antiPassbackReset(person: "P1", operator: "tester"), .antiPassbackReset(person: "P404", operator: "tester"),
        ])
        let status = ControlStatus(controller: "c", decisions: 0, granted: 0, garbledFrames: 0, gpioOverruns: 0, eventStoreFailures: 0,
                                   swipeToRelay: .init(count: 0, p50: 0, p99: 0, max: 0), doors: [], lanes: [], fenceZones: [],
                                   readers: [.init(reader: "reader-north-in", portal: "gate-north-in", tamper: true)],
                                   parking: [.init(key: "house:B01-0301", inside: 1, spaces: 1), .init(key: "house:B02-0101", inside: 2, spaces: nil)])
        let text = try Site { _ in ControlReply.status(status).json }.run("status")
        #expect(text.out.contains("parking house:B01-0301: 1 inside of 1 space\nparking house:B02-0101: 2 inside, no limit\n"))
        #expect(text.out.contains("reader reader-north-in (gate-north-in): TAMPER alarm latched (accessctl reader reset reader-north-in)\n"))
    }

    @Test func accessdsRefusalIsOneLineOnStderrAndExitsNonZero() throws {
        let site = try Site { _ in ControlReply.failure("portal nope has no door, lane or fence zone") }
        let r = site.run("door", "open", "nope")
        #expect(r.code == 1 && r.out.isEmpty)
        #expect(r.err == "accessctl: portal nope has no door, lane or fence zone\n")
    }

    @Test func keysThatAreNotOnAKeypadAreRefusedBeforeAnythingIsSent() throws {
        let site = try Site { _ in ControlReply.decision(nil).json }
        let r = site.run("sim", "keys", "reader-b01", "12a#")
        #expect(r.code != 0 && r.err.contains("keys are digits"))
        #expect(site.accessd.received.withLock { $0 }.isEmpty)
    }
}
