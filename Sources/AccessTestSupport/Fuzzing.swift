import Glibc

/// Seeded, bounded fuzzing for the tests.
///
/// Every fuzz test runs a fixed number of cases in CI. `ACCESS_FUZZ_SCALE=N` multiplies them for a
/// long run; `ACCESS_FUZZ_SEED=S` replays one run (the seed is part of every failure message,
/// as `FuzzRun.description`).
public struct FuzzRun: CustomStringConvertible {
    public let name: String
    public let seed: UInt64
    public let scale: Int
    public var generator: SeededGenerator

    /// The seed is `ACCESS_FUZZ_SEED` when set, else derived from `name`, so CI runs are repeatable.
    public init(_ name: String) {
        self.name = name
        let environment = { (key: String) in getenv(key).map { String(cString: $0) } }
        seed = environment("ACCESS_FUZZ_SEED").flatMap { UInt64($0) }
            ?? name.utf8.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 }  // FNV-1a
        scale = max(1, environment("ACCESS_FUZZ_SCALE").flatMap { Int($0) } ?? 1)
        generator = SeededGenerator(seed: seed)
    }

    /// How many cases to run: `base` in CI, times `ACCESS_FUZZ_SCALE`.
    public func cases(_ base: Int) -> Int { base * scale }

    public var description: String { "fuzz \(name), ACCESS_FUZZ_SEED=\(seed)" }

    public mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &generator) }
    public mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &generator) < p }
    public mutating func pick<T>(_ choices: [T]) -> T { choices[int(0...(choices.count - 1))] }

    /// Bytes that tend to break parsers of text formats: separators, quotes, line ends, NUL,
    /// a byte-order mark, invalid UTF-8, multi-byte characters, huge numbers, very long runs.
    public static let tokens: [[UInt8]] = [
        ",", "\"", "\"\"", "\n", "\r\n", "\r", "=", "[", "]", "[[", "#", "'", "\\", ";", ":", " ", "\t",
        "-1", "0", "99999999999999999999", "1e309", "nan", "true", "{}", "null", "../", "%00", "\u{FEFF}",
        "京A12345", "幸福里", "😀", "\u{202E}", "2026-02-30", "24:00",
    ].map { Array($0.utf8) } + [[0], [0xFF], [0xC3], [0xE4, 0xBA], [0x80, 0x80], Array(repeating: UInt8(ascii: "A"), count: 5000)]

    /// One to `maxEdits` random edits of `input`: bit flips, deletions, insertions of random bytes
    /// or of `tokens`, duplicated and swapped spans.
    public mutating func mutate(_ input: [UInt8], maxEdits: Int = 4) -> [UInt8] {
        var bytes = input
        for _ in 0..<int(1...maxEdits) {
            let at = bytes.isEmpty ? 0 : int(0...(bytes.count - 1))
            switch int(0...6) {
            case 0 where !bytes.isEmpty:
                bytes[at] ^= UInt8(1) << UInt8(int(0...7))
            case 1 where !bytes.isEmpty:
                bytes.removeSubrange(at..<min(bytes.count, at + int(1...16)))
            case 2:
                bytes.insert(contentsOf: (0..<int(1...8)).map { _ in UInt8.random(in: 0...255, using: &generator) }, at: at)
            case 3, 4:
                bytes.insert(contentsOf: pick(Self.tokens), at: at)
            case 5 where !bytes.isEmpty:
                let span = bytes[at..<min(bytes.count, at + int(1...64))]
                bytes.insert(contentsOf: Array(span), at: int(0...bytes.count))
            default:
                // Swap two lines: a row or a table in another place.
                var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
                guard lines.count > 2 else { continue }
                lines.swapAt(int(0...(lines.count - 1)), int(0...(lines.count - 1)))
                bytes = Array(lines.joined(separator: [UInt8(ascii: "\n")]))
            }
        }
        return bytes
    }
}
