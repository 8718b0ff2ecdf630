import Crypto

/// The hash chains that make the event and audit logs tamper-evident. Each entry's hash is
/// SHA-256 over a domain tag, the previous entry's hash and the entry's canonical encoding, so
/// deleting, editing or reordering a stored entry breaks the chain at that entry; and a platform
/// that kept the hashes it was sent can check a controller's history without trusting its disk.
///
/// Canonical encoding, after the tag and the 32 bytes of the previous hash: every field in a fixed
/// order, each as `0x00` when absent, else `0x01`, its UTF-8 length as 4 bytes big-endian, and its
/// UTF-8 bytes. Integers are written in decimal, `granted` as `1`/`0`, and an event's details as
/// the compact JSON object the log stores.
public enum LogChain {
    /// The previous hash of a log's first chained entry.
    public static let genesis = [UInt8](repeating: 0, count: 32)

    /// An event's fields as the log stores them: what its hash covers.
    public struct EventFields: Sendable, Equatable {
        public var serial: Int64
        public var timeMicros: Int64
        public var utcOffset: Int64
        public var type: String
        public var portal: String?
        public var direction: String?
        public var credentialKind: String?
        public var credential: String?
        public var personID: String?
        public var houseID: String?
        public var role: String?
        public var granted: Bool?
        public var reason: String?
        /// The details as stored: a compact JSON object, nil when there are none.
        public var detail: String?

        public init(serial: Int64, timeMicros: Int64, utcOffset: Int64, type: String, portal: String?, direction: String?,
                    credentialKind: String?, credential: String?, personID: String?, houseID: String?, role: String?,
                    granted: Bool?, reason: String?, detail: String?) {
            self.serial = serial
            self.timeMicros = timeMicros
            self.utcOffset = utcOffset
            self.type = type
            self.portal = portal
            self.direction = direction
            self.credentialKind = credentialKind
            self.credential = credential
            self.personID = personID
            self.houseID = houseID
            self.role = role
            self.granted = granted
            self.reason = reason
            self.detail = detail
        }

        /// `event` at `serial`, with its details rendered as the log stores them.
        public init(_ event: AccessEvent, serial: Int64, detail: String?) {
            self.init(serial: serial, timeMicros: event.timeMicros, utcOffset: Int64(event.utcOffset), type: event.type.rawValue,
                      portal: event.portal, direction: event.direction?.rawValue, credentialKind: event.credentialKind?.rawValue,
                      credential: event.credential, personID: event.personID, houseID: event.houseID, role: event.role?.rawValue,
                      granted: event.granted, reason: event.reason?.rawValue, detail: detail)
        }
    }

    /// An audit entry's fields as the log stores them.
    public struct AuditFields: Sendable, Equatable {
        public var id: Int64
        public var timeMicros: Int64
        public var `operator`: String
        public var note: String?
        public var action: String
        public var target: String
        public var before: String?
        public var after: String?

        public init(id: Int64, timeMicros: Int64, operator: String, note: String?, action: String, target: String, before: String?, after: String?) {
            self.id = id
            self.timeMicros = timeMicros
            self.operator = `operator`
            self.note = note
            self.action = action
            self.target = target
            self.before = before
            self.after = after
        }
    }

    // The event writer hashes every event it appends, one after the other (each link needs the
    // last): the encoding goes into one buffer sized up front, and the digest is taken from it
    // with one call into the hash, so a link costs one allocation besides the hash's own.
    public static func hash(_ e: EventFields, previous: [UInt8]) -> [UInt8] {
        let texts = [e.type, e.portal, e.direction, e.credentialKind, e.credential, e.personID, e.houseID, e.role,
                     e.granted.map { $0 ? "1" : "0" }, e.reason, e.detail]
        var encoding = Encoding(tag: "communityaccess.event.v1", previous: previous, fields: texts.count + 3,
                                textBytes: texts.reduce(0) { $0 + ($1?.utf8.count ?? 0) })
        encoding.add(e.serial)
        encoding.add(e.timeMicros)
        encoding.add(e.utcOffset)
        for text in texts { encoding.add(text) }
        return encoding.digest()
    }

    public static func hash(_ a: AuditFields, previous: [UInt8]) -> [UInt8] {
        let texts = [a.operator, a.note, a.action, a.target, a.before, a.after]
        var encoding = Encoding(tag: "communityaccess.audit.v1", previous: previous, fields: texts.count + 2,
                                textBytes: texts.reduce(0) { $0 + ($1?.utf8.count ?? 0) })
        encoding.add(a.id)
        encoding.add(a.timeMicros)
        for text in texts { encoding.add(text) }
        return encoding.digest()
    }

    private struct Encoding {
        var bytes: [UInt8] = []

        /// Room for the tag, the previous hash and `fields` fields of at most 20 digits or
        /// `textBytes` bytes of text in all, so appending never reallocates.
        init(tag: StaticString, previous: [UInt8], fields: Int, textBytes: Int) {
            bytes.reserveCapacity(tag.utf8CodeUnitCount + 1 + previous.count + fields * 25 + textBytes)
            tag.withUTF8Buffer { bytes.append(contentsOf: $0) }
            bytes.append(0)
            bytes.append(contentsOf: previous)
        }

        mutating func add(_ text: String?) {
            guard var text else { return bytes.append(0) }
            header(text.utf8.count)
            text.withUTF8 { bytes.append(contentsOf: $0) }
        }

        /// An integer as its decimal text.
        mutating func add(_ value: Int64) {
            var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                         UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            var count = 0
            var magnitude = value.magnitude
            withUnsafeMutableBytes(of: &digits) { buffer in
                repeat {
                    buffer[19 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                    magnitude /= 10
                    count += 1
                } while magnitude > 0
            }
            let negative = value < 0
            header(count + (negative ? 1 : 0))
            if negative { bytes.append(UInt8(ascii: "-")) }
            withUnsafeBytes(of: &digits) { bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[(20 - count)...])) }
        }

        private mutating func header(_ count: Int) {
            bytes.append(1)
            bytes.append(UInt8(truncatingIfNeeded: count >> 24))
            bytes.append(UInt8(truncatingIfNeeded: count >> 16))
            bytes.append(UInt8(truncatingIfNeeded: count >> 8))
            bytes.append(UInt8(truncatingIfNeeded: count))
        }

        /// Through the hasher's buffer entry point: the generic `hash(data:)` walks the array as
        /// `DataProtocol` regions, and a digest read as a sequence goes byte by byte.
        func digest() -> [UInt8] {
            var hasher = SHA256()
            bytes.withUnsafeBytes { hasher.update(bufferPointer: $0) }
            return hasher.finalize().withUnsafeBytes { Array($0) }
        }
    }
}

/// Where a chain first breaks: the serial (or audit id) deleted, or altered or reordered.
public enum ChainBreak: Sendable, Equatable, CustomStringConvertible {
    case deleted(serial: Int64)
    case altered(serial: Int64)

    public var serial: Int64 {
        switch self {
        case .deleted(let serial), .altered(let serial): serial
        }
    }

    public var problem: String {
        switch self {
        case .deleted: "deleted"
        case .altered: "altered or reordered"
        }
    }

    public var description: String { "serial \(serial) \(problem)" }
}

/// Walks one log's entries in serial order and finds the first break, one entry at a time (a
/// log of millions of events is never held in memory).
///
/// Entries stored before the chain existed carry no hash: they may only come first. A log whose
/// oldest entries retention removed starts at `anchor`, the serial and hash of the last removed
/// one; without an anchor the first chained entry must start from `LogChain.genesis`.
public struct ChainVerifier: Sendable {
    public private(set) var checked: Int64 = 0
    /// Entries before the chain existed (no hash), at the start of the log.
    public private(set) var unchained: Int64 = 0
    private let anchor: (serial: Int64, hash: [UInt8])?
    private var lastSerial: Int64?
    private var lastHash: [UInt8]?

    public init(anchor: (serial: Int64, hash: [UInt8])? = nil) {
        self.anchor = anchor
    }

    /// One entry: its serial, its stored previous hash and hash, and the hash its stored content
    /// and stored previous hash give (nil when it has no hash). Returns the first break it shows.
    public mutating func check(serial: Int64, previous: [UInt8]?, hash: [UInt8]?, recomputed: [UInt8]?) -> ChainBreak? {
        checked += 1
        defer { lastSerial = serial }
        if let last = lastSerial, serial != last + 1 { return .deleted(serial: last + 1) }
        guard let previous, let hash else {
            if lastHash != nil { return .altered(serial: serial) }  // a hash removed inside the chain
            unchained += 1
            return nil
        }
        if recomputed != hash { return .altered(serial: serial) }
        if let lastHash {
            // The entry before was changed and given a new hash: the link shows it.
            if previous != lastHash, let last = lastSerial { return .altered(serial: last) }
        } else if lastSerial != nil {
            if previous != LogChain.genesis { return .altered(serial: serial) }  // the chain starts after the unchained entries
        } else if let anchor {
            if serial > anchor.serial + 1 { return .deleted(serial: anchor.serial + 1) }
            if serial <= anchor.serial || previous != anchor.hash { return .altered(serial: serial) }
        } else if previous != LogChain.genesis {
            return .deleted(serial: serial - 1)  // it links to an entry that is gone, and retention removed none
        }
        lastHash = hash
        return nil
    }

    /// After the last entry: `lastAssigned` (the highest serial the log ever gave) shows entries
    /// deleted from the end.
    public func finish(lastAssigned: Int64) -> ChainBreak? {
        let lastSeen = lastSerial ?? anchor?.serial ?? 0
        return lastAssigned > lastSeen ? .deleted(serial: lastSeen + 1) : nil
    }
}
