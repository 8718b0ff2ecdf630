import AccessCore
import AccessTestSupport
import Testing

/// QR codes at the gate: residents' short-lived codes, the published algorithm, visitor passes
/// spent once per entry, and the serial reader's lines cut into codes.
@Suite("QR codes at the gate")
struct ResidentQRTests {
    static let root = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
    static let residentCodes = Community.codes.residentCodes
    static let now = Fixtures.at("2026-11-23T10:00")

    @Test func theTestVectorOfTheWrittenAlgorithmIsWhatTheControllerMakesAndAccepts() throws {
        let text = try #require(readTextFile("\(Self.root)/API/resident-qr.md"))
        // The table row `| code | `CAR1.…` |` of the published test vector.
        let row = try #require(text.split(separator: "\n").first { $0.hasPrefix("| code |") })
        let code = String(try #require(row.split(separator: "`").dropFirst().first))
        let secret = (0..<32).map { UInt8($0) }
        let codes = ResidentQRCode(secret: secret)
        #expect(codes.encode(personID: "P0001", expires: 1_796_083_200) == code)
        #expect(codes.verify(code) == ResidentQRCode.Verified(personID: "P0001", expires: 1_796_083_200))
        #expect(ResidentQRCode(secret: Array(secret.reversed())).verify(code) == nil, "another community's secret")
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var note: String
        var code: String
        var reason: Reason
        var person: String?
        var testDescription: String { note }
    }

    static func code(_ person: String, expiresIn seconds: Int64) -> String {
        residentCodes.encode(personID: person, expires: now + seconds)
    }

    static let cases: [Case] = [
        Case(note: "a fresh code of a resident", code: code("owner1", expiresIn: 60), reason: .granted, person: "owner1"),
        Case(note: "its last second", code: code("owner1", expiresIn: 1), reason: .granted, person: "owner1"),
        Case(note: "a code at its expiry", code: code("owner1", expiresIn: 0), reason: .expired, person: "owner1"),
        Case(note: "an old code", code: code("owner1", expiresIn: -3600), reason: .expired, person: "owner1"),
        Case(note: "a platform 30 s ahead", code: code("owner1", expiresIn: 90), reason: .granted),
        Case(note: "a code claiming to live longer than any made", code: code("owner1", expiresIn: 91), reason: .unknownCredential),
        Case(note: "a person whose lease ended", code: code("tenant-past", expiresIn: 60), reason: .expired, person: "tenant-past"),
        Case(note: "a suspended person", code: code("suspended", expiresIn: 60), reason: .suspended),
        Case(note: "a blacklisted person", code: code("banned", expiresIn: 60), reason: .blacklisted),
        Case(note: "a person not on the roster", code: code("nobody", expiresIn: 60), reason: .unknownCredential),
        Case(note: "a forged signature", code: "CAR1.owner1.\(now + 60).00000000000000000000000000000000", reason: .unknownCredential),
        Case(note: "a damaged code (a digit of the signature lost)", code: String(code("owner1", expiresIn: 60).dropLast()), reason: .unknownCredential),
        Case(note: "its expiry moved", code: code("owner1", expiresIn: 60).replacing("\(now + 60)", with: "\(now + 61)", maxReplacements: 1),
             reason: .unknownCredential),
        Case(note: "another person's signature", code: code("owner1", expiresIn: 60).replacing("owner1", with: "cleaner", maxReplacements: 1),
             reason: .unknownCredential),
        Case(note: "no fields", code: "CAR1.", reason: .unknownCredential),
        Case(note: "no person", code: "CAR1..\(now + 60).00", reason: .unknownCredential),
    ]

    @Test(arguments: cases)
    func aResidentCodeIsDecidedLikeTheirCardAndOnlyWhileItLives(_ c: Case) throws {
        let d = try Community.policy().decide(DecisionRequest(portal: "gate-in", credential: .qr(c.code), at: Self.now))
        #expect(d.reason == c.reason)
        #expect(d.granted == (c.reason == .granted))
        #expect(d.credentialKind == .qr)
        #expect(!d.consumesVisitorUse)
        if let person = c.person { #expect(d.personID == person) }
        #expect(d.alarm == (c.reason == .blacklisted))
    }

    @Test func aVisitorPassIsSpentByItsEntryAndItsReplayIsRefusedAtOnce() throws {
        let rules = Fixtures.rules()
        let layout = SiteLayout(rules: rules, doors: [
            SiteLayout.Door(id: "gate", portals: ["gate-in", "gate-out"], config: DoorConfig(unlockSeconds: 5)),
        ])
        let wall = Self.now * 1_000_000
        var time = SiteTime(mono: 1_000_000_000, wall: wall)
        var site = Site(layout: layout, policy: try Community.policy(), clock: EventClock(lastLoggedMicros: 0, wall: wall, mono: time.mono))
        _ = site.step(.start(modes: [:]), at: time)
        let code = Community.codes.encode(passID: "V1", expires: Fixtures.at("2026-11-23T18:00"))  // one entry

        let first = site.step(.credential(reader: "r-gate-in", .qr(code)), at: time)
        #expect(first.events.first?.reason == .granted)
        #expect(first.locks == [.lock(door: 0, released: true)])
        #expect(first.contains(.record(.passUse("V1"))))

        time = time.advanced(bySeconds: 30)
        let replay = site.step(.credential(reader: "r-gate-in", .qr(code)), at: time)
        #expect(replay.events.first?.reason == .usesExhausted)
        #expect(replay.locks.isEmpty)
        #expect(!replay.contains(.record(.passUse("V1"))))

        let exit = site.step(.credential(reader: "r-gate-out", .qr(code)), at: time.advanced(bySeconds: 60))
        #expect(exit.events.first?.reason == .granted, "leaving spends nothing and is still allowed")
    }

    struct LineCase: CustomTestStringConvertible, Sendable {
        var note: String
        var chunks: [[UInt8]]
        var expected: [QRLineAssembler.Output]
        var testDescription: String { note }
    }

    static let lineCases: [LineCase] = [
        LineCase(note: "one code, LF", chunks: [Array("CA1.V1.9.ab\n".utf8)], expected: [.code("CA1.V1.9.ab")]),
        LineCase(note: "CR LF is one end of line", chunks: [Array("abc\r\ndef\r\n".utf8)], expected: [.code("abc"), .code("def")]),
        LineCase(note: "a code split across reads", chunks: [Array("CAR1.P".utf8), Array("1.5.ff".utf8), [0x0D]],
                 expected: [.code("CAR1.P1.5.ff")]),
        LineCase(note: "empty lines are nothing", chunks: [Array("\n\r\n\n".utf8)], expected: []),
        LineCase(note: "a line without its end waits", chunks: [Array("abc".utf8)], expected: []),
        LineCase(note: "noise makes the whole line garbled, the next is read", chunks: [[0x61, 0xFF, 0x62, 0x0A] + Array("ok\n".utf8)],
                 expected: [.garbled("non-printable byte 0xFF in a 3-byte line"), .code("ok")]),
        LineCase(note: "a NUL is noise", chunks: [[0x00, 0x0A]], expected: [.garbled("non-printable byte 0x0 in a 1-byte line")]),
        LineCase(note: "an over-long line is dropped whole, the next is read",
                 chunks: [Array(repeating: 0x41, count: 40), Array(repeating: 0x42, count: 10), Array("\nshort\n".utf8)],
                 expected: [.garbled("line longer than 16 bytes (50)"), .code("short")]),
        LineCase(note: "exactly the longest line", chunks: [Array(repeating: 0x41, count: 16) + [0x0A]],
                 expected: [.code(String(repeating: "A", count: 16))]),
    ]

    @Test(arguments: lineCases)
    func aReadersBytesAreCutIntoCodesAndNoiseIsNeverACode(_ c: LineCase) {
        var assembler = QRLineAssembler(maxLength: 16)
        var out: [QRLineAssembler.Output] = []
        for chunk in c.chunks { out += assembler.feed(chunk) }
        #expect(out == c.expected)
    }

    @Test func aHalfLineBeforeAReplugIsDropped() {
        var assembler = QRLineAssembler(maxLength: 64)
        #expect(assembler.feed(Array("CA1.V1.17".utf8)).isEmpty)
        assembler.reset()
        #expect(assembler.feed(Array("CA1.V2.5.aa\n".utf8)) == [.code("CA1.V2.5.aa")])
    }
}
