/// Why a credential was granted or denied. The raw values are the interface (interfaces.md).
public enum Reason: String, CaseIterable, Sendable, Codable {
    case granted
    case unknownCredential = "unknown_credential"
    case revoked
    case suspended
    case blacklisted
    case notYetValid = "not_yet_valid"
    case expired
    case noRight = "no_right"
    case outsideSchedule = "outside_schedule"
    case antiPassback = "anti_passback"
    case usesExhausted = "uses_exhausted"
    case portalLocked = "portal_locked"
    case clockUnset = "clock_unset"
    /// Card and PIN: the card was accepted and its holder's PIN is awaited (nothing opens yet).
    case pinRequired = "pin_required"
    /// Card and PIN: the PIN typed after the card is not the card holder's.
    case wrongPin = "wrong_pin"
    /// Card and PIN: no PIN came within the timeout after the card.
    case pinTimeout = "pin_timeout"
    /// Too many failed attempts at this reader: it refuses everything for a while.
    case readerLocked = "reader_locked"
    /// A man-trap: another door of the portal's interlock group is released or open.
    case interlock
    /// Multi-card: this person's card counts, and the portal waits for more different people
    /// within its time (nothing opens yet).
    case awaitingMoreCards = "awaiting_more_cards"
    /// A plate at an entry lane whose house (or the visitors) has every parking space taken.
    case parkingFull = "parking_full"
}

/// What a reader, keypad or camera presented.
public enum PresentedCredential: Hashable, Sendable {
    case card(UInt64)
    case pin(String)
    case plate(String)
    case qr(String)

    public var kind: CredentialKind {
        switch self {
        case .card: return .card
        case .pin: return .pin
        case .plate: return .plate
        case .qr: return .qr
        }
    }
}

/// One request to pass.
public struct DecisionRequest: Hashable, Sendable {
    public var portal: String
    public var credential: PresentedCredential
    /// The wall-clock instant of the request.
    public var at: UnixSeconds
    /// False until the controller's wall clock is known to be set; every decision is then
    /// `clock_unset`, because validity and schedules cannot be judged.
    public var clockTrusted: Bool
    /// The portal's operator-set mode.
    public var portalMode: PortalMode
    /// Card and PIN's second step: the card holder's own PIN was typed after this card.
    public var pinVerified: Bool

    public init(portal: String, credential: PresentedCredential, at: UnixSeconds, clockTrusted: Bool = true, portalMode: PortalMode = .normal,
                pinVerified: Bool = false) {
        self.pinVerified = pinVerified
        self.portal = portal
        self.credential = credential
        self.at = at
        self.clockTrusted = clockTrusted
        self.portalMode = portalMode
    }
}

/// The outcome of a request, with everything an event needs to record it.
public struct Decision: Hashable, Sendable {
    public var granted: Bool
    public var reason: Reason
    public var portal: String
    public var credentialKind: CredentialKind
    public var personID: String?
    public var houseID: String?
    public var role: Role?
    /// The visitor pass that decided, if any.
    public var visitorPassID: String?
    /// Raise an alarm (blacklisted credential or person).
    public var alarm: Bool
    /// A duress PIN was typed: raise the silent `duress` alarm, whatever the decision.
    public var duress = false
    /// Granted under soft anti-passback although the subject's last passage does not match.
    public var antiPassbackViolation: Bool
    /// A granted entry on a visitor pass uses up one of its uses.
    public var consumesVisitorUse: Bool
    /// The key anti-passback tracks this subject by (person, household car or pass), if known.
    public var subject: String?

    public init(
        granted: Bool, reason: Reason, portal: String, credentialKind: CredentialKind,
        personID: String? = nil, houseID: String? = nil, role: Role? = nil, visitorPassID: String? = nil,
        alarm: Bool = false, antiPassbackViolation: Bool = false, consumesVisitorUse: Bool = false, subject: String? = nil
    ) {
        self.granted = granted
        self.reason = reason
        self.portal = portal
        self.credentialKind = credentialKind
        self.personID = personID
        self.houseID = houseID
        self.role = role
        self.visitorPassID = visitorPassID
        self.alarm = alarm
        self.antiPassbackViolation = antiPassbackViolation
        self.consumesVisitorUse = consumesVisitorUse
        self.subject = subject
    }
}

/// Raised for a request that cannot be decided at all (not a denial: a caller's mistake).
public enum DecisionError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownPortal(String)

    public var description: String {
        switch self {
        case .unknownPortal(let id): return "no portal \"\(id)\" in the site description"
        }
    }
}
