// access-gpio-probe: runs the real GPIO driver on a board map and reports what it sees, for the
// hardware-in-the-loop tier (a QEMU guest with a gpio-sim chip). Every completed card frame
// pulses the lock output given with --lock, so the test can time last edge → lock line.
//
//   access-gpio-probe --board Hardware/boards/sim.toml --lock gate-north.lock [--pulse-ms 5]
//   access-gpio-probe --list-lines Hardware/boards/sim.toml
//
// --list-lines prints every line the map names, one a line, in the order a gpio-sim chip for the
// board is given them (outputs, inputs, then each reader's D0 and D1), and touches no GPIO.
//
// Prints, one per line (times are CLOCK_MONOTONIC nanoseconds, as the kernel stamps edges):
//   ready | input NAME 0|1 NS | card READER NUMBER BITCOUNT LASTEDGE_NS LOCK_NS | key READER KEY NS
//   garbled READER REASON | overrun LINE | set NAME 0|1 | error TEXT
// Reads commands on stdin: `set NAME 0|1`, `get NAME`, `quit` (outputs return to safe values).
import AccessConfig
import AccessCore
import AccessDevices
import AccessRuntime
import Glibc

func say(_ text: String) {
    let line = Array((text + "\n").utf8)
    _ = line.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
}

func fail(_ text: String) -> Never {
    say("error \(text)")
    exit(1)
}

let arguments = Array(CommandLine.arguments.dropFirst())
func option(_ name: String) -> String? {
    guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count else { return nil }
    return arguments[i + 1]
}
if let listPath = option("--list-lines") {
    do {
        for name in try BoardMap.load(path: listPath).lineNames { say(name) }
        exit(0)
    } catch {
        // On stderr: the caller redirects the list into the chip's definition.
        let line = Array("access-gpio-probe: \(error)\n".utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        exit(1)
    }
}
guard let boardPath = option("--board") else {
    fail("usage: access-gpio-probe --board MAP.toml [--lock OUTPUT] [--pulse-ms N] | --list-lines MAP.toml")
}
let pulseMillis = Int(option("--pulse-ms") ?? "5") ?? 5

let map: BoardMap
do { map = try BoardMap.load(path: boardPath) } catch { fail(error.description) }

/// Set once the board is up; the event handler reads it from the driver thread.
final class LockBox: @unchecked Sendable {
    var lock: (any OutputLine)?
}
let lockBox = LockBox()

let board: GPIOBoard
do {
    board = try GPIOBoard(map: map, consumer: "accessd") { event in
        switch event {
        case .input(let line, let active, let nanos):
            say("input \(line) \(active ? 1 : 0) \(nanos)")
        case .card(let reader, let frame, let lastEdge):
            var lockNanos: UInt64 = 0
            if let lock = lockBox.lock {
                do {
                    try lock.set(true)
                    lockNanos = monotonicNanos()
                    Task {
                        try? await Task.sleep(for: .milliseconds(pulseMillis))
                        try? lock.set(false)
                    }
                } catch {
                    say("error \(error)")
                }
            }
            say("card \(reader) \(frame.cardNumber) \(frame.bitCount) \(lastEdge) \(lockNanos)")
        case .key(let reader, let key, let nanos):
            say("key \(reader) \(key) \(nanos)")
        case .garbled(let reader, let reason):
            say("garbled \(reader) \(reason)")
        case .overrun(let line):
            say("overrun \(line)")
        case .device(let name, let online):
            say("device \(name) \(online ? "online" : "offline")")
        case .qr(let reader, _), .garbledLine(let reader, _):
            say("serial \(reader)")  // serial readers are not GPIO: the probe never starts them
        }
    }
} catch {
    fail(error.description)
}
if let name = option("--lock") {
    do { lockBox.lock = try board.output(name) } catch { fail(error.description) }
}
do { try board.start() } catch { fail(error.description) }
say("ready")

while let line = readLine() {
    let words = line.split(separator: " ").map(String.init)
    switch words.first {
    case "set" where words.count == 3:
        do {
            try board.output(words[1]).set(words[2] == "1")
            say("set \(words[1]) \(words[2])")
        } catch { say("error \(error)") }
    case "get" where words.count == 2:
        do { say("get \(words[1]) \(try board.read(words[1]) ? 1 : 0)") } catch { say("error \(error)") }
    case "quit":
        board.close()
        say("closed")
        exit(0)
    default:
        say("error unknown command: \(line)")
    }
}
board.close()
