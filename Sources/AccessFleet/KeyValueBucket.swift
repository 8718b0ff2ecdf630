// A key-value bucket (JetStream's KV: a stream `KV_<bucket>` with one subject per key,
// `$KV.<bucket>.<key>`). Reads go through libnats's kvStore; writes are JetStream publishes on the
// key's subject so that a conflict comes back as JetStream's own error code (libnats's kvStore
// functions drop it), and so that a user allowed to publish on one key only can write it.
import AccessRuntime
import CNats
import Glibc

/// How a bucket is made when it does not exist.
public struct BucketSpec: Sendable, Equatable {
    /// Letters, digits, `_` and `-`.
    public var name: String
    public var replicas: Int
    /// Values kept per key (1-64), the latest included.
    public var history: Int
    /// How long a value lives; nil for ever.
    public var ttl: Duration?
    public var maxValueSize: Int32?
    public var storage: StreamStorage

    public init(name: String, replicas: Int = 1, history: Int = 1, ttl: Duration? = nil, maxValueSize: Int32? = nil,
                storage: StreamStorage = .file) {
        self.name = name
        self.replicas = replicas
        self.history = history
        self.ttl = ttl
        self.maxValueSize = maxValueSize
        self.storage = storage
    }
}

/// One value of a key.
public struct KeyValueEntry: Sendable, Equatable {
    public var key: String
    public var value: [UInt8]
    /// The key's revision: the stream sequence of this value (what `update` expects).
    public var revision: UInt64
    /// When it was written: nanoseconds since 1970 (UTC).
    public var createdNanos: Int64

    public var string: String { String(decoding: value, as: UTF8.self) }
}

/// A bound bucket. Thread-safe; keeps its connection alive.
public final class KeyValueBucket: @unchecked Sendable {
    public let connection: NatsConnection
    public let name: String
    private let kv: OpaquePointer

    /// Binds to the bucket, creating it with `spec` when it does not exist (and the user may).
    public static func ensure(_ spec: BucketSpec, on connection: NatsConnection) throws(FleetError) -> KeyValueBucket {
        do {
            return try bind(spec.name, on: connection)
        } catch .notFound {
            let strings = CStringArena()
            var config = kvConfig()
            kvConfig_Init(&config)
            config.Bucket = strings.dup(spec.name)
            config.Replicas = Int32(spec.replicas)
            config.History = UInt8(clamping: spec.history)
            if let ttl = spec.ttl { config.TTL = Int64(ttl.nanoseconds) }  // libnats 3.4 passes it on as the stream's MaxAge (nanoseconds)
            if let size = spec.maxValueSize { config.MaxValueSize = size }
            config.StorageType = spec.storage == .file ? js_FileStorage : js_MemoryStorage
            var kv: OpaquePointer?
            let started = monotonicNanos()
            let status = js_CreateKeyValue(&kv, connection.js, &config)
            guard status == NATS_OK, let kv else {
                throw connection.refine(fleetError("create bucket \(spec.name)", status),
                                        subject: "$JS.API.STREAM.CREATE.KV_\(spec.name)", since: started)
            }
            return KeyValueBucket(connection: connection, name: spec.name, kv: kv)
        }
    }

    /// Binds to an existing bucket (`.notFound` when there is none).
    public static func bind(_ name: String, on connection: NatsConnection) throws(FleetError) -> KeyValueBucket {
        var kv: OpaquePointer?
        let started = monotonicNanos()
        let status = js_KeyValue(&kv, connection.js, name)
        guard status == NATS_OK, let kv else {
            var error = connection.refine(fleetError("bind bucket \(name)", status),
                                          subject: "$JS.API.STREAM.INFO.KV_\(name)", since: started)
            // libnats says "bucket not found" as a plain error.
            if case .failed(let f) = error, (f.detail ?? "").lowercased().contains("not found") { error = .notFound(f) }
            throw error
        }
        return KeyValueBucket(connection: connection, name: name, kv: kv)
    }

    private init(connection: NatsConnection, name: String, kv: OpaquePointer) {
        self.connection = connection
        self.name = name
        self.kv = kv
    }

    deinit { kvStore_Destroy(kv) }

    private func subject(_ key: String) -> String { "$KV.\(name).\(key)" }

    /// The key's value and revision, or nil when it has none (never written, or deleted).
    ///
    /// Read from the bucket's stream leader, not with `kvStore_Get`: libnats makes buckets with
    /// direct get, which any replica answers, and a replica that is behind returns an older value
    /// (or none) for a key just written. Read here, what a write returned is what the next get
    /// sees.
    public func get(_ key: String) throws(FleetError) -> KeyValueEntry? {
        guard let last = try connection.lastMessage(stream: "KV_\(name)", subject: subject(key)) else { return nil }
        if let operation = last.headers["KV-Operation"], operation == "DEL" || operation == "PURGE" { return nil }
        return KeyValueEntry(key: key, value: last.payload, revision: last.sequence, createdNanos: last.timestampNanos)
    }

    /// Writes the key whatever it holds; returns the new revision.
    @discardableResult
    public func put(_ key: String, _ value: [UInt8]) throws(FleetError) -> UInt64 {
        try write(key, value, expected: nil, operation: "put")
    }

    /// Writes the key only if it has no value (never written, or deleted); `.revisionConflict`
    /// otherwise.
    @discardableResult
    public func create(_ key: String, _ value: [UInt8]) throws(FleetError) -> UInt64 {
        do {
            return try write(key, value, expected: 0, operation: "create")
        } catch .revisionConflict(let failure) {
            // A deleted key keeps a tombstone as its last message: writing over it is a create.
            guard let last = try connection.lastMessage(stream: "KV_\(name)", subject: subject(key)),
                  let op = last.headers["KV-Operation"], op == "DEL" || op == "PURGE" else {
                throw .revisionConflict(failure)
            }
            return try write(key, value, expected: last.sequence, operation: "create")
        }
    }

    /// Writes the key only if its last revision is `expectedRevision` (compare-and-set);
    /// `.revisionConflict` when someone wrote it since.
    @discardableResult
    public func update(_ key: String, _ value: [UInt8], expectedRevision: UInt64) throws(FleetError) -> UInt64 {
        try write(key, value, expected: expectedRevision, operation: "update")
    }

    /// Deletes the key (a tombstone; `get` then returns nil).
    public func delete(_ key: String) throws(FleetError) {
        _ = try write(key, [], expected: nil, operation: "delete", headers: ["KV-Operation": "DEL"])
    }

    /// The keys that hold a value now.
    public func keys(timeout: Duration = .seconds(5)) throws(FleetError) -> [String] {
        var options = kvWatchOptions()
        kvWatchOptions_Init(&options)
        options.Timeout = milliseconds(timeout)
        var list = kvKeysList()
        let status = kvStore_Keys(&list, kv, &options)
        defer { kvKeysList_Destroy(&list) }
        if status == NATS_NOT_FOUND { return [] }
        try check(status, "keys \(name)")
        var keys: [String] = []
        if let raw = list.Keys {
            for i in 0..<Int(list.Count) {
                if let key = raw[i] { keys.append(String(cString: key)) }
            }
        }
        return keys.sorted()
    }

    private func write(_ key: String, _ value: [UInt8], expected: UInt64?, operation: String,
                       headers: [String: String] = [:]) throws(FleetError) -> UInt64 {
        guard Self.validKey(key) else {
            throw .invalidArgument(FleetFailure(operation: "\(operation) \(name)/\(key)", status: Int32(NATS_INVALID_ARG.rawValue),
                                                statusText: "invalid argument", detail: "a key is letters, digits and -/_=. separated by ."))
        }
        do {
            return try connection.publish(subject: subject(key), payload: value, headers: headers,
                                          expectedLastSubjectSequence: expected, expectedStream: "KV_\(name)").sequence
        } catch .wrongLastSequence(var failure) {
            failure.operation = "\(operation) \(name)/\(key)" + (expected.map { " at revision \($0)" } ?? "")
            throw .revisionConflict(failure)
        } catch {
            throw error
        }
    }

    /// libnats's rule for keys: `[-/_=.a-zA-Z0-9]+`, not starting or ending with `.`.
    static func validKey(_ key: String) -> Bool {
        guard !key.isEmpty, !key.hasPrefix("."), !key.hasSuffix(".") else { return false }
        return key.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                || c == UInt8(ascii: "-") || c == UInt8(ascii: "/") || c == UInt8(ascii: "_") || c == UInt8(ascii: "=")
                || c == UInt8(ascii: ".")
        }
    }
}
