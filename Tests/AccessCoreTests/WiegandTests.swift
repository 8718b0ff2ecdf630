import AccessCore
import AccessTestSupport
import Testing

@Suite("Wiegand")
struct WiegandTests {
    static func bits(_ text: String) -> (UInt64, Int) {
        (text.reduce(0) { $0 << 1 | ($1 == "1" ? 1 : 0) }, text.count)
    }

    @Test func decodesAKnown26BitFrame() throws {
        // Facility 1, card 1: data 0000_0001 0000_0000_0000_0001; even parity over the first 12 data bits (one 1 → 1),
        // odd parity over the last 12 (one 1 → 0).
        let (b, n) = Self.bits("1" + "00000001" + "0000000000000001" + "0")
        guard case .card(let frame) = WiegandDecoder.decode(bits: b, count: n, format: nil) else { Issue.record("not a card"); return }
        #expect(frame.format == .bits26)
        #expect(frame.facility == 1)
        #expect(frame.cardNumber == 65_537)
    }

    @Test(arguments: [WiegandFormat.bits26, .bits34, .bits37])
    func everyNumberRoundTripsAndEverySingleBitErrorIsCaught(_ format: WiegandFormat) throws {
        let count = try #require(format.bitCount)
        var generator = SeededGenerator(seed: 42)
        for _ in 0..<500 {
            let number = UInt64.random(in: 0..<(1 << UInt64(count - 2)), using: &generator)
            let (bits, n) = try #require(WiegandDecoder.encode(cardNumber: number, format: format))
            #expect(n == count)
            #expect(WiegandDecoder.decode(bits: bits, count: n, format: format) == .card(
                WiegandFrame(format: format, bitCount: n, bits: bits, cardNumber: number,
                             facility: format == .bits34 ? nil : number >> UInt64(count - 2 - (format == .bits26 ? 8 : 16)))))
            // A flipped bit is never read as a card: parity catches every single-bit error.
            let flip = Int.random(in: 0..<n, using: &generator)
            let damaged = WiegandDecoder.decode(bits: bits ^ (1 << UInt64(flip)), count: n, format: format)
            #expect(damaged == .garbled(.parity(bits: n)), "bit \(flip) of \(number)")
        }
    }

    @Test func numbersTooLargeForAFormatAreRefused() {
        #expect(WiegandDecoder.encode(cardNumber: 1 << 24, format: .bits26) == nil)
        #expect(WiegandDecoder.encode(cardNumber: (1 << 24) - 1, format: .bits26) != nil)
    }

    @Test func keypadKeys() {
        #expect(WiegandDecoder.decode(bits: 0b0101, count: 4, format: nil) == .key(.digit(5)))
        #expect(WiegandDecoder.decode(bits: 0b1011, count: 4, format: .bits26) == .key(.hash))
        let (b8, n8) = WiegandDecoder.encode(key: .star)
        #expect(WiegandDecoder.decode(bits: b8, count: n8, format: nil) == .key(.star))
        #expect(WiegandDecoder.decode(bits: 0b1111_0001, count: 8, format: nil) == .garbled(.keypadCheck(bits: 0b1111_0001)))
        #expect(WiegandDecoder.decode(bits: 0b1111, count: 4, format: nil) == .garbled(.length(bits: 4)))
    }

    @Test func lengthsNoFormatAccepts() {
        #expect(WiegandDecoder.decode(bits: 0, count: 25, format: nil) == .garbled(.length(bits: 25)))
        #expect(WiegandDecoder.decode(bits: 0, count: 26, format: .bits34) == .garbled(.length(bits: 26)))
        #expect(WiegandDecoder.decode(bits: 0b1011, count: 30, format: .raw) == .card(WiegandFrame(format: .raw, bitCount: 30, bits: 0b1011, cardNumber: 0b1011, facility: nil)))
    }

    func feed(_ a: inout WiegandAssembler, _ bits: UInt64, _ count: Int, from start: UInt64, gap: UInt64 = 2_000_000) -> [WiegandOutput] {
        var out: [WiegandOutput] = []
        for i in 0..<count {
            out += a.bit(UInt8((bits >> UInt64(count - 1 - i)) & 1), at: start + UInt64(i) * gap)
        }
        return out
    }

    @Test func configuredFormatCompletesOnTheLastBitWithoutWaiting() throws {
        var a = WiegandAssembler(format: .bits26)
        let (bits, n) = try #require(WiegandDecoder.encode(cardNumber: 123_456, format: .bits26))
        let out = feed(&a, bits, n, from: 1_000)
        #expect(out.count == 1)
        guard case .card(let frame)? = out.first else { Issue.record("no card"); return }
        #expect(frame.cardNumber == 123_456)
        #expect(a.deadline == nil)
    }

    @Test func autoModeWaitsForSilence() throws {
        var a = WiegandAssembler(format: nil, silenceNanos: 25_000_000)
        let (bits, n) = try #require(WiegandDecoder.encode(cardNumber: 99, format: .bits34))
        #expect(feed(&a, bits, n, from: 0).isEmpty)
        let last = UInt64(n - 1) * 2_000_000
        #expect(a.deadline == last + 25_000_000)
        #expect(a.silence(now: last + 24_999_999) == nil)
        guard case .card(let frame)? = a.silence(now: last + 25_000_000) else { Issue.record("no card"); return }
        #expect(frame.format == .bits34 && frame.cardNumber == 99)
    }

    @Test func aTruncatedFrameIsGarbledAndTheNextOneStillDecodes() throws {
        var a = WiegandAssembler(format: .bits26, silenceNanos: 25_000_000)
        let (bits, n) = try #require(WiegandDecoder.encode(cardNumber: 7, format: .bits26))
        // Only the first 20 bits arrive, then a full frame 100 ms later.
        #expect(feed(&a, bits >> 6, 20, from: 0).isEmpty)
        let out = feed(&a, bits, n, from: 100_000_000)
        #expect(out.count == 2)
        #expect(out.first == .garbled(.length(bits: 20)))
        if case .card(let frame) = out.last { #expect(frame.cardNumber == 7) } else { Issue.record("no card") }
    }

    @Test func anOverrunSpoilsTheFrameInProgress() throws {
        var a = WiegandAssembler(format: .bits26)
        let (bits, n) = try #require(WiegandDecoder.encode(cardNumber: 7, format: .bits26))
        _ = feed(&a, bits >> 16, 10, from: 0)
        a.overrun(at: 30_000_000)
        // The rest of the frame arrives but cannot be trusted; silence then ends it as garbled.
        #expect(feed(&a, bits & 0xFFFF, 16, from: 32_000_000).isEmpty)
        #expect(a.silence(now: 32_000_000 + 15 * 2_000_000 + 25_000_000) == .garbled(.overrun(bits: 26)))
    }
}

@Suite("Wiegand edge order")
struct WiegandOrderTests {
    @Test func bitsAreOrderedByEdgeTimeNotArrival() throws {
        // Two neighbouring bits (a 0 on D0 and a 1 on D1) arrive swapped: parity cannot tell, the times can.
        var a = WiegandAssembler(format: .bits26)
        let (bits, n) = try #require(WiegandDecoder.encode(cardNumber: 0b1010_1010_1010_1010_1010_1010, format: .bits26))
        var arrivals = (0..<n).map { (UInt8((bits >> UInt64(n - 1 - $0)) & 1), UInt64($0) * 1_000_000) }
        let swap = try #require((1..<(n - 2)).first { arrivals[$0].0 != arrivals[$0 + 1].0 })
        arrivals.swapAt(swap, swap + 1)
        var out: [WiegandOutput] = []
        for (bit, time) in arrivals { out += a.bit(bit, at: time) }
        guard case .card(let frame)? = out.last else { Issue.record("no card: \(out)"); return }
        #expect(frame.cardNumber == 0b1010_1010_1010_1010_1010_1010)
    }
}

@Suite("Wiegand frame spacing")
struct WiegandSpacingTests {
    @Test func aFrameStraddlingTwoIsGarbledNotDecoded() throws {
        // Frame A loses its last bit; frame B follows after 20 ms (less than the 25 ms silence).
        // Counting alone would take A's 25 bits and B's first bit as one 26-bit frame.
        var a = WiegandAssembler(format: .bits26, silenceNanos: 25_000_000)
        let (first, n) = try #require(WiegandDecoder.encode(cardNumber: 111, format: .bits26))
        let (second, _) = try #require(WiegandDecoder.encode(cardNumber: 222, format: .bits26))
        var out: [WiegandOutput] = []
        var t: UInt64 = 0
        for i in 0..<(n - 1) { out += a.bit(UInt8((first >> UInt64(n - 1 - i)) & 1), at: t); t += 1_000_000 }
        t += 20_000_000
        for i in 0..<n { out += a.bit(UInt8((second >> UInt64(n - 1 - i)) & 1), at: t); t += 1_000_000 }
        #expect(out.first == .garbled(.gap(bits: 26)))
        #expect(!out.contains { if case .card(let f) = $0 { return f.cardNumber != 222 } else { return false } }, "never a wrong card")
    }
}

@Suite("PIN entry on a keypad")
struct PinEntryTests {
    func press(_ keys: String, into entry: inout PinEntry, at start: UInt64 = 0, gap: UInt64 = 100_000_000) -> [PinEntry.Outcome] {
        var t = start
        return keys.map { c -> PinEntry.Outcome in
            t += gap
            let key: KeypadKey = c == "#" ? .hash : c == "*" ? .star : .digit(UInt8(String(c))!)
            return entry.press(key, at: t)
        }
    }

    @Test func digitsThenHashSubmit() {
        var entry = PinEntry()
        #expect(press("1234#", into: &entry).last == .submitted("1234"))
        #expect(entry.typed == 0, "cleared after a submit")
    }

    @Test func starClearsAndAnEmptyHashSubmitsNothing() {
        var entry = PinEntry()
        #expect(press("12*99#", into: &entry).last == .submitted("99"))
        #expect(press("#", into: &entry) == [.cleared])
    }

    @Test func aLongPauseStartsOver() {
        var entry = PinEntry(timeoutSeconds: 5)
        _ = press("12", into: &entry)
        #expect(press("34#", into: &entry, at: 20_000_000_000).last == .submitted("34"), "the 12 typed 20 s ago is forgotten")
    }

    @Test func tooManyDigitsAreDropped() {
        var entry = PinEntry()
        let outcomes = press(String(repeating: "7", count: PinEntry.maxDigits + 1), into: &entry)
        #expect(outcomes.last == .cleared && entry.typed == 0)
    }
}
