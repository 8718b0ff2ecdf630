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

    public static func hash(_ e: EventFields, previous: [UInt8]) -> [UInt8] {
        eventHash(serial: e.serial, timeMicros: e.timeMicros, utcOffset: e.utcOffset, type: e.type, portal: e.portal,
                  direction: e.direction, credentialKind: e.credentialKind, credential: e.credential, personID: e.personID,
                  houseID: e.houseID, role: e.role, granted: e.granted, reason: e.reason, detail: e.detail, previous: previous)
    }

    /// The same link as `hash(EventFields(event, serial:, detail:), previous:)`, without copying
    /// the event's fields first: the event writer hashes every event it appends, one after the
    /// other (each link needs the last), so this is on its critical path.
    public static func hash(_ e: AccessEvent, serial: Int64, detail: String?, previous: [UInt8]) -> [UInt8] {
        eventHash(serial: serial, timeMicros: e.timeMicros, utcOffset: Int64(e.utcOffset), type: e.type.rawValue, portal: e.portal,
                  direction: e.direction?.rawValue, credentialKind: e.credentialKind?.rawValue, credential: e.credential,
                  personID: e.personID, houseID: e.houseID, role: e.role?.rawValue, granted: e.granted,
                  reason: e.reason?.rawValue, detail: detail, previous: previous)
    }

    public static func hash(_ a: AuditFields, previous: [UInt8]) -> [UInt8] {
        let textBytes = a.operator.utf8.count + (a.note?.utf8.count ?? 0) + a.action.utf8.count + a.target.utf8.count
            + (a.before?.utf8.count ?? 0) + (a.after?.utf8.count ?? 0)
        return Encoding.digest(tag: "communityaccess.audit.v1", previous: previous, fields: 8, textBytes: textBytes) { encoding in
            encoding.add(a.id)
            encoding.add(a.timeMicros)
            encoding.add(a.operator)
            encoding.add(a.note)
            encoding.add(a.action)
            encoding.add(a.target)
            encoding.add(a.before)
            encoding.add(a.after)
        }
    }

    private static func eventHash(serial: Int64, timeMicros: Int64, utcOffset: Int64, type: String, portal: String?,
                                  direction: String?, credentialKind: String?, credential: String?, personID: String?,
                                  houseID: String?, role: String?, granted: Bool?, reason: String?, detail: String?,
                                  previous: [UInt8]) -> [UInt8] {
        func size(_ text: String?) -> Int { text?.utf8.count ?? 0 }
        let textBytes = type.utf8.count + 1 + size(portal) + size(direction) + size(credentialKind) + size(credential)
            + size(personID) + size(houseID) + size(role) + size(reason) + size(detail)
        return Encoding.digest(tag: "communityaccess.event.v1", previous: previous, fields: 14, textBytes: textBytes) { encoding in
            encoding.add(serial)
            encoding.add(timeMicros)
            encoding.add(utcOffset)
            encoding.add(type)
            encoding.add(portal)
            encoding.add(direction)
            encoding.add(credentialKind)
            encoding.add(credential)
            encoding.add(personID)
            encoding.add(houseID)
            encoding.add(role)
            encoding.add(granted.map { $0 ? "1" : "0" })
            encoding.add(reason)
            encoding.add(detail)
        }
    }

    /// Writes the canonical encoding into one buffer, on the stack when it is small, and hashes
    /// it with one call: no growing array, and the digest is copied out once.
    private struct Encoding {
        private let buffer: UnsafeMutableRawBufferPointer
        private var count = 0

        /// Room for the tag, the previous hash and `fields` fields of at most 20 digits or
        /// `textBytes` bytes of text in all.
        static func digest(tag: StaticString, previous: [UInt8], fields: Int, textBytes: Int,
                           _ write: (inout Encoding) -> Void) -> [UInt8] {
            let capacity = tag.utf8CodeUnitCount + 1 + previous.count + fields * 25 + textBytes
            return withUnsafeTemporaryAllocation(byteCount: capacity, alignment: 1) { buffer in
                var encoding = Encoding(buffer: buffer)
                tag.withUTF8Buffer { encoding.append(UnsafeRawBufferPointer($0)) }
                encoding.append(0)
                previous.withUnsafeBytes { encoding.append($0) }
                write(&encoding)
                var hasher = SHA256()
                hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[..<encoding.count]))
                return hasher.finalize().withUnsafeBytes { Array($0) }
            }
        }

        private init(buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }

        private mutating func append(_ byte: UInt8) {
            buffer[count] = byte
            count += 1
        }

        private mutating func append(_ bytes: UnsafeRawBufferPointer) {
            precondition(count + bytes.count <= buffer.count, "the encoding's size was reckoned too small")
            UnsafeMutableRawBufferPointer(rebasing: buffer[count...]).copyMemory(from: bytes)
            count += bytes.count
        }

        mutating func add(_ text: String?) {
            guard var text else { return append(0) }
            header(text.utf8.count)
            text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
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
            if negative { append(UInt8(ascii: "-")) }
            withUnsafeBytes(of: &digits) { append(UnsafeRawBufferPointer(rebasing: $0[(20 - count)...])) }
        }

        private mutating func header(_ count: Int) {
            append(1)
            append(UInt8(truncatingIfNeeded: count >> 24))
            append(UInt8(truncatingIfNeeded: count >> 16))
            append(UInt8(truncatingIfNeeded: count >> 8))
            append(UInt8(truncatingIfNeeded: count))
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
