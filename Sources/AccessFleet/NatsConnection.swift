// One libnats connection and its JetStream context. libnats connections are thread-safe: any
// thread may publish, read or ask for stream info at the same time. Every call blocks its thread
// until the servers answer or the timeout passes, so call them from dedicated threads
// (`NamedThread`), never from Swift's cooperative pool.
import AccessRuntime
import CNats
import Glibc
import Synchronization

/// A connection to the fleet's NATS cluster, reconnecting for ever.
///
/// Ownership: the connection owns its `natsConnection` and `jsCtx` and destroys them in `deinit`;
/// readers and buckets keep the connection alive while they exist. `close()` ends it early.
public final class NatsConnection: @unchecked Sendable {
    // Immutable after init; libnats objects are thread-safe.
    private let handle: OpaquePointer
    let js: OpaquePointer
    let callbacks: ConnectionCallbacks
    public let options: FleetConnectionOptions

    /// Connects to one of `options.servers`; throws when none accepts within the connect timeout
    /// (`.authenticationFailed`, `.tls`, `.notConnected`).
    public init(_ options: FleetConnectionOptions) throws(FleetError) {
        try NatsLibrary.open()
        self.options = options
        let what = "connect \(options.servers.joined(separator: ","))"
        guard !options.servers.isEmpty else {
            throw .invalidArgument(FleetFailure(operation: what, status: Int32(NATS_INVALID_ARG.rawValue),
                                                statusText: "invalid argument", detail: "no servers given"))
        }
        var password = options.password
        if let file = options.passwordFile {
            password = try readPasswordFile(file)
        }

        var opts: OpaquePointer?
        try check(natsOptions_Create(&opts), "\(what): create options")
        guard let opts else { throw fleetError(what, NATS_NO_MEMORY) }
        defer { natsOptions_Destroy(opts) }

        let strings = CStringArena()
        try check(natsOptions_SetServers(opts, strings.array(options.servers), Int32(options.servers.count)), "\(what): servers")
        if let name = options.name { try check(natsOptions_SetName(opts, name), "\(what): name") }
        if let user = options.user {
            try check(natsOptions_SetUserInfo(opts, user, password), "\(what): user")
        }
        if let creds = options.credsFile {
            try check(natsOptions_SetUserCredentialsFromFiles(opts, creds, nil), "\(what): credentials file \(creds)")
        }
        if let ca = options.tlsCAFile {
            try check(natsOptions_SetSecure(opts, true), "\(what): TLS")
            try check(natsOptions_LoadCATrustedCertificates(opts, ca), "\(what): load CA file \(ca)")
        }
        if let cert = options.tlsCertificateFile, let key = options.tlsKeyFile {
            try check(natsOptions_SetSecure(opts, true), "\(what): TLS")
            try check(natsOptions_LoadCertificatesChain(opts, cert, key), "\(what): load client certificate \(cert)")
        }
        if let host = options.tlsExpectedHostname {
            try check(natsOptions_SetExpectedHostname(opts, host), "\(what): expected host name")
        }
        try check(natsOptions_SetTimeout(opts, milliseconds(options.connectTimeout)), "\(what): timeout")
        try check(natsOptions_SetPingInterval(opts, milliseconds(options.pingInterval)), "\(what): ping interval")
        try check(natsOptions_SetMaxPingsOut(opts, Int32(max(options.maxPingsOut, 1))), "\(what): max pings out")
        try check(natsOptions_SetAllowReconnect(opts, true), "\(what): reconnect")
        try check(natsOptions_SetMaxReconnect(opts, -1), "\(what): reconnect for ever")
        try check(natsOptions_SetReconnectWait(opts, milliseconds(options.reconnectWait)), "\(what): reconnect wait")
        // Requests (JetStream API calls, publish acks) fail at once while disconnected rather than
        // waiting for their timeout: the caller learns of the partition and can say so.
        try check(natsOptions_SetFailRequestsOnDisconnect(opts, true), "\(what): fail requests on disconnect")

        let callbacks = ConnectionCallbacks(onEvent: options.onEvent,
                                            baseWaitMs: milliseconds(options.reconnectWait),
                                            maxWaitMs: milliseconds(options.maxReconnectWait))
        // libnats holds this pointer until the connection's closed callback, which releases it.
        let box = Unmanaged.passRetained(callbacks)
        let closure = box.toOpaque()
        natsOptions_SetCustomReconnectDelay(opts, { _, attempts, closure in
            guard let closure else { return 1000 }
            return Unmanaged<ConnectionCallbacks>.fromOpaque(closure).takeUnretainedValue().reconnectDelay(attempts: attempts)
        }, closure)
        natsOptions_SetDisconnectedCB(opts, { _, closure in
            guard let closure else { return }
            Unmanaged<ConnectionCallbacks>.fromOpaque(closure).takeUnretainedValue().disconnected()
        }, closure)
        natsOptions_SetReconnectedCB(opts, { nc, closure in
            guard let closure, let nc else { return }
            Unmanaged<ConnectionCallbacks>.fromOpaque(closure).takeUnretainedValue().reconnected(url: connectedURL(nc))
        }, closure)
        natsOptions_SetErrorHandler(opts, { nc, _, status, closure in
            guard let closure, let nc else { return }
            var text: UnsafePointer<CChar>?
            _ = natsConnection_GetLastError(nc, &text)
            let message = text.map { String(cString: $0) } ?? NatsLibrary.statusText(status)
            Unmanaged<ConnectionCallbacks>.fromOpaque(closure).takeUnretainedValue().serverError(message)
        }, closure)
        natsOptions_SetClosedCB(opts, { _, closure in
            guard let closure else { return }
            let box = Unmanaged<ConnectionCallbacks>.fromOpaque(closure)
            box.takeUnretainedValue().closed()
            box.release()  // the last callback libnats makes with this pointer
        }, closure)

        var nc: OpaquePointer?
        let status = natsConnection_Connect(&nc, opts)
        guard status == NATS_OK, let nc else {
            let error = fleetError(what, status)
            // A failed connect never calls the closed callback.
            if let nc { natsConnection_Destroy(nc) }
            box.release()
            throw error
        }
        var jsOptions = jsOptions()
        jsOptions_Init(&jsOptions)
        jsOptions.Wait = milliseconds(options.requestTimeout)
        var ctx: OpaquePointer?
        let jsStatus = natsConnection_JetStream(&ctx, nc, &jsOptions)
        guard jsStatus == NATS_OK, let ctx else {
            let error = fleetError("\(what): JetStream context", jsStatus)
            natsConnection_Destroy(nc)  // closes: the closed callback releases `box`
            throw error
        }
        handle = nc
        js = ctx
        self.callbacks = callbacks
        callbacks.connected(url: connectedURL(nc))
    }

    deinit {
        jsCtx_Destroy(js)
        natsConnection_Destroy(handle)
    }

    /// Closes the connection: pending calls fail with `.notConnected`, no more reconnects.
    /// Safe to call more than once; `deinit` frees what is left.
    public func close() {
        natsConnection_Close(handle)
    }

    /// Whether the connection is up right now.
    public var isConnected: Bool { natsConnection_Status(handle) == NATS_CONN_STATUS_CONNECTED }

    /// The state libnats reports now.
    public var status: FleetConnectionStatus {
        switch natsConnection_Status(handle) {
        case NATS_CONN_STATUS_CONNECTED: return .connected
        case NATS_CONN_STATUS_CONNECTING: return .connecting
        case NATS_CONN_STATUS_RECONNECTING: return .reconnecting
        case NATS_CONN_STATUS_CLOSED: return .closed
        case NATS_CONN_STATUS_DRAINING_SUBS, NATS_CONN_STATUS_DRAINING_PUBS: return .draining
        default: return .disconnected
        }
    }

    /// Status with the disconnection and reconnection counts.
    public var health: FleetConnectionHealth {
        var health = callbacks.snapshot()
        health.status = status
        return health
    }

    /// The largest payload the server accepts (1 MB unless the servers raise `max_payload`).
    public var maxPayload: Int { Int(natsConnection_GetMaxPayload(handle)) }

    /// Round trip to the connected server (a PING), for figures and health checks.
    public func roundTrip() throws(FleetError) -> Duration {
        var rtt: Int64 = 0
        try check(natsConnection_GetRTT(handle, &rtt), "round trip")
        return .nanoseconds(rtt)
    }

    /// Sends what is buffered and waits for the server's answer to a PING.
    public func flush(timeout: Duration = .seconds(2)) throws(FleetError) {
        try check(natsConnection_FlushTimeout(handle, milliseconds(timeout)), "flush")
    }

    // MARK: Publishing

    /// Publishes `payload` to `subject` and waits until the stream that takes the subject has
    /// stored it (on a quorum of its replicas).
    ///
    /// - Parameters:
    ///   - messageID: `Nats-Msg-Id`: a second publish with the same id within the stream's
    ///     duplicate window is not stored again and is acknowledged with `duplicate == true`.
    ///   - expectedLastSequence: the stream's last sequence must be this (0: the stream is empty),
    ///     else `FleetError.wrongLastSequence`.
    ///   - expectedLastSubjectSequence: the same for the last message on `subject` (0: none yet).
    ///   - expectedStream: the stream that must take the subject.
    ///   - timeout: how long to wait for the acknowledgement (the request timeout by default).
    /// - Throws: `.wrongLastSequence`, `.timeout`, `.noResponders` (no stream takes the subject),
    ///   `.notPermitted` (the user may not publish there), `.notConnected`, `.failed`.
    public func publish(subject: String, payload: [UInt8], headers: [String: String] = [:],
                        messageID: String? = nil, expectedLastSequence: UInt64? = nil,
                        expectedLastSubjectSequence: UInt64? = nil, expectedStream: String? = nil,
                        timeout: Duration? = nil) throws(FleetError) -> PublishAck {
        let what = "publish \(subject)"
        try requireConnected(what)
        let started = monotonicNanos()
        var msg: OpaquePointer?
        let created = payload.withUnsafeBytes { raw in
            natsMsg_Create(&msg, subject, nil, raw.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(raw.count))
        }
        guard created == NATS_OK, let msg else { throw fleetError(what, created) }
        defer { natsMsg_Destroy(msg) }
        for (key, value) in headers {
            try check(natsMsgHeader_Set(msg, key, value), "\(what): header \(key)")
        }
        // The expectations go as headers so that 0 ("empty", "no message yet") can be said:
        // libnats's options take 0 as "not set".
        if let expectedLastSequence {
            try check(natsMsgHeader_Set(msg, "Nats-Expected-Last-Sequence", String(expectedLastSequence)), what)
        }
        if let expectedLastSubjectSequence {
            try check(natsMsgHeader_Set(msg, "Nats-Expected-Last-Subject-Sequence", String(expectedLastSubjectSequence)), what)
        }
        var po = jsPubOptions()
        jsPubOptions_Init(&po)
        po.MaxWait = milliseconds(timeout ?? options.requestTimeout)
        let strings = CStringArena()
        po.MsgId = strings.dup(messageID)
        po.ExpectStream = strings.dup(expectedStream)
        var ack: UnsafeMutablePointer<jsPubAck>?
        var code = jsErrCode(0)
        let status = js_PublishMsg(&ack, js, msg, &po, &code)
        guard status == NATS_OK, let ack else {
            throw refine(fleetError(what, status, jetStream: Int(code.rawValue)), subject: subject, since: started)
        }
        defer { jsPubAck_Destroy(ack) }
        return PublishAck(stream: ack.pointee.Stream.map { String(cString: $0) } ?? "",
                          sequence: ack.pointee.Sequence, duplicate: ack.pointee.Duplicate)
    }

    /// Fails at once while the link is down: libnats would hold a new request in its reconnect
    /// buffer until the timeout, and send it later if the link came back (a publish reported as
    /// failed could then be stored after all). Requests already sent when the link drops fail at
    /// once too (`natsOptions_SetFailRequestsOnDisconnect`). Retry publishes with the same
    /// `messageID` so a retry of one that was stored is a duplicate.
    func requireConnected(_ what: @autoclosure () -> String) throws(FleetError) {
        let status = natsConnection_Status(handle)
        guard status != NATS_CONN_STATUS_CONNECTED else { return }
        let code = status == NATS_CONN_STATUS_CLOSED ? NATS_CONNECTION_CLOSED : NATS_CONNECTION_DISCONNECTED
        throw .notConnected(FleetFailure(operation: what(), status: Int32(code.rawValue), statusText: NatsLibrary.statusText(code),
                                         detail: "the connection is \(self.status.rawValue)"))
    }

    /// A timeout after the server reported a permissions violation for `subject` since `since`
    /// is that violation: the server drops a forbidden publish (and so a forbidden request) and
    /// says so on the side.
    func refine(_ error: FleetError, subject: String, since: UInt64) -> FleetError {
        guard case .timeout(var failure) = error, let violation = callbacks.violation(mentioning: subject, since: since) else {
            return error
        }
        failure.detail = violation
        return .notPermitted(failure)
    }

    // MARK: Streams

    /// Makes sure the stream exists with `spec`: creates it, or updates it when it differs. When
    /// the stream exists and this user may not change it (a controller), the stream as it is
    /// counts. Returns the stream's info.
    @discardableResult
    public func ensureStream(_ spec: StreamSpec) throws(FleetError) -> StreamInfo {
        let existing: StreamInfo?
        do {
            existing = try streamInfo(spec.name)
        } catch .notFound {
            existing = nil
        }
        if let existing {
            guard !spec.matches(existing) else { return existing }
            do {
                return try addOrUpdate(spec, update: true)
            } catch {
                switch error {
                case .notPermitted, .timeout: return existing  // may not change it: use it as it is
                default: throw error
                }
            }
        }
        do {
            return try addOrUpdate(spec, update: false)
        } catch .failed(let failure) where failure.jetStreamCode == JetStreamCode.streamNameInUse {
            // Created by someone else meanwhile.
            return try streamInfo(spec.name)
        }
    }

    private func addOrUpdate(_ spec: StreamSpec, update: Bool) throws(FleetError) -> StreamInfo {
        let what = "\(update ? "update" : "create") stream \(spec.name)"
        let started = monotonicNanos()
        let strings = CStringArena()
        var config = jsStreamConfig()
        jsStreamConfig_Init(&config)
        config.Name = strings.dup(spec.name)
        config.Description = strings.dup(spec.description)
        config.Subjects = strings.array(spec.subjects)
        config.SubjectsLen = Int32(spec.subjects.count)
        config.Storage = spec.storage == .file ? js_FileStorage : js_MemoryStorage
        config.Replicas = Int64(spec.replicas)
        if let age = spec.maxAge { config.MaxAge = Int64(age.nanoseconds) }
        if let bytes = spec.maxBytes { config.MaxBytes = bytes }
        if let count = spec.maxMessages { config.MaxMsgs = count }
        if let perSubject = spec.maxMessagesPerSubject { config.MaxMsgsPerSubject = perSubject }
        if let size = spec.maxMessageSize { config.MaxMsgSize = size }
        if let window = spec.duplicateWindow { config.Duplicates = Int64(window.nanoseconds) }
        config.Discard = spec.discardNew ? js_DiscardNew : js_DiscardOld
        config.DenyDelete = spec.denyDelete
        config.DenyPurge = spec.denyPurge
        config.AllowRollup = spec.allowRollup
        config.AllowDirect = spec.allowDirect
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var code = jsErrCode(0)
        let status = update ? js_UpdateStream(&info, js, &config, nil, &code) : js_AddStream(&info, js, &config, nil, &code)
        guard status == NATS_OK, let info else {
            let apiSubject = "$JS.API.STREAM.\(update ? "UPDATE" : "CREATE").\(spec.name)"
            throw refine(fleetError(what, status, jetStream: Int(code.rawValue)), subject: apiSubject, since: started)
        }
        defer { jsStreamInfo_Destroy(info) }
        return StreamInfo(info.pointee)
    }

    /// The stream's configuration summary, state and cluster placement.
    public func streamInfo(_ name: String) throws(FleetError) -> StreamInfo {
        try requireConnected("stream info \(name)")
        let started = monotonicNanos()
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var code = jsErrCode(0)
        let status = js_GetStreamInfo(&info, js, name, nil, &code)
        guard status == NATS_OK, let info else {
            throw refine(fleetError("stream info \(name)", status, jetStream: Int(code.rawValue)),
                         subject: "$JS.API.STREAM.INFO.\(name)", since: started)
        }
        defer { jsStreamInfo_Destroy(info) }
        return StreamInfo(info.pointee)
    }

    /// Deletes the stream and all it holds (the office's tool; tests).
    public func deleteStream(_ name: String) throws(FleetError) {
        var code = jsErrCode(0)
        let status = js_DeleteStream(js, name, nil, &code)
        if status != NATS_OK { throw fleetError("delete stream \(name)", status, jetStream: Int(code.rawValue)) }
    }

    /// Removes messages below `keepFromSequence` (all when nil) on `subject` (all subjects when
    /// nil): what a snapshot makes unnecessary. Fails with `.failed` on a stream that denies
    /// purges.
    public func purge(stream: String, subject: String? = nil, keepFromSequence: UInt64? = nil) throws(FleetError) {
        let strings = CStringArena()
        var o = jsOptions()
        jsOptions_Init(&o)
        o.Stream.Purge.Subject = strings.dup(subject)
        if let keepFromSequence { o.Stream.Purge.Sequence = keepFromSequence }
        var code = jsErrCode(0)
        let status = js_PurgeStream(js, stream, &o, &code)
        if status != NATS_OK { throw fleetError("purge stream \(stream)", status, jetStream: Int(code.rawValue)) }
    }

    /// The message at `sequence`, or nil when there is none (never stored, deleted or purged).
    public func message(stream: String, sequence: UInt64) throws(FleetError) -> StreamMessage? {
        var msg: OpaquePointer?
        var code = jsErrCode(0)
        let status = js_GetMsg(&msg, js, stream, sequence, nil, &code)
        return try gotMessage(msg, status, code, "get message \(stream) #\(sequence)")
    }

    /// The last message on `subject` in `stream`, or nil when the subject has none.
    public func lastMessage(stream: String, subject: String) throws(FleetError) -> StreamMessage? {
        var msg: OpaquePointer?
        var code = jsErrCode(0)
        let status = js_GetLastMsg(&msg, js, stream, subject, nil, &code)
        return try gotMessage(msg, status, code, "get last message \(stream) \(subject)")
    }

    private func gotMessage(_ msg: OpaquePointer?, _ status: natsStatus, _ code: jsErrCode, _ what: String) throws(FleetError) -> StreamMessage? {
        guard status == NATS_OK, let msg else {
            let error = fleetError(what, status, jetStream: Int(code.rawValue))
            if case .notFound = error { return nil }
            throw error
        }
        defer { natsMsg_Destroy(msg) }
        return StreamMessage(storedMessage: msg)
    }

    /// Opens a reader of `stream` from `fromSequence` on, in order, of the messages whose subject
    /// matches `filter` (all when nil). See `StreamReader`.
    public func read(stream: String, filter: String? = nil, fromSequence: UInt64 = 1,
                     options: StreamReaderOptions = StreamReaderOptions()) -> StreamReader {
        StreamReader(connection: self, stream: stream, filter: filter, fromSequence: fromSequence, options: options)
    }
}

/// The URL the connection uses now.
private func connectedURL(_ nc: OpaquePointer) -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard natsConnection_GetConnectedUrl(nc, &buffer, buffer.count) == NATS_OK else { return "" }
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}

/// The password: the file's first line (never logged).
private func readPasswordFile(_ path: String) throws(FleetError) -> String {
    let what = "read password file \(path)"
    let text: String
    do {
        text = try FileReader.text(path)
    } catch {
        throw .invalidArgument(FleetFailure(operation: what, status: 0, statusText: error.reason, detail: nil))
    }
    var line = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
    if line.hasSuffix("\r") { line.removeLast() }
    guard !line.isEmpty else {
        throw .invalidArgument(FleetFailure(operation: what, status: 0, statusText: "invalid argument", detail: "the first line is empty"))
    }
    return line
}

/// What libnats's callback thread reports, kept for `health` and for telling a forbidden publish
/// from a slow one.
final class ConnectionCallbacks: Sendable {
    private struct State {
        var health = FleetConnectionHealth(status: .connecting, connectedURL: nil, disconnects: 0, reconnects: 0,
                                           lastDisconnectNanos: nil)
        /// Recent permissions violations: (CLOCK_MONOTONIC nanoseconds, server text), newest last.
        var violations: [(UInt64, String)] = []
    }
    private let state = Mutex(State())
    private let onEvent: (@Sendable (FleetConnectionEvent) -> Void)?
    private let baseWaitMs: Int64
    private let maxWaitMs: Int64

    init(onEvent: (@Sendable (FleetConnectionEvent) -> Void)?, baseWaitMs: Int64, maxWaitMs: Int64) {
        self.onEvent = onEvent
        self.baseWaitMs = baseWaitMs
        self.maxWaitMs = max(maxWaitMs, baseWaitMs)
    }

    func snapshot() -> FleetConnectionHealth { state.withLock { $0.health } }

    /// Milliseconds before the next round of reconnection attempts: doubling, bounded.
    func reconnectDelay(attempts: Int32) -> Int64 {
        let shift = min(max(Int64(attempts) - 1, 0), 20)
        return min(baseWaitMs << shift, maxWaitMs)
    }

    func connected(url: String) {
        state.withLock {
            $0.health.status = .connected
            $0.health.connectedURL = url
        }
    }

    func disconnected() {
        state.withLock {
            $0.health.status = .reconnecting
            $0.health.connectedURL = nil
            $0.health.disconnects += 1
            $0.health.lastDisconnectNanos = monotonicNanos()
        }
        onEvent?(.disconnected)
    }

    func reconnected(url: String) {
        state.withLock {
            $0.health.status = .connected
            $0.health.connectedURL = url
            $0.health.reconnects += 1
        }
        onEvent?(.reconnected(url: url))
    }

    func closed() {
        state.withLock { $0.health.status = .closed }
        onEvent?(.closed)
    }

    func serverError(_ text: String) {
        if text.lowercased().contains("permissions violation") {
            state.withLock {
                $0.violations.append((monotonicNanos(), text))
                if $0.violations.count > 64 { $0.violations.removeFirst($0.violations.count - 64) }
            }
        }
        onEvent?(.serverError(text))
    }

    /// The newest permissions violation since `since` whose text names `subject` (quoted, as the
    /// server writes it).
    func violation(mentioning subject: String, since: UInt64) -> String? {
        state.withLock { s in
            s.violations.last { $0.0 >= since && $0.1.contains("\"\(subject)\"") }?.1
        }
    }
}
