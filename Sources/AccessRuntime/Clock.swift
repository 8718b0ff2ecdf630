import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Nanoseconds on CLOCK_MONOTONIC: the clock of kernel GPIO edge timestamps, door timers,
/// condition-variable deadlines and latency figures (never set, never jumps).
public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Microseconds since 1970 on CLOCK_REALTIME: the wall clock, which may be unset or jump.
public func wallClockMicros() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
}

extension Duration {
    /// Whole nanoseconds, for arithmetic on `monotonicNanos()`; a negative duration is zero.
    public var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        return UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
    }
}

/// Blocks the calling thread for `duration` (nanosleep, resumed after a signal). For a thread of
/// its own that must hold a line quiet (a Modbus bus's inter-frame gap), never for the pool.
public func sleepBlocking(for duration: Duration) {
    guard duration > .zero else { return }
    let parts = duration.components
    var request = timespec(tv_sec: Int(parts.seconds), tv_nsec: Int(parts.attoseconds / 1_000_000_000))
    var left = timespec()
    while nanosleep(&request, &left) == -1 && errno == EINTR { request = left }
}

/// The two clocks a component reads, injected so that tests can move time by hand.
public protocol RuntimeClock: Sendable {
    /// Monotonic nanoseconds: timers and deadlines.
    func monotonicNanos() -> UInt64
    /// Wall-clock microseconds since 1970: what events are stamped with.
    func wallMicros() -> Int64
}

/// The machine's clocks.
public struct SystemClock: RuntimeClock {
    public init() {}
    public func monotonicNanos() -> UInt64 { AccessRuntime.monotonicNanos() }
    public func wallMicros() -> Int64 { wallClockMicros() }
}

/// Clocks that move only when told to. The wall clock can be set or stepped on its own, as
/// an operator or NTP would, while the monotonic clock only moves forward.
public final class ManualClock: RuntimeClock {
    private struct Now {
        var mono: UInt64
        var wall: Int64
    }
    private let now: Mutex<Now>

    /// Starts at `monotonicNanos` and `wallMicros`.
    public init(monotonicNanos: UInt64 = 1_000_000_000, wallMicros: Int64 = 1_767_225_600_000_000) {
        now = Mutex(Now(mono: monotonicNanos, wall: wallMicros))
    }

    public func monotonicNanos() -> UInt64 { now.withLock { $0.mono } }
    public func wallMicros() -> Int64 { now.withLock { $0.wall } }

    /// Moves both clocks forward by `nanoseconds`.
    public func advance(nanoseconds: UInt64) {
        now.withLock {
            $0.mono += nanoseconds
            $0.wall += Int64(nanoseconds / 1000)
        }
    }

    /// Moves both clocks forward by `duration` (which must not be negative).
    public func advance(by duration: Duration) {
        let parts = duration.components
        precondition(parts.seconds >= 0 && parts.attoseconds >= 0, "a monotonic clock does not go back")
        advance(nanoseconds: duration.nanoseconds)
    }

    /// Sets the wall clock alone (a clock step); the monotonic clock does not move.
    public func setWall(micros: Int64) {
        now.withLock { $0.wall = micros }
    }
}
