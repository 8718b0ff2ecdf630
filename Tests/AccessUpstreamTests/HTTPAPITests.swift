import AccessAnalytics
import AccessConfig
import AccessController
import AccessCore
import AccessRuntime
import AccessDevices
import AccessStore
import AccessTestSupport
import AccessUpstream
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// accessd's API on a real socket on 127.0.0.1 (port chosen by the kernel), asked with curl.
final class APISite: @unchecked Sendable {
    static let root = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
    let dir = TemporaryDirectory("api")
    let controller: Controller
    let board: SimulatedBoard
    let db: AccessDatabase
    let token: String
    let port: Int
    let scheme: String
    private let server: Task<Void, Error>
    /// The server's own thread: tests running beside it may block the cooperative pool's few
    /// threads (child processes, device timers), and the server must answer all the same.
    private let serverThread: ThreadExecutor
    /// The analytics service `analytics` made, running, when given (AnalyticsTests.swift).
    private(set) var analytics: AnalyticsService?
    private var analyticsTask: Task<Void, Error>?

    init(tls: Bool = false, authFailuresPerMinute: Int = 20, apiClock: any RuntimeClock = SystemClock(),
         analytics makeAnalytics: (@Sendable (Controller) throws -> AnalyticsService)? = nil) async throws {
        var tlsLines = ""
        if tls {
            let made = try PeerProcess(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                                        "-addext", "subjectAltName=IP:127.0.0.1",
                                        "-keyout", dir.file("key.pem"), "-out", dir.file("cert.pem")], log: dir.file("openssl.log"))
            guard made.wait() == 0 else { throw PeerError(description: "openssl failed: \(made.output)") }
            tlsLines = "tls_certificate = \"\(dir.file("cert.pem"))\"\ntls_key = \"\(dir.file("key.pem"))\""
        }
        let path = dir.write("site.toml", """
            [controller]
            id = "api-1"
            [database]
            path = "\(dir.file("access.db"))"
            [board]
            map = "\(APISite.root)/Hardware/boards/sim.toml"
            simulated = true
            [[portal]]
            id = "b01-door"
            building = "B01"
            readers = ["reader-b01"]
            [[portal]]
            id = "lane-in"
            kind = "barrier"
            readers = ["lpr-in"]
            [[door]]
            id = "b01"
            portals = ["b01-door"]
            lock = "b01.lock"
            # A card swiped back to back stands for several passages in these tests.
            [gate]
            repeat_read_seconds = 0
            [upstream.http]
            listen = "127.0.0.1:0"
            max_body_bytes = 4096
            auth_failures_per_minute = \(authFailuresPerMinute)
            \(tlsLines)
            """)
        let config = try SiteConfig.load(path: path)
        db = try AccessDatabase(path: config.databasePath)
        try db.saveSite(config.rules)
        try db.addHouse(House(id: "B01-0301", building: "B01"), operator: "t")
        try db.addPerson(Person(id: "P1", houses: [HouseBinding(houseID: "B01-0301", role: .owner)]), operator: "t")
        try db.addCredential(Credential(kind: .card, value: "6553701", owner: .person("P1")), operator: "t")
        try db.addCredential(Credential(kind: .plate, value: "京A12345", owner: .person("P1")), operator: "t")
        token = try db.addAPIToken(name: "platform", operator: "t", nowMicros: AccessDatabase.nowMicros())
        controller = try Controller(config: config)
        let map = try BoardMap.load(path: "\(APISite.root)/Hardware/boards/sim.toml")
        let controller = self.controller
        board = SimulatedBoard(map: map) { controller.handle($0) }
        try controller.attach(board: board)
        try controller.start()
        var quiet = Logger(label: "test.api")
        quiet.logLevel = .critical  // the server is cancelled, not drained, at the end of each test
        let analytics = try makeAnalytics?(controller)
        self.analytics = analytics
        let serverThread = try ThreadExecutor(threadName: "test-api")
        self.serverThread = serverThread
        if let analytics { analyticsTask = Task(executorPreference: serverThread) { try await analytics.run() } }
        let api = try UpstreamAPI(controller: controller, config: try #require(config.http), logger: quiet, analytics: analytics, clock: apiClock)
        let bound = Mutex<Int?>(nil)
        let app = try api.application { port in bound.withLock { $0 = port } }
        server = Task(executorPreference: serverThread) { try await app.runService() }
        let deadline = ContinuousClock.now + .seconds(10)
        while bound.withLock({ $0 }) == nil && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        port = try #require(bound.withLock { $0 })
        scheme = tls ? "https" : "http"
    }

    deinit {
        server.cancel()
        analyticsTask?.cancel()
        controller.stop()
        // The thread is left running: the cancelled server still has jobs to finish on it.
    }

    struct Reply {
        var status: Int
        var body: String
        var json: JSON? { JSON.parse(body) }
    }

    /// One request with curl: `path` from the root, the token unless `token` says otherwise.
    /// Waits for curl without blocking a thread: the server's handlers run on the same cooperative
    /// pool as the tests, and a blocked pool would starve them.
    func request(_ path: String, method: String = "GET", body: String? = nil, token: String?? = .none, extra: [String] = []) async throws -> Reply {
        let bodyFile = dir.file("reply-\(UUID().uuidString)")
        var args = ["curl", "-sS", "--max-time", "40", "-o", bodyFile, "-w", "%{http_code}", "-X", method]
        if scheme == "https" { args += ["--cacert", dir.file("cert.pem")] }
        switch token {
        case .none: args += ["-H", "Authorization: Bearer \(self.token)"]
        case .some(.some(let t)): args += ["-H", "Authorization: Bearer \(t)"]
        case .some(.none): break
        }
        if let body {
            let file = dir.write("body-\(UUID().uuidString)", body)
            args += ["-H", "Content-Type: application/json", "--data-binary", "@\(file)"]
        }
        let child = try PeerProcess(args + extra + ["\(scheme)://127.0.0.1:\(port)\(path)"], log: dir.file("curl-\(UUID().uuidString).log"))
        while !child.hasExited { try await Task.sleep(for: .milliseconds(2)) }
        guard child.wait() == 0 else { throw PeerError(description: "curl failed: \(child.output)") }
        return Reply(status: Int(child.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1,
                     body: readTextFile(bodyFile) ?? "")
    }

    func eventCount() throws -> Int {
        controller.flush()
        return try db.events(EventQuery(after: 0, limit: 100_000)).count
    }
}

@Suite("Upstream HTTP API over a real socket", .serialized)
struct HTTPAPITests {
    @Test func everyRouteButHealthzNeedsAValidToken() async throws {
        let site = try await APISite()
        let health = try await site.request("/healthz", token: .some(nil))
        #expect(health.status == 200 && health.json?["status"] == "ok")
        for (path, method) in [("/api/v1/events", "GET"), ("/api/v1/plates", "POST"), ("/api/v1/portals/b01-door/open", "POST"), ("/metrics", "GET")] {
            #expect(try await site.request(path, method: method, token: .some(nil)).status == 401, "\(path) without a token")
            let wrong = try await site.request(path, method: method, token: "cat_0000")
            #expect(wrong.status == 401, "\(path) with a wrong token")
            #expect(!wrong.body.contains("cat_0000"), "the token is not echoed")
        }
        #expect(try await site.request("/metrics").body.contains("access_events_total"))
        try site.db.revokeAPIToken(name: "platform", operator: "t", nowMicros: 0)
        #expect(try await site.request("/api/v1/events").status == 401, "a revoked token is refused at once")
    }

    @Test func eventsPageByCursorWithStableIds() async throws {
        let site = try await APISite()
        // Five different cards: the same card again within seconds would be one read.
        for i in 0..<5 { try site.board.swipe(reader: "reader-b01", card: 424_242 + UInt64(i)) }
        let total = try site.eventCount()
        var after: Int64 = 0
        var serials: [Int64] = []
        var pages = 0
        while pages < 100 {
            pages += 1
            let reply = try await site.request("/api/v1/events?after=\(after)&limit=2")
            #expect(reply.status == 200)
            let json = try #require(reply.json)
            guard case .array(let events)? = json["events"] else { Issue.record("no events array: \(reply.body)"); break }
            for event in events {
                let serial = try #require(event["serial"]?.intValue)
                serials.append(serial)
                #expect(event["id"] == .string("api-1:\(serial)"))
            }
            after = try #require(json["next_after"]?.intValue)
            if json["more"] != .bool(true) { break }
        }
        #expect(serials == Array(1...Int64(total)), "every event once, in order")
        #expect(serials.count >= 6)
    }

    @Test func aLongPollReturnsAsSoonAsAnEventIsDurable() async throws {
        let site = try await APISite()
        site.controller.flush()  // the start-up events are in
        let last = site.controller.feed.lastSerial
        let poll = Task { try await site.request("/api/v1/events?after=\(last)&wait=20") }
        try await Task.sleep(for: .milliseconds(300))
        try site.board.swipe(reader: "reader-b01", card: 6_553_701)
        let reply = try await poll.value
        guard case .array(let events)? = reply.json?["events"] else { Issue.record("\(reply.body)"); return }
        #expect(events.first?["serial"] == .int(last + 1))
        #expect(events.contains { $0["reason"] == "granted" })
    }

    @Test func badParametersAndBodiesAreRefusedWithNoEffect() async throws {
        let site = try await APISite()
        let before = try site.eventCount()
        for (path, word) in [("/api/v1/events?limit=0", "limit"), ("/api/v1/events?limit=abc", "limit"), ("/api/v1/events?after=-1", "after"),
                             ("/api/v1/events?wait=31", "wait"), ("/api/v1/events?colour=red", "colour")] {
            let reply = try await site.request(path)
            #expect(reply.status == 400, "\(path)")
            #expect(reply.json?["error"]?.stringValue?.contains(word) == true, "\(path): \(reply.body)")
        }
        #expect(try await site.request("/api/v1/plates", method: "POST", body: "{\"lane\": ").status == 400)
        #expect(try await site.request("/api/v1/plates", method: "POST", body: "[1, 2]").status == 400)
        #expect(try await site.request("/api/v1/plates", method: "POST", body: #"{"lane": "lpr-in"}"#).status == 400)
        #expect(try await site.request("/api/v1/plates", method: "POST", body: #"{"lane": "lpr-in", "plate": "京A12345", "confidence": 7}"#).status == 400)
        let huge = "{\"lane\": \"lpr-in\", \"plate\": \"" + String(repeating: "A", count: 100_000) + "\"}"
        #expect(try await site.request("/api/v1/plates", method: "POST", body: huge).status == 413)
        #expect(try await site.request("/api/v1/plates", method: "POST", body: #"{"lane": "nope", "plate": "京A12345"}"#).status == 404)
        #expect(try await site.request("/api/v1/portals/b01-door/explode", method: "POST").status == 400)
        #expect(try await site.request("/api/v1/portals/nowhere/open", method: "POST").status == 404)
        #expect(try site.eventCount() == before, "nothing refused left a trace in the log")
        #expect(try site.db.portalMode("b01-door") == .normal)
    }

    @Test func platesAreDecidedAndPortalCommandsAudited() async throws {
        let site = try await APISite()
        let plate = try await site.request("/api/v1/plates", method: "POST", body: #"{"lane": "lpr-in", "plate": "京A12345", "confidence": 0.97}"#)
        #expect(plate.status == 200)
        #expect(plate.json?["granted"] == .bool(true) && plate.json?["person_id"] == "P1" && plate.json?["portal"] == "lane-in")
        let command = try await site.request("/api/v1/portals/b01-door/always-closed", method: "POST")
        #expect(command.status == 200 && command.json?["state"]?["released"] == .bool(false))
        site.controller.flush()
        #expect(try site.db.audit(operator: "api:platform").map(\.action) == ["door.always-closed"])
        #expect(try site.db.portalMode("b01-door") == .alwaysClosed)
    }

    @Test func anUndeclaredMethodIs405WithAllowAndAnUnknownPathStays404() async throws {
        let site = try await APISite()
        let before = try site.eventCount()
        for (path, method, allow) in [("/api/v1/events", "POST", "GET"), ("/api/v1/plates", "GET", "POST"),
                                      ("/api/v1/portals/b01-door/always-closed", "GET", "POST"), ("/api/v1/portals/b01-door/open", "DELETE", "POST"),
                                      ("/api/v1/indicators", "PUT", "GET"), ("/api/v1/houses/H1/summary", "POST", "GET"),
                                      ("/metrics", "POST", "GET"), ("/healthz", "DELETE", "GET")] {
            let headers = site.dir.file("headers-\(UUID().uuidString)")
            let reply = try await site.request(path, method: method, extra: ["-D", headers])
            #expect(reply.status == 405, "\(method) \(path): \(reply.body)")
            #expect(reply.json?["error"]?.stringValue?.contains(method) == true, "\(reply.body)")
            let allowHeader = (readTextFile(headers) ?? "").split(separator: "\r\n").first { $0.lowercased().hasPrefix("allow:") }
            #expect(allowHeader.map { String($0.dropFirst(6)).trimmingCharacters(in: .whitespaces) } == allow, "\(method) \(path)")
        }
        #expect(try await site.request("/api/v1/nothing").status == 404)
        #expect(try await site.request("/api/v1/portals/b01-door", method: "POST").status == 404)
        #expect(try site.eventCount() == before, "a refused method left no trace in the log")
        #expect(try site.db.portalMode("b01-door") == .normal)
    }

    @Test func anAddressThatKeepsGuessingIsRefused() async throws {
        let site = try await APISite(authFailuresPerMinute: 5)
        for _ in 0..<5 { #expect(try await site.request("/api/v1/events", token: "cat_guess").status == 401) }
        #expect(try await site.request("/api/v1/events", token: "cat_guess").status == 429)
        #expect(try await site.request("/api/v1/events").status == 429, "even a good token, from that address, for a minute")
        #expect(try await site.request("/healthz", token: .some(nil)).status == 200)
    }

    @Test func httpsWhenACertificateIsConfigured() async throws {
        let site = try await APISite(tls: true)
        let reply = try await site.request("/api/v1/events?limit=1")
        #expect(reply.status == 200 && reply.json?["events"] != nil)
    }

    /// OpenSSL's client, told to allow the old versions (security level 0), offers exactly one
    /// version: the server takes 1.2 and 1.3 and refuses 1.0 and 1.1 at the handshake.
    @Test(arguments: [("-tls1", false), ("-tls1_1", false), ("-tls1_2", true), ("-tls1_3", true)])
    func httpsIsTLS12OrNewerOnly(version: String, accepted: Bool) async throws {
        let site = try await APISite(tls: true)
        // stdin from /dev/null: s_client ends once the handshake is done.
        let client = try PeerProcess(["sh", "-c", "openssl s_client \"$@\" </dev/null", "s_client", version, "-cipher", "DEFAULT:@SECLEVEL=0",
                                      "-CAfile", site.dir.file("cert.pem"), "-verify_return_error", "-connect", "127.0.0.1:\(site.port)", "-brief"],
                                     log: site.dir.file("s_client\(version).log"))
        while !client.hasExited { try await Task.sleep(for: .milliseconds(5)) }
        let status = client.wait()
        #expect((status == 0) == accepted, "\(version): \(client.output)")
        if accepted { #expect(client.output.contains("Verification: OK"), "\(client.output)") }
    }

    @Test func httpsWithCurlAndTheSitesCA() async throws {
        let site = try await APISite(tls: true)
        let reply = try await site.request("/api/v1/events?limit=1", extra: ["--tlsv1.2"])
        #expect(reply.status == 200)
        let unknownCA = try PeerProcess(["curl", "-sS", "https://127.0.0.1:\(site.port)/healthz"], log: site.dir.file("curl-ca.log"))
        while !unknownCA.hasExited { try await Task.sleep(for: .milliseconds(5)) }
        #expect(unknownCA.wait() == 60, "without --cacert the self-made certificate is not trusted (curl's 60)")
    }
}
