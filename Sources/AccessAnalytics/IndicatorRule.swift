import AccessCore

/// One indicator kind's condition over the analytics' state. `evaluate(now:)` asks every rule in
/// turn which of its indicators hold at `now`; events resolve or raise some at once through the
/// rules' own methods, called from `HouseAnalytics.record`.
protocol IndicatorRule: Sendable {
    /// The kind of indicator the rule raises.
    static var kind: IndicatorKind { get }

    /// Adds to `holds` the key of every indicator of this kind that holds at `now` (µs), and to
    /// `raise` those not yet in force. May note state it needs later (when a person was first
    /// watched).
    static func evaluate(_ analytics: inout HouseAnalytics, now: Int64, holds: inout Set<String>, raise: inout [Indicator])
}
