import AccessCore
import Glibc
import Synchronization

/// Where a command's output goes: the terminal, or a buffer in tests.
public struct Console: Sendable {
    let out: @Sendable (String) -> Void
    let err: @Sendable (String) -> Void
    /// Whether stderr is a terminal (progress bars are drawn only then).
    let interactive: Bool
    /// The community sequence a fleet roster command's change set got; added to its JSON reply.
    let published = PublishedSequence()

    public init(out: @escaping @Sendable (String) -> Void, err: @escaping @Sendable (String) -> Void, interactive: Bool = false) {
        self.out = out
        self.err = err
        self.interactive = interactive
    }

    /// The process's stdout and stderr, written with `write(2)` (unbuffered: callers batch).
    public static let standard = Console(
        out: { writeAll(1, $0) },
        err: { writeAll(2, $0) },
        interactive: isatty(2) == 1
    )

    @TaskLocal public static var current: Console = .standard

    static func writeAll(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return  // a closed pipe: nothing useful left to do with the output
            }
            offset += n
        }
    }
}

/// Output helpers every command uses.
enum Say {
    static func line(_ text: String = "") { Console.current.out(text + "\n") }
    static func json(_ value: JSON) {
        var value = value
        if let sequence = Console.current.published.value, case .object(var pairs) = value {
            pairs.append(("sequence", .int(Int64(sequence))))
            value = .object(pairs)
        }
        Console.current.out(value.rendered() + "\n")
    }
    static func warn(_ text: String) { Console.current.err(text + "\n") }
}

/// Columns aligned by display width (a Chinese character takes two cells).
struct TextTable {
    var headers: [String]
    var rows: [[String]] = []

    init(_ headers: String...) { self.headers = headers }

    mutating func add(_ row: String...) { rows.append(row) }

    func render() -> String {
        var widths = headers.map(Self.width)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], Self.width(cell)) } }
        func line(_ cells: [String]) -> String {
            var out = ""
            for (i, cell) in cells.enumerated() {
                out += cell
                if i < cells.count - 1 { out += String(repeating: " ", count: widths[i] - Self.width(cell) + 2) }
            }
            return out
        }
        return ([line(headers)] + rows.map(line)).joined(separator: "\n")
    }

    static func width(_ s: String) -> Int {
        s.unicodeScalars.reduce(0) { total, u in
            let v = u.value
            let wide = (0x1100...0x115F).contains(v) || (0x2E80...0xA4CF).contains(v) || (0xAC00...0xD7A3).contains(v)
                || (0xF900...0xFAFF).contains(v) || (0xFE30...0xFE4F).contains(v) || (0xFF00...0xFF60).contains(v)
                || (0xFFE0...0xFFE6).contains(v) || (0x20000...0x3FFFD).contains(v)
            return total + (wide ? 2 : (u.properties.generalCategory == .nonspacingMark ? 0 : 1))
        }
    }
}

/// A progress bar on stderr, drawn only on a terminal and only once the work has taken more
/// than a second.
struct ProgressBar {
    let total: Int
    let label: String
    let started = monotonicSeconds()
    var drawn = false

    mutating func update(_ done: Int) {
        guard Console.current.interactive, total > 0 else { return }
        let elapsed = monotonicSeconds() - started
        guard elapsed > 1 else { return }
        let fraction = min(1, Double(done) / Double(total))
        let cells = 30
        let filled = Int(fraction * Double(cells))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: cells - filled)
        Console.current.err("\r\(label) \(bar) \(Int(fraction * 100))%  \(Int(elapsed))s")
        drawn = true
    }

    func finish() { if drawn { Console.current.err("\n") } }
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Set once a roster command's change set is stored by the fleet.
final class PublishedSequence: Sendable {
    private let box = Mutex<UInt64?>(nil)
    var value: UInt64? {
        get { box.withLock { $0 } }
        set { box.withLock { $0 = newValue } }
    }
}
