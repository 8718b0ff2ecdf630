/// A token bucket on the monotonic clock (nanoseconds): `rate` tokens a second, at most `burst`.
struct MQTTTokenBucket: Equatable, Sendable {
    let rate: Double
    let burst: Double
    private(set) var tokens: Double
    private var last: UInt64

    init(rate: Int, now: UInt64) {
        self.rate = Double(max(1, rate))
        burst = max(1, self.rate / 10)
        tokens = burst
        last = now
    }

    mutating func refill(now: UInt64) {
        guard now > last else { return }
        tokens = min(burst, tokens + Double(now - last) / 1e9 * rate)
        last = now
    }

    mutating func take() -> Bool {
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    /// Nanoseconds until a token is available.
    var nanosUntilToken: UInt64 { tokens >= 1 ? 0 : UInt64((1 - tokens) / rate * 1e9) + 1 }
}
