import Synchronization

/// A monotonic and a wall clock that move only when a test moves them.
public final class ManualClock: Sendable {
    private let state: Mutex<(mono: UInt64, wall: Int64)>

    /// Starts at `wall` (µs since 1970; 2026-09-21 by default) and an arbitrary monotonic time.
    public init(wall: Int64 = 1_790_000_000_000_000, mono: UInt64 = 1_000_000_000) {
        state = Mutex((mono, wall))
    }

    /// Nanoseconds on the monotonic clock.
    public var mono: UInt64 { state.withLock { $0.mono } }
    /// Microseconds since 1970 on the wall clock.
    public var wall: Int64 { state.withLock { $0.wall } }

    /// Both clocks run on by `seconds`.
    public func advance(seconds: Double) {
        state.withLock {
            $0.mono += UInt64(seconds * 1e9)
            $0.wall += Int64(seconds * 1e6)
        }
    }

    /// The wall clock alone is set (an NTP step, an operator, a dead RTC battery).
    public func setWall(_ micros: Int64) { state.withLock { $0.wall = micros } }
}
