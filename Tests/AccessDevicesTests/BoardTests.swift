import AccessConfig
import AccessCore
import AccessDevices
import AccessTestSupport
import Glibc
import Testing

@Suite("Board maps")
struct BoardMapTests {
    static let root = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")

    @Test(arguments: ["sim.toml", "rpi4-relay-hat.toml"])
    func shippedMapsParse(_ name: String) throws {
        let map = try BoardMap.load(path: "\(Self.root)/Hardware/boards/\(name)")
        #expect(!map.outputs.isEmpty && !map.inputs.isEmpty && !map.readers.isEmpty)
        #expect(Set(map.lineNames).count == map.lineNames.count)
        #expect(map.outputs.allSatisfy { !$0.safeActive }, "every output is inactive when safe")
    }

    @Test func simBoardNamesTheSimSitesReaders() throws {
        let map = try BoardMap.load(path: "\(Self.root)/Hardware/boards/sim.toml")
        #expect(map.readers.map(\.name).contains("reader-north-in"))
        #expect(map.readers.first { $0.name == "reader-north-in" }?.format == .bits26)
        #expect(map.readers.first { $0.name == "reader-b01" }?.format == nil)
        let contact = try #require(map.inputs.first { $0.name == "gate-north.contact" })
        #expect(!contact.activeLow && contact.bias == .pullUp && contact.debounceNanos == 20_000_000, "normally closed reed switch")
    }

    func problem(_ text: String) -> String? {
        do {
            _ = try BoardMap.parse(text, file: "b.toml")
            return nil
        } catch {
            return error.description
        }
    }

    @Test func mistakesNameFileLineKeyAndValue() {
        let head = "[board]\nmodel = \"m\"\n"
        #expect(problem("") == "b.toml: board: the table [board] is required")
        #expect(problem(head + "[[output]]\nname = \"x\"\nrole = \"bell\"\n") == "b.toml:5: output[0].role: \"bell\" is not one of lock, siren, light, relay, led, beeper, barrier-open, barrier-close, barrier-stop")
        #expect(problem(head + "[[output]]\nname = \"x\"\n") == "b.toml:3: output[0].role: is required (one of lock, siren, light, relay, led, beeper, barrier-open, barrier-close, barrier-stop)")
        #expect(problem(head + "[[input]]\nname = \"x\"\nrole = \"fire\"\ndebounce = 3\n") == "b.toml:6: input[0].debounce: unknown key (known here: name, role, contact, active_low, bias, debounce_ms, doc)")
        #expect(problem(head + "[[reader]]\nname = \"r\"\nd0 = \"a\"\nd1 = \"a\"\n") == "b.toml:6: reader[0].d1: line \"a\" is already used by reader[0].d0")
        #expect(problem(head + "[[reader]]\nname = \"r\"\nd0 = \"a\"\nd1 = \"b\"\nformat = \"35\"\n") == "b.toml:7: reader[0].format: \"35\" is not one of auto, 26, 34, 37, raw")
        #expect(problem(head + "[[input]]\nname = \"x\"\nrole = \"fire\"\ndebounce_ms = -1\n") == "b.toml:6: input[0].debounce_ms: -1 is out of range 0…10000")
        #expect(problem("[board\n")?.hasPrefix("b.toml:1: syntax: ") == true)
        #expect(problem(head + "[门禁]\n") == "b.toml:3: syntax: a table name cannot start with \"门\" (use letters, digits, _ and -, or quote the name)")
    }

    @Test func aReadersLedBeeperAndTamperAreLinesOfTheMapWithTheirRoles() throws {
        let lines = """
            [board]
            model = "m"
            [[output]]
            name = "r.led"
            role = "led"
            [[output]]
            name = "r.beep"
            role = "beeper"
            [[output]]
            name = "siren"
            role = "siren"
            [[input]]
            name = "r.tamper"
            role = "tamper"
            contact = "nc"
            [[input]]
            name = "fire"
            role = "fire"
            [[reader]]
            name = "r"
            d0 = "r.d0"
            d1 = "r.d1"

            """
        let map = try BoardMap.parse(lines + "led = \"r.led\"\nbeeper = \"r.beep\"\ntamper = \"r.tamper\"\n", file: "b.toml")
        #expect(map.siteReaders == [SiteLayout.Reader(name: "r", led: "r.led", beeper: "r.beep", tamper: "r.tamper")])
        #expect(problem(lines + "led = \"r.lamp\"\n") == "b.toml:23: reader[0].led: no [[output]] named \"r.lamp\"")
        #expect(problem(lines + "beeper = \"siren\"\n") == "b.toml:23: reader[0].beeper: output \"siren\" has role siren, not beeper")
        #expect(problem(lines + "tamper = \"fire\"\n") == "b.toml:23: reader[0].tamper: input \"fire\" has role fire, not tamper")
        #expect(problem(lines + "led = \"r.led\"\nbeeper = \"r.led\"\n")?.hasSuffix("reader[0].beeper: output \"r.led\" has role led, not beeper") == true)
        let sim = try BoardMap.load(path: "\(Self.root)/Hardware/boards/sim.toml")
        #expect(sim.siteReaders.first { $0.name == "reader-north-in" }?.tamper == "reader-north-in.tamper")
        #expect(sim.siteReaders.first { $0.name == "reader-b01" }?.led == "reader-b01.led")
    }

    @Test func missingFileIsNamed() {
        #expect(throws: ConfigError(file: "/nonexistent.toml", line: nil, key: "file", problem: "cannot be read: No such file or directory")) {
            try BoardMap.load(path: "/nonexistent.toml")
        }
    }

    /// What Hardware/hil/host-lib.sh gives a gpio-sim chip (through `access-gpio-probe --list-lines`).
    @Test func lineNamesAreOutputsThenInputsThenReaderDataLines() throws {
        let map = try BoardMap.parse("""
            [board]
            model = "m"
            [[reader]]
            name = "r"
            d0 = "r.d0"
            d1 = "r.d1"
            [[input]]
            name = "door"
            role = "door-contact"
            [[output]]
            name = "lock"
            role = "lock"
            """, file: "b.toml")
        #expect(map.lineNames == ["lock", "door", "r.d0", "r.d1"])
    }
}

@Suite("Edge processor")
struct EdgeProcessorTests {
    static let map = BoardMap(
        model: "test",
        inputs: [BoardMap.Input(name: "door.contact", role: .doorContact, activeLow: true, bias: .pullUp, debounceNanos: 20_000_000)],
        readers: [BoardMap.Reader(name: "r1", d0: "r1.d0", d1: "r1.d1", bias: .pullUp, format: .bits26, silenceNanos: 25_000_000)]
    )

    @Test func readerBitsBecomeACardAtTheLastEdge() throws {
        var p = EdgeProcessor(map: Self.map)
        let (bits, n) = try #require(WiegandDecoder.encode(cardNumber: 6_553_701, format: .bits26))
        var events: [BoardEvent] = []
        for i in 0..<n {
            events += p.readerBit(0, bit: UInt8((bits >> UInt64(n - 1 - i)) & 1), at: 1_000 + UInt64(i) * 1_500_000)
        }
        #expect(events.count == 1)
        guard case .card(let reader, let frame, let lastEdge)? = events.first else { Issue.record("no card"); return }
        #expect(reader == "r1" && frame.cardNumber == 6_553_701)
        #expect(lastEdge == 1_000 + UInt64(n - 1) * 1_500_000)
    }

    @Test func inputsAreDebounced() {
        var p = EdgeProcessor(map: Self.map)
        var level = false
        #expect(p.initial(0, active: false, at: 0) == .input(line: "door.contact", active: false, monotonicNanos: 0))
        // A 2 ms glitch: two edges, level back where it was when the debounce ends.
        p.inputEdge(0, at: 1_000_000)
        p.inputEdge(0, at: 3_000_000)
        #expect(p.nextDeadline == 23_000_000)
        #expect(p.due(now: 22_999_999) { _ in level }.isEmpty)
        #expect(p.due(now: 23_000_000) { _ in level }.isEmpty)
        // A real opening: reported once stable.
        level = true
        p.inputEdge(0, at: 50_000_000)
        let opened = p.due(now: 70_000_000) { _ in level }
        #expect(opened == [BoardEvent.input(line: "door.contact", active: true, monotonicNanos: 70_000_000)])
        #expect(p.nextDeadline == nil)
    }

    @Test func overrunSpoilsTheFrameAndIsReported() throws {
        var p = EdgeProcessor(map: Self.map)
        _ = p.readerBit(0, bit: 1, at: 0)
        let overrun = p.readerOverrun(0, line: "r1.d1", at: 1_000_000)
        #expect(overrun == [BoardEvent.overrun(line: "r1.d1")])
        let spoilt = p.due(now: 26_000_000) { (_: Int) -> Bool? in nil }
        #expect(spoilt == [BoardEvent.garbled(reader: "r1", reason: .overrun(bits: 1))])
    }
}

@Suite("Device errors")
struct DeviceErrorTests {
    @Test func errnoAndLibmodbusCodesReadAsText() {
        #expect(DeviceError.gpio(operation: "request output", line: "door1.lock", errno: EBUSY).description
            == "GPIO request output on line door1.lock failed: Device or resource busy (errno 16)")
        // MODBUS_ENOBASE + 12: libmodbus's "Invalid CRC".
        #expect(DeviceError.modbus(operation: "read", device: "gate", errno: 112_345_678 + 12).description
            == "Modbus read on gate failed: Invalid CRC (errno 112345690)")
    }
}

@Suite("Contacts")
struct ContactTests {
    @Test func normallyClosedAndOpenContacts() throws {
        let text = """
            [board]
            model = "m"
            [[input]]
            name = "door"
            role = "door-contact"
            contact = "nc"
            [[input]]
            name = "button"
            role = "exit-button"
            contact = "no"
            """
        let map = try BoardMap.parse(text, file: "b.toml")
        #expect(map.inputs.map(\.activeLow) == [false, true])
        #expect(throws: ConfigError(file: "b.toml", line: 6, key: "input[0].contact", problem: "give contact or active_low, not both")) {
            try BoardMap.parse(text.replacingOccurrences(of: "contact = \"nc\"", with: "contact = \"nc\"\nactive_low = true"), file: "b.toml")
        }
        #expect(throws: ConfigError(file: "b.toml", line: 6, key: "input[0].contact", problem: "\"closed\" is not no or nc")) {
            try BoardMap.parse(text.replacingOccurrences(of: "contact = \"nc\"", with: "contact = \"closed\""), file: "b.toml")
        }
    }
}
