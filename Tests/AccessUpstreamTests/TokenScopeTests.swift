import AccessCore
import AccessRuntime
import AccessStore
import AccessTestSupport
import Foundation
import Testing

/// Token scopes, expiry, last use and the wrong-token limiter, on a real socket with curl.
@Suite("API token scopes over a real socket", .serialized)
struct TokenScopeTests {
    /// Each route with the scope it needs, and a request there that succeeds with that scope.
    static let routes: [(scope: APIScope, method: String, path: String, body: String?)] = [
        (.eventsRead, "GET", "/api/v1/events?limit=1", nil),
        (.platesWrite, "POST", "/api/v1/plates", #"{"lane": "lpr-in", "plate": "京A12345"}"#),
        (.portalsCommand, "POST", "/api/v1/portals/b01-door/open", nil),
        (.metricsRead, "GET", "/metrics", nil),
        (.analyticsRead, "GET", "/api/v1/indicators", nil),
    ]

    @Test func aTokenWithoutTheRoutesScopeGets403NamingItAndChangesNothing() async throws {
        let site = try await APISite()
        for route in Self.routes {
            let others = Set(APIScope.allCases).subtracting([route.scope])
            let token = try site.db.addAPIToken(name: "without-\(route.scope.rawValue.replacingOccurrences(of: ":", with: "-"))",
                                                scopes: others, operator: "t", nowMicros: AccessDatabase.nowMicros())
            let before = try site.eventCount()
            let reply = try await site.request(route.path, method: route.method, body: route.body, token: token)
            #expect(reply.status == 403, "\(route.path)")
            #expect(reply.json?["required_scope"] == .string(route.scope.rawValue), "\(reply.body)")
            if case .string(let message)? = reply.json?["error"] { #expect(message.contains(route.scope.rawValue)) }
            #expect(try site.eventCount() == before, "a refused \(route.path) left no event")
        }
        #expect(try site.db.portalMode("b01-door") == .normal)
        #expect(try site.db.audit(target: "b01-door").isEmpty, "no door command was audited")
    }

    @Test func aTokenWithOnlyTheRoutesScopeIsServed() async throws {
        let site = try await APISite()
        for route in Self.routes where route.scope != .analyticsRead {  // analytics are off here: 503 after the scope check
            let token = try site.db.addAPIToken(name: "only-\(route.scope.rawValue.replacingOccurrences(of: ":", with: "-"))",
                                                scopes: [route.scope], operator: "t", nowMicros: AccessDatabase.nowMicros())
            let reply = try await site.request(route.path, method: route.method, body: route.body, token: token)
            #expect(reply.status == 200, "\(route.path): \(reply.body)")
        }
        let analytics = try site.db.addAPIToken(name: "analytics", scopes: [.analyticsRead], operator: "t", nowMicros: AccessDatabase.nowMicros())
        #expect(try await site.request("/api/v1/indicators", token: analytics).status == 503, "past the scope check")
    }

    @Test func thePlateCamerasTokenCannotOpenADoor() async throws {
        let site = try await APISite()
        let camera = try site.db.addAPIToken(name: "camera", scopes: [.platesWrite], operator: "t", nowMicros: AccessDatabase.nowMicros())
        #expect(try await site.request("/api/v1/plates", method: "POST", body: #"{"lane": "lpr-in", "plate": "京A12345"}"#, token: camera).status == 200)
        let open = try await site.request("/api/v1/portals/b01-door/always-open", method: "POST", token: camera)
        #expect(open.status == 403)
        #expect(open.json?["required_scope"] == .string("portals:command"))
        #expect(try site.db.portalMode("b01-door") == .normal)
    }

    @Test func expiredAndRevokedTokensGet401() async throws {
        let clock = ManualClock(wallMicros: AccessDatabase.nowMicros())
        let site = try await APISite(apiClock: clock)
        let now = clock.wallMicros()
        let shortLived = try site.db.addAPIToken(name: "short", scopes: [.eventsRead], expiresMicros: now + 3_600_000_000,
                                                 operator: "t", nowMicros: now)
        #expect(try await site.request("/api/v1/events", token: shortLived).status == 200)
        clock.advance(by: .seconds(3_600))
        let expired = try await site.request("/api/v1/events", token: shortLived)
        #expect(expired.status == 401)
        #expect(expired.json?["error"] == .string("the bearer token has expired"))

        let revoked = try site.db.addAPIToken(name: "gone", scopes: [.eventsRead], operator: "t", nowMicros: now)
        #expect(try await site.request("/api/v1/events", token: revoked).status == 200)
        try site.db.revokeAPIToken(name: "gone", operator: "t", nowMicros: now)
        #expect(try await site.request("/api/v1/events", token: revoked).status == 401)
        #expect(!expired.body.contains(shortLived), "the token is never echoed")
    }

    @Test func anotherControllersTokenIsNotValidHere() async throws {
        let here = try await APISite()
        let there = try await APISite()
        #expect(try await there.request("/api/v1/events").status == 200)
        let reply = try await here.request("/api/v1/events", token: there.token)
        #expect(reply.status == 401 && reply.json?["error"] == .string("the bearer token is not valid"))
    }

    @Test func theLastUseIsRecordedAtMostOnceAMinute() async throws {
        let clock = ManualClock(wallMicros: AccessDatabase.nowMicros())
        let site = try await APISite(apiClock: clock)
        let used = { try site.db.apiTokens().first { $0.name == "platform" }?.lastUsedMicros }
        #expect(try used() == nil)
        let first = clock.wallMicros()
        #expect(try await site.request("/api/v1/events").status == 200)
        #expect(try used() == first)
        clock.advance(by: .seconds(30))
        #expect(try await site.request("/api/v1/events").status == 200)
        #expect(try used() == first, "within the minute: not written again")
        clock.advance(by: .seconds(31))
        #expect(try await site.request("/api/v1/events").status == 200)
        #expect(try used() == clock.wallMicros())
    }

    @Test func tenThousandWrongTokensFromOneAddressAre429ForItAloneWhileOthersAreServed() async throws {
        let site = try await APISite()
        // One curl, 10,000 requests in a row, each with a different wrong token.
        var blocks: [String] = []
        for i in 0..<10_000 {
            blocks.append("""
                url = "http://127.0.0.1:\(site.port)/api/v1/events"
                header = "Authorization: Bearer cat_guess\(i)"
                output = "/dev/null"
                write-out = "%{http_code}\\n"
                silent
                show-error
                """)
        }
        // `next` ends one URL's options: headers would otherwise pile up on every later request.
        let config = site.dir.write("guesses.curl", blocks.joined(separator: "\nnext\n") + "\n")
        let attacker = try PeerProcess(["curl", "--config", config],
                                       log: site.dir.file("attacker.log"))
        // Another address (the whole of 127/8 is loopback) is served throughout, with no refusal.
        var servedDuring = 0
        while !attacker.hasExited {
            let reply = try await site.request("/api/v1/events?limit=1", extra: ["--interface", "127.0.0.2"])
            #expect(reply.status == 200, "\(reply.body)")
            servedDuring += 1
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(attacker.wait() == 0)
        let codes = attacker.output.split(separator: "\n").map(String.init)
        #expect(codes.count == 10_000)
        #expect(codes.prefix(20).allSatisfy { $0 == "401" }, "the first 20 are checked")
        #expect(codes.dropFirst(20).allSatisfy { $0 == "429" }, "then the address is refused without a check")
        #expect(servedDuring > 0)
        #expect(try await site.request("/api/v1/events").status == 429, "even a good token from the guessing address")
        #expect(try await site.request("/api/v1/events", extra: ["--interface", "127.0.0.2"]).status == 200)
        #expect(try await site.request("/api/v1/events", extra: ["--interface", "127.0.0.3"]).status == 200)
    }
}
