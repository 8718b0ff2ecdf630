import AccessCore
import AccessTestSupport
import Foundation
import Testing

/// Mutated and random raw HTTP requests at the real server on 127.0.0.1: every one answered with
/// a status below 500 or a closed connection, none hangs, a refused request leaves no audit entry,
/// and the server goes on answering. The client is Python (raw sockets, one connection a request),
/// so malformed request lines and headers reach the server as sent.
/// `ACCESS_FUZZ_SCALE` / `ACCESS_FUZZ_SEED` scale and replay (AccessTestSupport/Fuzzing.swift).
@Suite("Fuzzing: HTTP API", .serialized)
struct HTTPFuzzTests {
    static let client = #"""
        import random, socket, sys, time
        port, token, seed, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        rng = random.Random(seed)
        def request(method, path, body=b"", auth=True):
            head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            if auth: head += f"Authorization: Bearer {token}\r\n"
            if body: head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            return head.encode() + b"\r\n" + body
        templates = [
            request("GET", "/api/v1/events?after=0&limit=5"),
            request("GET", "/api/v1/events?after=3&limit=1000"),
            request("GET", "/healthz", auth=False),
            request("GET", "/metrics"),
            request("GET", "/api/v1/houses/B01-0301/summary"),
            request("GET", "/api/v1/indicators"),
            request("POST", "/api/v1/plates", '{"lane": "lpr-in", "plate": "京A12345", "confidence": 0.9}'.encode()),
            request("POST", "/api/v1/portals/b01-door/open"),
            request("POST", "/api/v1/portals/b01-door/always-closed"),
        ]
        tokens = [b"\r\n", b"\n", b"\r\n\r\n", b" ", b"\x00", b"\xff", b"%", b"%zz", b"?", b"&", b"=", b"..", b"/", b'"', b"{", b"}",
                  b"Content-Length: 99999999999\r\n", b"Content-Length: -1\r\n", b"Transfer-Encoding: chunked\r\n",
                  b"Authorization: Bearer x\r\n", b"A" * 9000, "京".encode(), b"\xe4\xba"]
        def mutate(data):
            data = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                at = rng.randint(0, len(data))
                op = rng.randint(0, 4)
                if op == 0 and data: data[min(at, len(data) - 1)] ^= 1 << rng.randint(0, 7)
                elif op == 1: del data[at:at + rng.randint(1, 12)]
                elif op == 2: data[at:at] = bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 8)))
                else: data[at:at] = rng.choice(tokens)
            return bytes(data)
        for i in range(count):
            if rng.random() < 0.05:
                data = bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 300)))
            else:
                data = mutate(rng.choice(templates))
            first = "".join(c if 33 <= ord(c) < 127 else "_" for c in data.split(b"\r\n", 1)[0][:60].decode("latin-1")) or "-"
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            reply, outcome = b"", None
            try:
                s.sendall(data)
                deadline = time.monotonic() + 3
                half_closed = False
                while outcome is None:
                    s.settimeout(max(0.05, deadline - time.monotonic()))
                    try:
                        chunk = s.recv(65536)
                    except socket.timeout:
                        if not half_closed:
                            # Maybe the server waits for more of a body: say there is no more.
                            half_closed = True
                            s.shutdown(socket.SHUT_WR)
                            deadline = time.monotonic() + 5
                            continue
                        outcome = "TIMEOUT"
                        break
                    except ConnectionResetError:
                        outcome = "CLOSED"
                        break
                    if not chunk:
                        outcome = "CLOSED"
                        break
                    reply += chunk
                    if b"\r\n" in reply:
                        line = reply.split(b"\r\n", 1)[0].split(b" ")
                        outcome = line[1].decode() if len(line) > 1 and line[0].startswith(b"HTTP/1.") else "NONHTTP"
            except (BrokenPipeError, ConnectionResetError):
                outcome = outcome or "CLOSED"
            finally:
                s.close()
            print(outcome, first, flush=True)
        """#

    @Test func mutatedRawRequestsGetAClearRefusalAndNoEffect() async throws {
        let fuzz = FuzzRun("http-api")
        // With the analytics running, so their routes answer too (without them they are 503 by design).
        let site = try await APISite(authFailuresPerMinute: 10_000, analytics: { try AnalyticsServiceTests.service($0) })
        let before = (events: try site.eventCount(), audit: try site.db.audit(limit: 1_000_000).count)
        let script = site.dir.write("fuzz-client.py", Self.client)
        let count = fuzz.cases(300)
        let client = try PeerProcess(["python3", script, String(site.port), site.token, String(fuzz.seed % 1_000_000_007), String(count)],
                                     log: site.dir.file("fuzz-client.log"))
        // Waits without holding a thread: the server answers from the same cooperative pool.
        let deadline = ContinuousClock.now + .seconds(Int64(count) * 9)
        while !client.hasExited && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(client.hasExited, "the fuzz client finished in time, \(fuzz)")
        #expect(client.wait() == 0, "\(client.output.suffix(2000))")
        let lines = client.output.split(separator: "\n").map { $0.split(separator: " ", maxSplits: 1).map(String.init) }.filter { $0.count == 2 }
        #expect(lines.count == count, "one outcome per request: \(lines.count) of \(count), \(fuzz)")
        var outcomes: [String: Int] = [:]
        for line in lines { outcomes[line[0], default: 0] += 1 }
        for line in lines {
            #expect(line[0] != "TIMEOUT", "the server never answered \(line[1]), \(fuzz)")
            if let status = Int(line[0]) { #expect((200..<500).contains(status), "\(status) for \(line[1]), \(fuzz)") }
        }
        let succeeded = lines.filter { Int($0[0]).map { (200..<300).contains($0) } ?? false }.count
        let refused = lines.filter { Int($0[0]).map { (400..<500).contains($0) } ?? false }.count
        #expect(refused > count / 4, "most mutations are refused: \(outcomes)")
        // Portal commands are audited; a refused one must not be.
        site.controller.flush()
        let audited = try site.db.audit(limit: 1_000_000).count - before.audit
        #expect(audited <= succeeded, "\(audited) audit entries but \(succeeded) requests succeeded, \(fuzz)")
        // Still serving.
        let health = try await site.request("/healthz", token: .some(nil))
        #expect(health.status == 200)
        let page = try await site.request("/api/v1/events?after=0&limit=1000")
        #expect(page.status == 200 && page.json?["events"] != nil)
        #expect(try site.eventCount() >= before.events)
    }
}
