/// How strictly an area enforces that a subject leaves before entering again.
public enum AntiPassbackMode: String, CaseIterable, Sendable, Codable, Comparable {
    /// Not enforced.
    case off
    /// Violations are granted but flagged in the event.
    case soft
    /// Violations are refused with `anti_passback`.
    case hard

    public static func < (a: Self, b: Self) -> Bool { a.order < b.order }
    var order: Int { self == .off ? 0 : self == .soft ? 1 : 2 }
}

/// Anti-passback settings: a default and per-area overrides, each with a forgiveness time after
/// which a subject's recorded location no longer binds (0: never forgiven).
public struct AntiPassbackPolicy: Hashable, Sendable {
    public struct Rule: Hashable, Sendable {
        public var mode: AntiPassbackMode
        public var forgiveAfterSeconds: Int64

        public init(mode: AntiPassbackMode, forgiveAfterSeconds: Int64 = 0) {
            self.mode = mode
            self.forgiveAfterSeconds = forgiveAfterSeconds
        }
    }

    public var defaultRule: Rule
    public var areas: [String: Rule]

    public init(defaultRule: Rule = Rule(mode: .off), areas: [String: Rule] = [:]) {
        self.defaultRule = defaultRule
        self.areas = areas
    }

    /// The stricter of the rules of the two areas a portal joins; `both`-way portals are exempt
    /// because their direction of passage is unknown.
    public func rule(for portal: Portal) -> Rule {
        guard portal.direction != .both else { return Rule(mode: .off) }
        let from = areas[portal.fromArea] ?? defaultRule
        let to = areas[portal.toArea] ?? defaultRule
        return from.mode >= to.mode ? from : to
    }
}

/// Where each subject was last seen going: the state anti-passback judges against. A value:
/// the controller persists it so that it survives restarts.
public struct AntiPassbackLedger: Hashable, Sendable {
    public struct Location: Hashable, Sendable {
        public var area: String
        public var since: UnixSeconds

        public init(area: String, since: UnixSeconds) {
            self.area = area
            self.since = since
        }
    }

    public private(set) var locations: [String: Location]

    public init(locations: [String: Location] = [:]) { self.locations = locations }

    /// True when passing `portal` at `at` contradicts the subject's last recorded passage.
    public func isViolation(subject: String, portal: Portal, at: UnixSeconds, rule: AntiPassbackPolicy.Rule) -> Bool {
        guard rule.mode != .off, let last = locations[subject] else { return false }
        if rule.forgiveAfterSeconds > 0, at - last.since >= rule.forgiveAfterSeconds { return false }
        return last.area != portal.fromArea
    }

    /// Records a passage through `portal`: the subject is now in its `toArea`.
    public mutating func recordPassage(subject: String, portal: Portal, at: UnixSeconds) {
        guard portal.direction != .both else { return }
        locations[subject] = Location(area: portal.toArea, since: at)
    }

    /// Forgets a subject (operator reset).
    public mutating func forget(subject: String) { locations[subject] = nil }
}
