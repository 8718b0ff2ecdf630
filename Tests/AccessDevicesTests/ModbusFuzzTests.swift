import AccessConfig
import AccessCore
import AccessDevices
import AccessTestSupport
import Foundation
import Testing

/// A Modbus TCP peer that answers with what broken devices and gateways send: wrong lengths,
/// wrong transaction ids, units and function codes, truncated frames, random bytes, exception
/// codes (valid and not), silence and dropped connections. The real driver (libmodbus) must turn
/// each into a typed error within its timeout, never accept a wrong answer, and read correctly
/// again once the peer behaves. (A Modbus TCP frame has no checksum: changed register values in
/// an otherwise correct frame cannot be detected by any client, so the peer never sends those.)
/// `ACCESS_FUZZ_SCALE` / `ACCESS_FUZZ_SEED` scale and replay.
@Suite("Fuzzing: Modbus replies", .serialized, .timeLimit(.minutes(10)))
struct ModbusFuzzTests {
    static let peer = #"""
        import random, socket, struct, sys
        port_file, seed, garbage = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        rng = random.Random(seed)
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        with open(port_file + ".tmp", "w") as f: f.write(str(server.getsockname()[1]))
        import os; os.rename(port_file + ".tmp", port_file)
        answered = 0
        def read_exact(c, n):
            data = b""
            while len(data) < n:
                chunk = c.recv(n - len(data))
                if not chunk: raise ConnectionError
                data += chunk
            return data
        while True:
            c, _ = server.accept()
            try:
                while True:
                    head = read_exact(c, 7)
                    tid, proto, length, unit = struct.unpack(">HHHB", head)
                    pdu = read_exact(c, length - 1)
                    fc, address, count = pdu[0], *struct.unpack(">HH", pdu[1:5])
                    data = b"".join(struct.pack(">H", (address + i) & 0xFFFF) for i in range(count))
                    good_pdu = bytes([fc, 2 * count]) + data
                    def frame(t=tid, u=unit, p=good_pdu, ln=None):
                        return struct.pack(">HHHB", t, 0, len(p) + 1 if ln is None else ln, u) + p
                    answered += 1
                    if answered > garbage:
                        c.sendall(frame()); continue
                    kind = rng.randint(0, 11)
                    if kind == 0: c.sendall(frame(t=(tid + rng.randint(1, 500)) & 0xFFFF))            # another transaction
                    elif kind == 1: c.sendall(frame(u=(unit + rng.randint(1, 200)) & 0xFF))          # another unit
                    elif kind == 2: c.sendall(frame(p=bytes([fc ^ rng.choice([1, 2, 4, 7])]) + good_pdu[1:]))  # another function
                    elif kind == 3: c.sendall(frame(p=bytes([fc, 2 * count + rng.choice([-2, -1, 1, 2])]) + data))  # byte count wrong
                    elif kind == 4: c.sendall(frame(p=good_pdu[:-rng.randint(1, len(good_pdu) - 1)]))  # short data
                    elif kind == 5: c.sendall(frame(ln=rng.randint(0, 300)))                          # MBAP length wrong
                    elif kind == 6: c.sendall(frame()[:rng.randint(1, 8)]); c.close(); break          # truncated, then gone
                    elif kind == 7: c.sendall(bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 40))))  # noise
                    elif kind == 8: c.sendall(frame(p=bytes([fc | 0x80, rng.choice([1, 2, 3, 4, 6, 11, rng.randint(0, 255)])])))  # exception
                    elif kind == 9: c.close(); break                                                  # hang up
                    elif kind == 10: pass                                                             # silence
                    else: c.sendall(frame(p=good_pdu + bytes(rng.randint(1, 6))))                     # extra bytes
            except (ConnectionError, OSError):
                pass
            finally:
                c.close()
        """#

    @Test func brokenRepliesAreTypedErrorsNeverWrongValuesAndTheBusRecovers() async throws {
        let fuzz = FuzzRun("modbus-replies")
        let dir = TemporaryDirectory("modbus-fuzz")
        let garbage = fuzz.cases(150)
        let script = dir.write("peer.py", Self.peer)
        let portFile = dir.file("port")
        let peer = try PeerProcess(["python3", script, portFile, String(fuzz.seed % 1_000_000_007), String(garbage)], log: dir.file("peer.log"))
        defer { peer.kill() }
        let deadline = ContinuousClock.now + .seconds(10)
        while readTextFile(portFile) == nil && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let port = try #require(readTextFile(portFile).flatMap { Int($0) }, "the peer is listening: \(peer.output)")
        let bus = try ModbusBus(config: ModbusBusConfig(id: "fuzz", transport: .tcp(host: "127.0.0.1", port: port),
                                                        responseTimeout: .milliseconds(150), retries: 0,
                                                        reconnectMin: .milliseconds(10), reconnectMax: .milliseconds(50)))
        var outcomes: [String: Int] = [:]
        var generator = fuzz.generator
        // One request a reply of garbage (a request refused while the bus is offline reaches no
        // peer, so some garbage may be left), then requests until 20 in a row are answered.
        var inARow = 0
        for attempt in 0..<(garbage + 400) {
            let address = UInt16.random(in: 0...1000, using: &generator)
            let count = Int.random(in: 1...20, using: &generator)
            do {
                let values = try await bus.readHoldingRegisters(unit: 7, address: address, count: count)
                #expect(values == (0..<count).map { UInt16(truncatingIfNeeded: Int(address) + $0) },
                        "attempt \(attempt): a wrong answer was accepted, \(fuzz)")
                outcomes["answered", default: 0] += 1
                inARow += 1
                if attempt >= garbage && inARow >= 20 { break }  // the peer behaves now
            } catch let error as DeviceError {
                inARow = 0
                switch error {
                case .modbus: outcomes["error", default: 0] += 1
                case .modbusException: outcomes["exception", default: 0] += 1
                case .offline: outcomes["offline", default: 0] += 1
                default: Issue.record("attempt \(attempt): unexpected \(error), \(fuzz)")
                }
                #expect(!error.description.isEmpty)
            } catch {
                Issue.record("attempt \(attempt): an untyped error \(error), \(fuzz)")
            }
        }
        #expect(inARow >= 20, "the bus reads correctly once the peer behaves: \(outcomes), \(fuzz)")
        #expect(outcomes["error", default: 0] > 0 && outcomes["exception", default: 0] > 0, "\(outcomes)")
        let stats = await bus.statistics
        #expect(stats.connects > 1, "hang-ups were reconnected: \(stats)")
    }
}
