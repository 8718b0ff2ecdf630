import AccessConfig
import AccessCore
import AccessDevices
import AccessTestSupport
import Glibc
import Synchronization
import Testing

// The serial QR reader's real driver (termios, its own thread) on a socat pty pair: the test
// writes what a reader would send into the other end, and unplugs the reader by killing socat.
@Suite("Serial QR reader on a pty pair", .serialized, .timeLimit(.minutes(2)))
struct SerialQRReaderTests {
    /// What the driver handed over, in order.
    final class Seen: Sendable {
        let events = Mutex<[BoardEvent]>([])
        func add(_ event: BoardEvent) { events.withLock { $0.append(event) } }
        var all: [BoardEvent] { events.withLock { $0 } }
        var codes: [String] { all.compactMap { if case .qr(_, let code) = $0 { code } else { nil } } }
        var garbled: [String] { all.compactMap { if case .garbledLine(_, let problem) = $0 { problem } else { nil } } }
        var online: [Bool] { all.compactMap { if case .device(_, let online) = $0 { online } else { nil } } }

        /// Waits (bounded, polling) until `condition` holds.
        func wait(_ condition: (Seen) -> Bool) async -> Bool {
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                if condition(self) { return true }
                try? await Task.sleep(for: .milliseconds(10))
            }
            return condition(self)
        }
    }

    @Test func codesAreReadNoiseAndOverlongLinesAreDroppedAndAnUnpluggedReaderComesBack() async throws {
        let dir = TemporaryDirectory("qr-reader")
        var pty = try await PtyPair(dir: dir)
        let seen = Seen()
        let reader = try SerialQRReader(reader: BoardMap.QRReader(name: "qr-1", device: pty.a, baud: 9600, maxLength: 64)) { seen.add($0) }
        try reader.start()
        defer { reader.stop() }
        #expect(await seen.wait { $0.online == [true] })

        try PtyPair.send(Array("CA1.V1.1795420800.00ff\r\n".utf8) + [0x41, 0xFF, 0x42, 0x0A]
                      + Array(repeating: 0x43, count: 100) + [0x0A] + Array("CAR1.P1.5.ab\n".utf8), to: pty.b)
        #expect(await seen.wait { $0.codes.count == 2 && $0.garbled.count == 2 })
        #expect(seen.codes == ["CA1.V1.1795420800.00ff", "CAR1.P1.5.ab"])
        #expect(seen.garbled == ["non-printable byte 0xFF in a 3-byte line", "line longer than 64 bytes (100)"])

        // Unplugged: the tty's other end goes away.
        try PtyPair.send(Array("half a co".utf8), to: pty.b)
        pty.kill()
        #expect(await seen.wait { $0.online == [true, false] })
        guard case .serial(let operation, let device, let code)? = reader.failure else {
            Issue.record("no serial failure recorded: \(String(describing: reader.failure))")
            return
        }
        #expect(device == pty.a && ["read", "poll", "open"].contains(operation) && code != 0)

        // Plugged back in (a new pty at the same path): the reader reopens it by itself.
        pty = try await PtyPair(dir: dir)
        defer { pty.kill() }
        #expect(await seen.wait { $0.online == [true, false, true] })
        try PtyPair.send(Array("de\nCA1.V2.1795420800.aa\n".utf8), to: pty.b)
        #expect(await seen.wait { $0.codes.count == 4 })
        #expect(seen.codes.suffix(2) == ["de", "CA1.V2.1795420800.aa"])
        #expect(!seen.codes.contains("half a code"), "the half line from before the unplug is never completed")
        #expect(seen.garbled.count == 2, "\(seen.all)")
    }

    @Test func aReaderWithoutADeviceIsAConfigurationErrorAndAMissingPortIsReportedOffline() async throws {
        #expect(throws: DeviceError.configuration(file: "board map", key: "qr_reader sim.device", problem: "no serial device given")) {
            try SerialQRReader(reader: BoardMap.QRReader(name: "sim")) { _ in }
        }
        let seen = Seen()
        let reader = try SerialQRReader(reader: BoardMap.QRReader(name: "qr-x", device: "/nonexistent/ttyQR")) { seen.add($0) }
        try reader.start()
        defer { reader.stop() }
        #expect(await seen.wait { $0.online == [false] })
        #expect(reader.failure == .serial(operation: "open", device: "/nonexistent/ttyQR", errno: ENOENT))
        #expect(reader.failure?.description == "serial open on /nonexistent/ttyQR failed: No such file or directory (errno 2)")
    }

    @Test(arguments: [
        ("name = \"qr-1\"\nbaud = 9601", "maps/b.toml:9: qr_reader[0].baud: 9601 is not one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200"),
        ("name = \"qr-1\"\ndevice = \"ttyUSB0\"", "maps/b.toml:9: qr_reader[0].device: \"ttyUSB0\" is not an absolute path (/dev/ttyUSB0)"),
        ("name = \"r1\"", "maps/b.toml:8: qr_reader[0].name: reader \"r1\" is declared twice"),
        ("name = \"qr-1\"\nmax_length = 8", "maps/b.toml:9: qr_reader[0].max_length: 8 is out of range 16…4096"),
        ("name = \"qr-1\"\nparity = \"even\"", "maps/b.toml:9: qr_reader[0].parity: unknown key (known here: name, device, baud, max_length, doc)"),
    ])
    func aQRReaderInABoardMapIsCheckedWithItsLine(body: String, expected: String) {
        let text = "[board]\nmodel = \"m\"\n[[reader]]\nname = \"r1\"\nd0 = \"a\"\nd1 = \"b\"\n[[qr_reader]]\n" + body + "\n"
        do {
            _ = try BoardMap.parse(text, file: "maps/b.toml")
            Issue.record("accepted: \(body)")
        } catch {
            #expect("\(error)" == expected)
        }
    }

    @Test func theSimulatedBoardHasAQRReaderAtTheNorthGate() throws {
        let root = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        let map = try BoardMap.load(path: "\(root)/Hardware/boards/sim.toml")
        #expect(map.qrReaders == [BoardMap.QRReader(name: "qr-north-in")])
        #expect(map.readerNames.contains("qr-north-in") && map.readerNames.contains("reader-north-in"))
    }
}
