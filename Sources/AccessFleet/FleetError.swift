/// What failed and why, for every fleet error: the operation (`publish access.xfl.roster`,
/// `connect nats://10.0.0.5:4222`), libnats's status and its text, the JetStream error code when
/// the server sent one, and libnats's last error text (the server's description). Never carries
/// credentials or payloads.
public struct FleetFailure: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// What was being done.
    public var operation: String
    /// libnats's `natsStatus` (0 when the failure did not come from libnats).
    public var status: Int32
    /// libnats's text for `status` (`timeout`, `No server available for connection`).
    public var statusText: String
    /// The JetStream API error code (`10071` wrong last sequence, `10059` stream not found), or nil.
    public var jetStreamCode: Int?
    /// The details libnats or the server gave (`wrong last sequence: 7`), when they say more.
    public var detail: String?

    public init(operation: String, status: Int32, statusText: String, jetStreamCode: Int? = nil, detail: String? = nil) {
        self.operation = operation
        self.status = status
        self.statusText = statusText
        self.jetStreamCode = jetStreamCode
        self.detail = detail
    }

    public var description: String {
        var text = "\(operation): \(statusText)"
        if let detail, !detail.isEmpty, detail != statusText { text += ": \(detail)" }
        if let jetStreamCode { text += " (JetStream error \(jetStreamCode))" }
        return text
    }
}

/// A failed fleet operation, by what the caller can do about it.
public enum FleetError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// JetStream refused a publish whose expected last sequence (of the stream, or of the subject)
    /// was not the stream's: someone else published first (JetStream error 10071). Optimistic
    /// concurrency: read again, then retry.
    case wrongLastSequence(FleetFailure)
    /// A key-value create found the key present, or an update's expected revision was not the
    /// key's last (the same JetStream check, 10071, on the key's subject).
    case revisionConflict(FleetFailure)
    /// No answer within the time allowed (the cluster may be without a leader, or partitioned).
    case timeout(FleetFailure)
    /// Nobody listens on the subject: no stream takes it, or JetStream is not reachable.
    case noResponders(FleetFailure)
    /// The stream, consumer, message, bucket or key does not exist.
    case notFound(FleetFailure)
    /// The server refused the operation for this user (a permissions violation).
    case notPermitted(FleetFailure)
    /// The server refused the user, password or credentials.
    case authenticationFailed(FleetFailure)
    /// TLS failed: certificate not trusted, wrong host name, TLS required or not offered.
    case tls(FleetFailure)
    /// No server could be reached, or the connection is closed.
    case notConnected(FleetFailure)
    /// A caller's mistake: a bad name, an empty subject, an unreadable password file.
    case invalidArgument(FleetFailure)
    /// Anything else JetStream or libnats reported.
    case failed(FleetFailure)

    /// The details, whatever the case.
    public var failure: FleetFailure {
        switch self {
        case .wrongLastSequence(let f), .revisionConflict(let f), .timeout(let f), .noResponders(let f),
             .notFound(let f), .notPermitted(let f), .authenticationFailed(let f), .tls(let f),
             .notConnected(let f), .invalidArgument(let f), .failed(let f):
            return f
        }
    }

    public var description: String {
        let kind: String
        switch self {
        case .wrongLastSequence: kind = "wrong last sequence"
        case .revisionConflict: kind = "revision conflict"
        case .timeout: kind = "timeout"
        case .noResponders: kind = "no responders"
        case .notFound: kind = "not found"
        case .notPermitted: kind = "not permitted"
        case .authenticationFailed: kind = "authentication failed"
        case .tls: kind = "TLS"
        case .notConnected: kind = "not connected"
        case .invalidArgument: kind = "invalid argument"
        case .failed: kind = "failed"
        }
        return "\(failure) [\(kind)]"
    }
}
