/// What a portal is physically.
public enum PortalKind: String, CaseIterable, Sendable, Codable {
    case door, barrier, fence
}

/// The direction of passage a portal's readers serve.
public enum PortalDirection: String, CaseIterable, Sendable, Codable {
    case `in`, out, both
}

/// An operator-set mode. In `alwaysClosed` every credential is refused with `portal_locked`.
public enum PortalMode: String, CaseIterable, Sendable, Codable {
    case normal
    case alwaysOpen = "always-open"
    case alwaysClosed = "always-closed"
}

/// A door, barrier lane or fence zone, as the site description declares it.
public struct Portal: Hashable, Sendable, Codable {
    public var id: String
    public var kind: PortalKind
    public var direction: PortalDirection
    /// The area a passage leaves, for anti-passback.
    public var fromArea: String
    /// The area a passage enters.
    public var toArea: String
    /// A building's own door: its residents get it by default. Empty: a shared portal every
    /// resident may use.
    public var building: String
    /// Reader or lane names bound to this portal (from the hardware bindings).
    public var readers: [String]

    public init(
        id: String, kind: PortalKind = .door, direction: PortalDirection = .in,
        fromArea: String = "outside", toArea: String = "community", building: String = "", readers: [String] = []
    ) {
        self.id = id
        self.kind = kind
        self.direction = direction
        self.fromArea = fromArea
        self.toArea = toArea
        self.building = building
        self.readers = readers
    }

    /// Entries consume a visitor pass's uses; exits do not.
    public var isEntry: Bool { direction != .out }
}
