import CNats

/// Where a stream keeps its messages.
public enum StreamStorage: String, Sendable, Equatable {
    case file, memory
}

/// A JetStream stream as the fleet wants it: `ensureStream` creates or updates to this.
public struct StreamSpec: Sendable, Equatable {
    public var name: String
    public var subjects: [String]
    public var description: String?
    /// Copies kept by the cluster (1, 3 or 5; at most the number of servers).
    public var replicas: Int
    public var storage: StreamStorage
    /// Limits; nil leaves the server's default (unlimited).
    public var maxAge: Duration?
    public var maxBytes: Int64?
    public var maxMessages: Int64?
    public var maxMessagesPerSubject: Int64?
    public var maxMessageSize: Int32?
    /// How long `Nats-Msg-Id`s are remembered to drop duplicates (server default 2 minutes).
    public var duplicateWindow: Duration?
    /// Refuse new messages at a limit instead of dropping the oldest.
    public var discardNew: Bool
    /// No message may be deleted, or the stream purged, through the API.
    public var denyDelete: Bool
    public var denyPurge: Bool
    /// A message with `Nats-Rollup` may replace the subject's (or stream's) earlier ones.
    public var allowRollup: Bool
    /// Any replica may answer message gets (`DIRECT.GET`).
    public var allowDirect: Bool

    public init(name: String, subjects: [String], description: String? = nil, replicas: Int = 1,
                storage: StreamStorage = .file, maxAge: Duration? = nil, maxBytes: Int64? = nil,
                maxMessages: Int64? = nil, maxMessagesPerSubject: Int64? = nil, maxMessageSize: Int32? = nil,
                duplicateWindow: Duration? = nil, discardNew: Bool = false, denyDelete: Bool = false,
                denyPurge: Bool = false, allowRollup: Bool = false, allowDirect: Bool = true) {
        self.name = name
        self.subjects = subjects
        self.description = description
        self.replicas = replicas
        self.storage = storage
        self.maxAge = maxAge
        self.maxBytes = maxBytes
        self.maxMessages = maxMessages
        self.maxMessagesPerSubject = maxMessagesPerSubject
        self.maxMessageSize = maxMessageSize
        self.duplicateWindow = duplicateWindow
        self.discardNew = discardNew
        self.denyDelete = denyDelete
        self.denyPurge = denyPurge
        self.allowRollup = allowRollup
        self.allowDirect = allowDirect
    }

    /// Whether an existing stream already has what this spec sets (what the spec leaves nil is
    /// not compared).
    func matches(_ info: StreamInfo) -> Bool {
        guard Set(info.subjects) == Set(subjects), info.replicas == replicas, info.storage == storage,
              info.denyDelete == denyDelete, info.denyPurge == denyPurge, info.allowRollup == allowRollup,
              info.allowDirect == allowDirect, info.discardNew == discardNew else { return false }
        if let maxAge, info.maxAge != maxAge { return false }
        if let maxBytes, info.maxBytes != maxBytes { return false }
        if let maxMessages, info.maxMessages != maxMessages { return false }
        if let maxMessagesPerSubject, info.maxMessagesPerSubject != maxMessagesPerSubject { return false }
        if let maxMessageSize, info.maxMessageSize != maxMessageSize { return false }
        if let duplicateWindow, info.duplicateWindow != duplicateWindow { return false }
        return true
    }
}

/// One replica of a clustered stream.
public struct StreamReplica: Sendable, Equatable {
    public var server: String
    /// Caught up with the leader.
    public var current: Bool
    public var offline: Bool
    /// Operations behind the leader.
    public var lag: UInt64
}

/// A stream's configuration, state and placement.
public struct StreamInfo: Sendable, Equatable {
    public var name: String
    public var subjects: [String]
    public var replicas: Int
    public var storage: StreamStorage
    public var maxAge: Duration
    public var maxBytes: Int64
    public var maxMessages: Int64
    public var maxMessagesPerSubject: Int64
    public var maxMessageSize: Int32
    public var duplicateWindow: Duration
    public var discardNew: Bool
    public var denyDelete: Bool
    public var denyPurge: Bool
    public var allowRollup: Bool
    public var allowDirect: Bool
    /// Messages held, their bytes, the first and last sequence (0 when none was ever stored).
    public var messages: UInt64
    public var bytes: UInt64
    public var firstSequence: UInt64
    public var lastSequence: UInt64
    public var consumers: Int
    /// The cluster's name and the server that leads the stream (nil when single-server or while
    /// there is no leader), and the other replicas.
    public var cluster: String?
    public var leader: String?
    public var followers: [StreamReplica]

    init(_ info: jsStreamInfo) {
        let config = info.Config?.pointee
        name = config?.Name.map { String(cString: $0) } ?? ""
        var subjects: [String] = []
        if let config, let list = config.Subjects {
            for i in 0..<Int(config.SubjectsLen) {
                if let s = list[i] { subjects.append(String(cString: s)) }
            }
        }
        self.subjects = subjects
        replicas = Int(config?.Replicas ?? 1)
        storage = config?.Storage == js_MemoryStorage ? .memory : .file
        maxAge = .nanoseconds(config?.MaxAge ?? 0)
        maxBytes = config?.MaxBytes ?? -1
        maxMessages = config?.MaxMsgs ?? -1
        maxMessagesPerSubject = config?.MaxMsgsPerSubject ?? -1
        maxMessageSize = config?.MaxMsgSize ?? -1
        duplicateWindow = .nanoseconds(config?.Duplicates ?? 0)
        discardNew = config?.Discard == js_DiscardNew
        denyDelete = config?.DenyDelete ?? false
        denyPurge = config?.DenyPurge ?? false
        allowRollup = config?.AllowRollup ?? false
        allowDirect = config?.AllowDirect ?? false
        messages = info.State.Msgs
        bytes = info.State.Bytes
        firstSequence = info.State.FirstSeq
        lastSequence = info.State.LastSeq
        consumers = Int(info.State.Consumers)
        var followers: [StreamReplica] = []
        if let cluster = info.Cluster?.pointee {
            self.cluster = cluster.Name.map { String(cString: $0) }
            leader = cluster.Leader.map { String(cString: $0) }
            if let list = cluster.Replicas {
                for i in 0..<Int(cluster.ReplicasLen) {
                    guard let peer = list[i]?.pointee else { continue }
                    followers.append(StreamReplica(server: peer.Name.map { String(cString: $0) } ?? "",
                                                   current: peer.Current, offline: peer.Offline, lag: peer.Lag))
                }
            }
        } else {
            cluster = nil
            leader = nil
        }
        self.followers = followers
    }
}

/// What JetStream answered to a publish.
public struct PublishAck: Sendable, Equatable {
    /// The stream that stored it.
    public var stream: String
    /// Its sequence in that stream (for a duplicate: the sequence of the first copy).
    public var sequence: UInt64
    /// Not stored again: a message with the same `Nats-Msg-Id` is in the duplicate window.
    public var duplicate: Bool

    public init(stream: String, sequence: UInt64, duplicate: Bool) {
        self.stream = stream
        self.sequence = sequence
        self.duplicate = duplicate
    }
}

/// One stored message.
public struct StreamMessage: Sendable, Equatable {
    public var sequence: UInt64
    public var subject: String
    public var headers: [String: String]
    public var payload: [UInt8]
    /// When the stream stored it: nanoseconds since 1970 (UTC).
    public var timestampNanos: Int64

    public init(sequence: UInt64, subject: String, headers: [String: String], payload: [UInt8], timestampNanos: Int64) {
        self.sequence = sequence
        self.subject = subject
        self.headers = headers
        self.payload = payload
        self.timestampNanos = timestampNanos
    }

    /// From a message the stream API returned (`js_GetMsg`, `js_GetLastMsg`): sequence and time
    /// are in the message itself.
    init(storedMessage msg: OpaquePointer) {
        sequence = natsMsg_GetSequence(msg)
        subject = natsMsg_GetSubject(msg).map { String(cString: $0) } ?? ""
        headers = readHeaders(msg)
        payload = readPayload(msg)
        timestampNanos = natsMsg_GetTime(msg)
    }
}
