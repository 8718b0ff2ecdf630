import AccessRuntime

/// When to try the broker again: the wait doubles from `initial` to `max` with each failure, and
/// goes back to `initial` after a connection that stayed up `stable`. A value on the monotonic
/// clock (nanoseconds), so tests move time by hand.
struct MQTTReconnectBackoff: Equatable, Sendable {
    let initial: UInt64
    let max: UInt64
    let stable: UInt64
    /// The wait the next failure schedules.
    private(set) var delay: UInt64
    /// Failed attempts and lost connections since a CONNACK last accepted one.
    private(set) var failures = 0

    init(initial: Duration, max: Duration, stable: Duration) {
        self.initial = initial.nanoseconds
        self.max = max.nanoseconds
        self.stable = stable.nanoseconds
        delay = self.initial
    }

    /// A CONNACK accepted the connection.
    mutating func connected() {
        failures = 0
    }

    /// A connection that was up since `since` ended at `now`: one that stayed up long enough
    /// starts the waits again from `initial`.
    mutating func ended(upSince since: UInt64, now: UInt64) {
        if now >= since && now - since >= stable { delay = initial }
    }

    /// An attempt failed, or a connection was lost, at `now`: returns when to try next and
    /// doubles the wait after it.
    mutating func failed(now: UInt64) -> UInt64 {
        failures += 1
        let next = now + delay
        delay = Swift.min(delay * 2, max)
        return next
    }
}
