// The thin wrapper over libmosquitto 2.0 (Debian 12): the one file that imports CMosquitto.
// A connection is owned by one thread, which also watches its socket (poll) and runs its
// read/write/keepalive steps, so callbacks arrive on that thread, synchronously, inside
// `read()`/`write()`/`misc()`; nothing here touches Swift's cooperative pool.
import CMosquitto
import Glibc

/// A failed libmosquitto (or system) call: the operation, libmosquitto's code and, for
/// `MOSQ_ERR_ERRNO`, the errno. Never carries credentials or message payloads.
public struct MQTTError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What was being done, e.g. `connect broker.example:8883` or `read password_file /etc/accessd/mqtt.pw`.
    public var operation: String
    /// libmosquitto's `MOSQ_ERR_*` code, or for a refused connection the CONNACK return code
    /// (see `refused`).
    public var code: Int32
    /// errno, when the failure was a system call's.
    public var errno: Int32?
    /// The broker answered CONNECT with a refusal (`code` is the CONNACK return code).
    public var refused: Bool
    /// What was wrong, when neither code says it (e.g. an empty password file).
    public var detail: String?

    public init(operation: String, code: Int32, errno: Int32? = nil, refused: Bool = false, detail: String? = nil) {
        self.operation = operation
        self.code = code
        self.errno = errno
        self.refused = refused
        self.detail = detail
    }

    /// An error from a system call (no libmosquitto code of its own).
    static func system(_ operation: String, errno: Int32) -> MQTTError {
        MQTTError(operation: operation, code: MOSQ_ERR_ERRNO.rawValue, errno: errno)
    }

    public var description: String {
        if let detail { return "\(operation): \(detail)" }
        if refused {
            return "\(operation): the broker refused the connection: \(String(cString: mosquitto_connack_string(code))) (CONNACK \(code))"
        }
        if let errno, code == MOSQ_ERR_ERRNO.rawValue {
            return "\(operation): \(String(cString: strerror(errno))) (errno \(errno))"
        }
        return "\(operation): \(String(cString: mosquitto_strerror(code))) (mosquitto error \(code))"
    }
}

/// What libmosquitto reports through its callbacks.
enum MQTTClientEvent {
    /// CONNACK: 0 accepted, otherwise the refusal code.
    case connected(code: Int32)
    /// The connection ended; 0 after our own DISCONNECT.
    case disconnected(code: Int32)
    /// PUBACK of a QoS 1 message (or the send of a QoS 0 one).
    case published(mid: Int32)
    /// SUBACK.
    case subscribed(mid: Int32)
    case message(topic: String, payload: [UInt8], retain: Bool)
}

/// One libmosquitto client (`struct mosquitto`) and its callbacks. Not thread-safe: created,
/// used and destroyed by one thread.
final class MQTTConnection {
    /// libmosquitto's one-time global set-up (thread-safe through Swift's lazy global init).
    private static let libraryReady: Int32 = mosquitto_lib_init()

    /// Receives the callbacks; `Unmanaged` pointer to it is the `userdata` of the client.
    private final class Callbacks {
        let handler: (MQTTClientEvent) -> Void
        init(_ handler: @escaping (MQTTClientEvent) -> Void) { self.handler = handler }
    }

    private let handle: OpaquePointer
    private let callbacks: Callbacks
    private let unmanaged: Unmanaged<Callbacks>
    let clientID: String

    /// - Parameters:
    ///   - cleanSession: false for a persistent session (the broker keeps subscriptions and
    ///     queued QoS 1 messages of this client id across connections).
    ///   - handler: called on the owning thread, inside `read()`, `write()` or `misc()`.
    init(clientID: String, cleanSession: Bool, handler: @escaping (MQTTClientEvent) -> Void) throws(MQTTError) {
        _ = Self.libraryReady
        let callbacks = Callbacks(handler)
        let unmanaged = Unmanaged.passRetained(callbacks)
        guard let handle = mosquitto_new(clientID, cleanSession, unmanaged.toOpaque()) else {
            let code = Glibc.errno
            unmanaged.release()
            // mosquitto_new sets errno: ENOMEM or EINVAL.
            throw .system("mosquitto_new (client id of \(clientID.utf8.count) bytes)", errno: code)
        }
        self.handle = handle
        self.callbacks = callbacks
        self.unmanaged = unmanaged
        self.clientID = clientID

        mosquitto_connect_callback_set(handle) { _, userdata, rc in
            MQTTConnection.deliver(userdata, .connected(code: rc))
        }
        mosquitto_disconnect_callback_set(handle) { _, userdata, rc in
            MQTTConnection.deliver(userdata, .disconnected(code: rc))
        }
        mosquitto_publish_callback_set(handle) { _, userdata, mid in
            MQTTConnection.deliver(userdata, .published(mid: mid))
        }
        mosquitto_subscribe_callback_set(handle) { _, userdata, mid, _, _ in
            MQTTConnection.deliver(userdata, .subscribed(mid: mid))
        }
        mosquitto_message_callback_set(handle) { _, userdata, message in
            guard let message else { return }
            let m = message.pointee
            let topic = m.topic.map { String(cString: $0) } ?? ""
            var payload: [UInt8] = []
            if let p = m.payload, m.payloadlen > 0 {
                payload = Array(UnsafeRawBufferPointer(start: p, count: Int(m.payloadlen)))
            }
            MQTTConnection.deliver(userdata, .message(topic: topic, payload: payload, retain: m.retain))
        }
        // Small messages go out at once rather than waiting for Nagle.
        _ = mosquitto_int_option(handle, MOSQ_OPT_TCP_NODELAY, 1)
    }

    private static func deliver(_ userdata: UnsafeMutableRawPointer?, _ event: MQTTClientEvent) {
        guard let userdata else { return }
        Unmanaged<Callbacks>.fromOpaque(userdata).takeUnretainedValue().handler(event)
    }

    deinit {
        mosquitto_destroy(handle)  // closes the socket without DISCONNECT: the broker sends the will
        unmanaged.release()
    }

    /// Throws when `rc` is not `MOSQ_ERR_SUCCESS`, reading errno at once for `MOSQ_ERR_ERRNO`.
    private func check(_ rc: Int32, _ operation: @autoclosure () -> String) throws(MQTTError) {
        guard rc != MOSQ_ERR_SUCCESS.rawValue else { return }
        let code = Glibc.errno
        throw MQTTError(operation: operation(), code: rc, errno: rc == MOSQ_ERR_ERRNO.rawValue ? code : nil)
    }

    // MARK: Set-up (before connect)

    /// The message the broker publishes for us if the connection ends without DISCONNECT.
    func setWill(topic: String, payload: [UInt8], qos: Int32, retain: Bool) throws(MQTTError) {
        try check(mosquitto_will_set(handle, topic, Int32(payload.count), payload, qos, retain), "will_set \(topic)")
    }

    func setCredentials(username: String, password: String?) throws(MQTTError) {
        try check(mosquitto_username_pw_set(handle, username, password), "username_pw_set")
    }

    /// TLS, the broker's certificate checked against `caFile` and its host name; with
    /// `certificate` and `key`, this client's own certificate for a broker that requires one.
    func setTLS(caFile: String, certificate: String? = nil, key: String? = nil) throws(MQTTError) {
        try check(mosquitto_tls_set(handle, caFile, nil, certificate, key, nil), "tls_set \(caFile)\(certificate.map { " " + $0 } ?? "")")
    }

    /// The most QoS 1 messages libmosquitto keeps unacknowledged on the wire (it queues the rest).
    func setMaxInflight(_ count: Int) throws(MQTTError) {
        try check(mosquitto_max_inflight_messages_set(handle, UInt32(count)), "max_inflight_messages_set")
    }

    // MARK: Connection

    /// Starts the TCP (and TLS) connection without waiting for it (only the name lookup
    /// blocks) and queues CONNECT, written once the socket is writable. CONNACK arrives later
    /// as `.connected` from `read()`.
    func connect(host: String, port: Int, keepalive: Int) throws(MQTTError) {
        try check(mosquitto_connect_async(handle, host, Int32(port), Int32(keepalive)), "connect \(host):\(port)")
    }

    /// Sends DISCONNECT (the broker then drops the will).
    func disconnect() {
        _ = mosquitto_disconnect(handle)
    }

    /// Queues a message (written at once when the socket takes it) and returns its message id.
    func publish(topic: String, payload: [UInt8], qos: Int32, retain: Bool) throws(MQTTError) -> Int32 {
        var mid: Int32 = 0
        let rc = payload.withUnsafeBytes { bytes in
            mosquitto_publish(handle, &mid, topic, Int32(bytes.count), bytes.baseAddress, qos, retain)
        }
        try check(rc, "publish \(topic)")
        return mid
    }

    func subscribe(topic: String, qos: Int32) throws(MQTTError) -> Int32 {
        var mid: Int32 = 0
        try check(mosquitto_subscribe(handle, &mid, topic, qos), "subscribe \(topic)")
        return mid
    }

    // MARK: Driving the socket from the owner's own poll loop

    /// The connection's socket, or -1.
    var socket: Int32 { mosquitto_socket(handle) }

    /// Whether output is waiting for the socket to become writable.
    var wantsWrite: Bool { mosquitto_want_write(handle) }

    /// Reads and handles what arrived (callbacks run here).
    func read() throws(MQTTError) { try check(mosquitto_loop_read(handle, 1), "read") }

    /// Writes queued output.
    func write() throws(MQTTError) { try check(mosquitto_loop_write(handle, 1), "write") }

    /// Keepalive: PINGREQ when due, and the connection dropped when PINGRESP is late.
    func misc() throws(MQTTError) { try check(mosquitto_loop_misc(handle), "keepalive") }

    /// The description of a libmosquitto code (for `.disconnected`).
    static func describe(_ code: Int32) -> String { String(cString: mosquitto_strerror(code)) }

    /// The description of a CONNACK return code.
    static func describeConnack(_ code: Int32) -> String { String(cString: mosquitto_connack_string(code)) }
}
