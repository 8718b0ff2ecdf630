import AccessCore

/// A change set larger than one NATS message (1 MB by default) travels as consecutive parts,
/// each a complete change set document with the same id and a share of the changes, headed
/// `Access-Change-Set: ID` and `Access-Part: I/N`. The publisher makes the parts consecutive in
/// the stream (each expects the previous one's sequence), so a reader meets them in order; the
/// change set's community sequence is its last part's.
public enum ChangeSetParts {
    public static let idHeader = "Access-Change-Set"
    public static let partHeader = "Access-Part"

    /// The messages to publish: payload and headers, in order.
    public static func split(_ set: ChangeSet, maxBytes: Int) -> [(payload: [UInt8], headers: [String: String])] {
        let whole = Array(set.json().rendered().utf8)
        if whole.count <= maxBytes { return [(whole, [idHeader: set.id])] }
        var chunks: [[RosterChange]] = []
        var current: [RosterChange] = []
        var size = 512  // the envelope
        for change in set.changes {
            let bytes = change.json().rendered().utf8.count + 1
            if !current.isEmpty, size + bytes > maxBytes {
                chunks.append(current)
                current = []
                size = 512
            }
            current.append(change)
            size += bytes
        }
        if !current.isEmpty { chunks.append(current) }
        return chunks.enumerated().map { i, changes in
            var part = set
            part.changes = changes
            return (Array(part.json().rendered().utf8), [idHeader: set.id, partHeader: "\(i + 1)/\(chunks.count)"])
        }
    }
}

/// Puts parts back together as a reader meets them. Deterministic, so every controller keeps
/// or drops the same parts: a part that does not continue the pending change set (its
/// publisher died half way, and another change set began) drops the pending one.
public struct ChangeSetAssembler: Sendable {
    public enum Outcome: Sendable {
        /// More parts are due.
        case incomplete
        /// A whole change set, at its last part's sequence.
        case complete(ChangeSet, sequence: UInt64)
        /// A change set nobody can apply: its parts stopped (logged; the roster is unchanged).
        case dropped(id: String, reason: String)
    }

    private var pendingID: String?
    private var pendingParts: [ChangeSet] = []
    private var pendingTotal = 0
    /// A drop noticed while starting a new change set, reported with the next outcome.
    public private(set) var lastDropped: (id: String, reason: String)?

    public init() {}

    /// Whether a change set is half read (its first part's sequence is then still unapplied).
    public var isAssembling: Bool { pendingID != nil }

    public mutating func add(sequence: UInt64, headers: [String: String], payload: [UInt8]) throws(ChangeSetError) -> Outcome {
        lastDropped = nil
        guard let part = headers[ChangeSetParts.partHeader] else {
            if let id = pendingID { drop(id, "a whole change set followed its part \(pendingParts.count) of \(pendingTotal)") }
            return .complete(try ChangeSet.parse(payload), sequence: sequence)
        }
        let numbers = part.split(separator: "/").compactMap { Int($0) }
        guard numbers.count == 2, numbers[0] >= 1, numbers[0] <= numbers[1] else {
            throw ChangeSetError(path: "header \(ChangeSetParts.partHeader)", problem: "\"\(part)\" is not I/N")
        }
        let id = headers[ChangeSetParts.idHeader] ?? ""
        if numbers[0] == 1 {
            if let pending = pendingID { drop(pending, "change set \(id) began before its part \(pendingParts.count + 1) of \(pendingTotal)") }
            pendingID = id
            pendingTotal = numbers[1]
            pendingParts = []
        } else if pendingID != id || numbers[0] != pendingParts.count + 1 || numbers[1] != pendingTotal {
            let reason = "part \(part) of \(id) does not follow what was read"
            if let pending = pendingID { drop(pending, reason) }
            return .dropped(id: id, reason: reason)
        }
        pendingParts.append(try ChangeSet.parse(payload))
        guard pendingParts.count == pendingTotal else {
            if let lastDropped { return .dropped(id: lastDropped.id, reason: lastDropped.reason) }
            return .incomplete
        }
        var whole = pendingParts[0]
        whole.changes = pendingParts.flatMap(\.changes)
        pendingID = nil
        pendingParts = []
        return .complete(whole, sequence: sequence)
    }

    private mutating func drop(_ id: String, _ reason: String) {
        lastDropped = (id, reason)
        pendingID = nil
        pendingParts = []
    }
}
