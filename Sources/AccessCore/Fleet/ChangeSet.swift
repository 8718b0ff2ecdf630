/// One roster change set: every change one command (or one import) made to the community's
/// roster, as the records' states after it. Every controller applies a change set whole or not
/// at all, in the order of the community sequence (the JetStream stream's sequence).
///
/// The wire format is public and versioned (`API/changeset.schema.json`), so a platform can
/// publish change sets itself. Changes are final states, not edits: a `put` carries the whole
/// record, a `delete` its key, so applying the same change set twice leaves the same roster.
public struct ChangeSet: Hashable, Sendable {
    /// The format version this build writes (it reads 1 to this). 2: a PIN is its keyed hash
    /// under the community's PIN key, and a PIN says whether it is a duress PIN.
    public static let currentVersion = 2

    public var version: Int
    /// The community's name in the fleet.
    public var community: String
    /// Unique per change set: the JetStream message id, so a republished one is dropped.
    public var id: String
    /// Who made it: the Unix user, the host and the command, for the audit log.
    public var origin: Origin
    /// When it was made (Unix seconds).
    public var created: UnixSeconds
    /// Applied in this order: the sender orders puts before the deletes that depend on them.
    public var changes: [RosterChange]

    public struct Origin: Hashable, Sendable {
        public var user: String
        public var host: String
        public var command: String

        public init(user: String, host: String, command: String) {
            self.user = user
            self.host = host
            self.command = command
        }
    }

    public init(community: String, id: String, origin: Origin, created: UnixSeconds, changes: [RosterChange], version: Int = ChangeSet.currentVersion) {
        self.version = version
        self.community = community
        self.id = id
        self.origin = origin
        self.created = created
        self.changes = changes
    }
}

/// A record of the roster by kind and key.
public enum RosterKey: Hashable, Sendable, Comparable {
    case schedule(String)
    case group(String)
    case house(String)
    case person(String)
    case credential(CredentialKind, String)
    case visitorPass(String)

    /// The order in which puts are applied: what a record refers to comes first. Deletes go the
    /// other way round.
    public var rank: Int {
        switch self {
        case .schedule: return 0
        case .group: return 1
        case .house: return 2
        case .person: return 3
        case .credential: return 4
        case .visitorPass: return 5
        }
    }

    public var kindName: String {
        switch self {
        case .schedule: return "schedule"
        case .group: return "group"
        case .house: return "house"
        case .person: return "person"
        case .credential: return "credential"
        case .visitorPass: return "visitor_pass"
        }
    }

    /// The key as it appears in a `delete`: the id or name, `KIND:VALUE` for a credential.
    public var text: String {
        switch self {
        case .schedule(let s), .group(let s), .house(let s), .person(let s), .visitorPass(let s): return s
        case .credential(let kind, let value): return kind.rawValue + ":" + value
        }
    }

    public static func < (a: RosterKey, b: RosterKey) -> Bool {
        a.rank != b.rank ? a.rank < b.rank : a.text.utf8.lexicographicallyPrecedes(b.text.utf8)
    }
}

/// One record's state after a change set.
public enum RosterChange: Hashable, Sendable {
    case putSchedule(Schedule)
    case putGroup(AccessGroup)
    case putHouse(House)
    case putPerson(Person)
    case putCredential(Credential)
    case putVisitorPass(VisitorPass)
    case delete(RosterKey)

    public var key: RosterKey {
        switch self {
        case .putSchedule(let s): return .schedule(s.name)
        case .putGroup(let g): return .group(g.name)
        case .putHouse(let h): return .house(h.id)
        case .putPerson(let p): return .person(p.id)
        case .putCredential(let c): return .credential(c.kind, c.value)
        case .putVisitorPass(let v): return .visitorPass(v.id)
        case .delete(let key): return key
        }
    }

    public var isDelete: Bool {
        if case .delete = self { return true }
        return false
    }

    /// Puts in reference order, then deletes in reverse: a valid end state applies without ever
    /// passing through an invalid one (a house is deleted after the people who lived in it).
    public static func ordered(_ changes: [RosterChange]) -> [RosterChange] {
        let puts = changes.filter { !$0.isDelete }.sorted { $0.key < $1.key }
        let deletes = changes.filter(\.isDelete).sorted { $1.key < $0.key }
        return puts + deletes
    }
}

/// Why a change set cannot be read; the field path names where.
public struct ChangeSetError: Error, Hashable, Sendable, CustomStringConvertible {
    public var path: String
    public var problem: String

    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    public var description: String { path.isEmpty ? problem : "\(path): \(problem)" }
}
