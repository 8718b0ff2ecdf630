/// What a person is to a house (以房管人). Residents get their building's portals by default.
public enum Role: String, CaseIterable, Sendable, Codable {
    case owner, family, tenant, staff, visitor

    /// Owners, family and tenants live in the house.
    public var isResident: Bool { self == .owner || self == .family || self == .tenant }
}

/// Whether a person may pass at all.
public enum PersonStatus: String, CaseIterable, Sendable, Codable {
    case active, suspended, blacklisted
}

/// The kinds of credential a reader, keypad or camera presents.
public enum CredentialKind: String, CaseIterable, Sendable, Codable {
    case card, pin, plate, qr
}

/// A credential can be revoked (or reported lost) without deleting its owner; a blacklisted
/// credential (布控) is refused with an alarm even when nobody owns it.
public enum CredentialStatus: String, CaseIterable, Sendable, Codable {
    case active, revoked, lost, blacklisted
}

/// A dwelling: community / building / unit / floor / room, with a stable id such as `B03-U2-1502`.
public struct House: Hashable, Sendable, Codable {
    public var id: String
    public var building: String
    public var unit: String
    public var floor: String
    public var room: String
    /// The house's parking spaces: at most this many of its cars inside at once; nil: no limit.
    public var parkingSpaces: Int?

    public init(id: String, building: String, unit: String = "", floor: String = "", room: String = "", parkingSpaces: Int? = nil) {
        self.parkingSpaces = parkingSpaces
        self.id = id
        self.building = building
        self.unit = unit
        self.floor = floor
        self.room = room
    }
}

/// A person's tie to a house.
public struct HouseBinding: Hashable, Sendable, Codable {
    public var houseID: String
    public var role: Role

    public init(houseID: String, role: Role) {
        self.houseID = houseID
        self.role = role
    }
}

/// A person on the roster. Validity is a half-open interval `[validFrom, validUntil)`; nil is unbounded.
public struct Person: Hashable, Sendable, Codable {
    public var id: String
    public var name: String
    public var phone: String
    public var status: PersonStatus
    public var validFrom: UnixSeconds?
    public var validUntil: UnixSeconds?
    /// Flagged for the 关爱独居老人 indicator.
    public var livesAlone: Bool
    public var houses: [HouseBinding]
    /// Explicit access groups; empty means the defaults for the role and building.
    public var groups: [String]

    public init(
        id: String, name: String = "", phone: String = "", status: PersonStatus = .active,
        validFrom: UnixSeconds? = nil, validUntil: UnixSeconds? = nil, livesAlone: Bool = false,
        houses: [HouseBinding], groups: [String] = []
    ) {
        self.id = id
        self.name = name
        self.phone = phone
        self.status = status
        self.validFrom = validFrom
        self.validUntil = validUntil
        self.livesAlone = livesAlone
        self.houses = houses
        self.groups = groups
    }

    /// The first house: the one reported in events when no other fits better.
    public var primaryHouse: HouseBinding? { houses.first }
}

/// Who a credential belongs to.
public enum CredentialOwner: Hashable, Sendable {
    case person(String)
    /// A household's car: any resident's rights open the barrier for it.
    case house(String)
    /// Nobody: only blacklisted credentials may be unowned.
    case none
}

/// A card number, PIN, plate or QR pass identifier, with its owner and status.
public struct Credential: Hashable, Sendable {
    public var kind: CredentialKind
    /// The normalised value: decimal card number, PIN digits, normalised plate.
    public var value: String
    public var owner: CredentialOwner
    public var status: CredentialStatus
    public var note: String
    /// A duress PIN: it opens as the person's PIN does and raises a silent `duress` alarm.
    public var duress: Bool

    public init(kind: CredentialKind, value: String, owner: CredentialOwner, status: CredentialStatus = .active, note: String = "",
                duress: Bool = false) {
        self.duress = duress
        self.kind = kind
        self.value = value
        self.owner = owner
        self.status = status
        self.note = note
    }
}

/// A temporary pass issued by property staff, bound to a host house.
public struct VisitorPass: Hashable, Sendable {
    public enum Status: String, Sendable, Codable, CaseIterable { case active, revoked }

    public var id: String
    public var houseID: String
    public var visitorName: String
    public var phone: String
    /// The visitor's car, if any: the barrier opens for it like for the QR code.
    public var plate: String?
    public var validFrom: UnixSeconds
    public var validUntil: UnixSeconds
    public var maxUses: Int
    public var uses: Int
    public var status: Status
    /// Portals the pass opens; empty means the community's shared portals and the host's building.
    public var portals: [String]

    public init(
        id: String, houseID: String, visitorName: String, phone: String = "", plate: String? = nil,
        validFrom: UnixSeconds, validUntil: UnixSeconds, maxUses: Int, uses: Int = 0,
        status: Status = .active, portals: [String] = []
    ) {
        self.id = id
        self.houseID = houseID
        self.visitorName = visitorName
        self.phone = phone
        self.plate = plate
        self.validFrom = validFrom
        self.validUntil = validUntil
        self.maxUses = maxUses
        self.uses = uses
        self.status = status
        self.portals = portals
    }
}

/// A named set of portals, optionally restricted by a schedule.
public struct AccessGroup: Hashable, Sendable {
    public var name: String
    public var portals: [String]
    public var schedule: String?

    public init(name: String, portals: [String], schedule: String? = nil) {
        self.name = name
        self.portals = portals
        self.schedule = schedule
    }
}
