/// The vehicles inside, by house and for the visitors: what parking spaces are judged against.
/// A value like the anti-passback ledger: granted plates at barrier lanes move it (an entry one
/// up, an exit one down, never below zero), and the controller keeps it in the database so that
/// it survives restarts.
public struct ParkingLedger: Hashable, Sendable {
    /// The key visitor plates count under (against `[parking] visitor_spaces`).
    public static let visitors = "visitors"

    /// Vehicles inside by key: `house:HOUSE_ID` or `visitors`.
    public private(set) var counts: [String: Int]

    public init(counts: [String: Int] = [:]) { self.counts = counts.filter { $0.value > 0 } }

    public func inside(_ key: String) -> Int { counts[key] ?? 0 }

    /// The key a vehicle counts under: the visitors for a visitor pass's plate, else its house.
    public static func key(for decision: Decision) -> String? {
        if decision.visitorPassID != nil { return visitors }
        return decision.houseID.map { "house:" + $0 }
    }

    /// The house of a `house:` key.
    public static func house(of key: String) -> String? {
        key.hasPrefix("house:") ? String(key.dropFirst(6)) : nil
    }

    /// Whether a credential at a portal moves the count: plates at a barrier lane with a direction.
    public static func counts(_ portal: Portal, _ kind: CredentialKind) -> Bool {
        portal.kind == .barrier && kind == .plate && portal.direction != .both
    }

    /// A granted `decision` for a `kind` credential passed `portal`: the key and its new count,
    /// nil when the passage counts nowhere.
    public mutating func recordPassage(_ decision: Decision, kind: CredentialKind, portal: Portal) -> (key: String, inside: Int)? {
        guard decision.granted, Self.counts(portal, kind), let key = Self.key(for: decision) else { return nil }
        let inside = max(0, self.inside(key) + (portal.direction == .in ? 1 : -1))
        counts[key] = inside == 0 ? nil : inside
        return (key, inside)
    }
}
