import AccessCore
import AccessTestSupport
import Testing

/// Random and mutated input for the pure parsers: Wiegand bit strings and timings, CSV bytes.
/// `ACCESS_FUZZ_SCALE` and `ACCESS_FUZZ_SEED` (AccessTestSupport/Fuzzing.swift) scale and replay.
@Suite("Fuzzing: Wiegand and CSV")
struct FuzzTests {
    /// Any bits of any length, in every format: either a frame whose parity really holds (it
    /// encodes back to the same bits), a key, or a garble, never a misread.
    @Test func wiegandDecodingNeverMisreadsRandomBits() {
        var fuzz = FuzzRun("wiegand-decode")
        var outcomes: [String: Int] = [:]
        for _ in 0..<fuzz.cases(200_000) {
            let count = fuzz.int(0...70)
            var bits = fuzz.generator.next()
            if count < 64 { bits &= (UInt64(1) << UInt64(count)) - 1 }
            let format: WiegandFormat? = fuzz.chance(0.25) ? nil : fuzz.pick(WiegandFormat.allCases)
            switch WiegandDecoder.decode(bits: bits, count: count, format: format) {
            case .card(let frame):
                outcomes["card", default: 0] += 1
                #expect(frame.bitCount == count && frame.bits == bits, "\(fuzz)")
                if frame.format == .raw {
                    #expect(frame.cardNumber == bits && count >= 1 && count <= 64, "\(fuzz)")
                } else {
                    let again = WiegandDecoder.encode(cardNumber: frame.cardNumber, format: frame.format)
                    #expect(again?.bits == bits && again?.count == count, "parity accepted only when it holds: \(bits) \(count), \(fuzz)")
                }
            case .key(let key):
                outcomes["key", default: 0] += 1
                #expect(count == 4 || count == 8, "\(fuzz)")
                #expect(WiegandDecoder.encode(key: key).count <= 8)
            case .garbled:
                outcomes["garbled", default: 0] += 1
            }
        }
        #expect(outcomes["card", default: 0] > 0 && outcomes["garbled", default: 0] > 0 && outcomes["key", default: 0] > 0,
                "the generator reaches every outcome: \(outcomes)")
    }

    /// One flipped bit in a valid 26-, 34- or 37-bit frame is always caught by parity.
    @Test func everySingleBitErrorInACardFrameIsCaught() {
        var fuzz = FuzzRun("wiegand-flip")
        for _ in 0..<fuzz.cases(20_000) {
            let format = fuzz.pick([WiegandFormat.bits26, .bits34, .bits37])
            let dataBits = (format.bitCount ?? 26) - 2
            let card = fuzz.generator.next() & ((UInt64(1) << UInt64(dataBits)) - 1)
            guard let frame = WiegandDecoder.encode(cardNumber: card, format: format) else {
                Issue.record("\(card) fits \(format) but was not encoded, \(fuzz)")
                continue
            }
            let flipped = frame.bits ^ (UInt64(1) << UInt64(fuzz.int(0...(frame.count - 1))))
            #expect(WiegandDecoder.decode(bits: flipped, count: frame.count, format: format) == .garbled(.parity(bits: frame.count)),
                    "\(format) card \(card), \(fuzz)")
        }
    }

    /// Random edge streams (bits at random gaps, overruns, silences) into the assembler: every
    /// output is a consistent decode, nothing piles up, and a clean frame after the noise is read.
    @Test func theAssemblerSurvivesAnyEdgeStreamAndRecovers() {
        var fuzz = FuzzRun("wiegand-assembler")
        for _ in 0..<fuzz.cases(2_000) {
            let format: WiegandFormat? = fuzz.chance(0.3) ? nil : fuzz.pick([.bits26, .bits34, .bits37])
            var assembler = WiegandAssembler(format: format)
            var now: UInt64 = 1_000_000_000
            var outputs = 0
            var events = 0
            for _ in 0..<fuzz.int(0...200) {
                events += 1
                now += UInt64(fuzz.pick([0, 1, 500, 2_000, 1_000_000, 2_000_000, 13_000_000, 30_000_000, 100_000_000]))
                if fuzz.chance(0.01) {
                    assembler.overrun(at: now)
                } else {
                    outputs += assembler.bit(UInt8(fuzz.int(0...1)), at: now).count
                }
                if fuzz.chance(0.05), let output = assembler.silence(now: now) {
                    outputs += 1
                    if case .card(let frame) = output { #expect(frame.bitCount <= 64, "\(fuzz)") }
                }
            }
            // After the noise: silence, then one clean frame at reader timing is read exactly.
            now += 100_000_000
            _ = assembler.silence(now: now)
            #expect(assembler.deadline == nil, "nothing pending after silence, \(fuzz)")
            let card: UInt64 = 12_345
            guard let frame = WiegandDecoder.encode(cardNumber: card, format: format ?? .bits26) else { continue }
            var read: [WiegandOutput] = []
            for i in (0..<frame.count).reversed() {
                now += 2_000_000
                read += assembler.bit(UInt8((frame.bits >> UInt64(i)) & 1), at: now)
            }
            if let last = assembler.silence(now: now + 100_000_000) { read.append(last) }
            #expect(read.count == 1, "\(read), \(fuzz)")
            if case .card(let decoded)? = read.first { #expect(decoded.cardNumber == card, "\(fuzz)") } else {
                Issue.record("the clean frame after the noise was not read: \(read), \(fuzz)")
            }
            #expect(outputs <= events, "at most one output per bit or overrun: \(outputs) for \(events), \(fuzz)")
        }
    }

    /// Mutated CSV: every record or a typed error naming a line within the input; the reader
    /// always ends.
    @Test func csvReaderEndsOnAnyBytesWithRecordsOrALineNumberedError() throws {
        var fuzz = FuzzRun("csv-reader")
        let seed = Array("""
            house_id,building,unit,floor,room,person_id,name,role,phone,valid_from,valid_until,cards,plates,groups,status
            B01-U1-0301,B01,1,3,0301,P1,"张,伟",owner,13800000000,,,1001;1002,京A11111,,active
            B01-U1-0301,,,,,P2,"李""娜",family,,,,1003,,,

            """.utf8)
        var errors = 0
        for _ in 0..<fuzz.cases(5_000) {
            let bytes = fuzz.mutate(seed, maxEdits: 6)
            let lines = bytes.reduce(1) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
            var reader = CSVReader(bytes: bytes)
            var records = 0
            do {
                while let record = try reader.next() {
                    records += 1
                    #expect(record.line >= 1 && record.line <= lines, "record line \(record.line) of \(lines), \(fuzz)")
                    guard records <= bytes.count + 1 else {
                        Issue.record("more records than bytes: the reader does not end, \(fuzz)")
                        break
                    }
                }
            } catch {
                errors += 1
                #expect(error.line >= 1 && error.line <= lines, "\(error) at line \(error.line) of \(lines), \(fuzz)")
                #expect(!error.description.isEmpty)
            }
        }
        #expect(errors > 0, "the mutations reach the error paths")
    }
}
