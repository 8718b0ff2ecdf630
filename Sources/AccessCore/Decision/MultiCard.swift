/// Multi-card opening (`multi_card` and `multi_card_seconds` on a portal): a vault or a guard
/// room opens only when `cards` different people have been granted there within `seconds`.
public struct MultiCardRule: Hashable, Sendable, Codable {
    /// Different people needed, at least 2.
    public var cards: Int
    /// How long, from the first of them, the others may take.
    public var seconds: Int

    public init(cards: Int, seconds: Int = 30) {
        self.cards = cards
        self.seconds = seconds
    }
}

/// One portal's grants collected toward a multi-card opening. A value the site owns, stepped
/// with the monotonic time; no clock of its own.
///
/// Only grants are collected: a denied card adds nothing and clears nothing. The same person
/// again counts once. Once `seconds` have passed since the first card, the collection starts
/// over with the next one.
public struct MultiCardCollection: Sendable {
    public enum Outcome: Sendable, Equatable {
        /// Counted: `presented` different people so far; nothing opens.
        case awaiting(presented: Int)
        /// This grant completes the set: it opens; `earlier` are the others' decisions, in order.
        case complete(earlier: [Decision])
    }

    public let rule: MultiCardRule
    /// The grants collected so far, one per person.
    public private(set) var collected: [Decision] = []
    private var startedAt: MonotonicNanos = 0

    public init(rule: MultiCardRule) { self.rule = rule }

    /// Takes a granted decision at `now`.
    public mutating func admit(_ decision: Decision, at now: MonotonicNanos) -> Outcome {
        if !collected.isEmpty, now &- startedAt >= UInt64(rule.seconds) * 1_000_000_000 {
            collected.removeAll()  // too slow: the set starts over with this card
        }
        if collected.isEmpty { startedAt = now }
        if !collected.contains(where: { Self.key($0) == Self.key(decision) }) { collected.append(decision) }
        guard collected.count >= rule.cards else { return .awaiting(presented: collected.count) }
        let earlier = collected.filter { Self.key($0) != Self.key(decision) }
        collected.removeAll()
        return .complete(earlier: earlier)
    }

    /// Who a grant is: the anti-passback subject (person, household car or pass).
    static func key(_ d: Decision) -> String { d.subject ?? d.personID ?? d.visitorPassID ?? d.houseID ?? "" }
}
