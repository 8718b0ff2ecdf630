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

/// How a portal's card readers and keypads verify a person (`verify` in the site description).
/// QR codes and plates decide alone whatever the mode.
public enum VerifyMode: String, CaseIterable, Sendable, Codable {
    /// Cards only: a PIN opens nothing here.
    case card
    /// PINs only: a card opens nothing here.
    case pin
    /// A card or a PIN, each alone.
    case cardOrPin = "card_or_pin"
    /// A card, then the same person's own PIN on the reader's keypad within a timeout.
    case cardAndPin = "card_and_pin"

    /// Whether a credential of `kind` may open the portal by itself in this mode.
    public func decidesAlone(_ kind: CredentialKind) -> Bool {
        switch (self, kind) {
        case (.card, .pin), (.pin, .card), (.cardAndPin, .pin): return false
        default: return true
        }
    }
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
    /// How cards and PINs verify a person here; nil: any credential decides alone.
    public var verify: VerifyMode?
    /// The schedule (by name) during which `verify` applies; nil: always. A schedule missing
    /// from the roster leaves the mode in force (the stricter reading).
    public var verifySchedule: String?
    /// Multi-card opening: so many different people granted within so long open it; nil: each
    /// grant opens alone.
    public var multiCard: MultiCardRule?

    public init(
        id: String, kind: PortalKind = .door, direction: PortalDirection = .in,
        fromArea: String = "outside", toArea: String = "community", building: String = "", readers: [String] = [],
        verify: VerifyMode? = nil, verifySchedule: String? = nil, multiCard: MultiCardRule? = nil
    ) {
        self.multiCard = multiCard
        self.verify = verify
        self.verifySchedule = verifySchedule
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
