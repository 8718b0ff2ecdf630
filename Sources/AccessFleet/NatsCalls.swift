// The glue to libnats 3.4 (Debian 12's libnats3.4): status codes to typed errors, C strings that
// live for the length of a call, the library's one-time start. Every file of this module that calls
// libnats uses these.
import CNats
import Glibc

enum NatsLibrary {
    /// `nats_Open` once per process (thread-safe through Swift's lazy global initialisation).
    /// Returns the status as its raw value (0 when ready).
    private static let opened: UInt32 = nats_Open(-1).rawValue

    static func open() throws(FleetError) {
        if opened != NATS_OK.rawValue {
            throw FleetError.failed(FleetFailure(operation: "start libnats", status: Int32(opened),
                                                 statusText: statusText(natsStatus(opened))))
        }
    }

    static func statusText(_ status: natsStatus) -> String {
        natsStatus_GetText(status).map { String(cString: $0) } ?? "status \(status.rawValue)"
    }

    /// This thread's last libnats error text (libnats keeps it per thread).
    static func lastErrorText() -> String? {
        var status = NATS_OK
        guard let text = nats_GetLastError(&status) else { return nil }
        let string = String(cString: text)
        return string.isEmpty ? nil : string
    }
}

/// JetStream API error codes this module tells apart.
enum JetStreamCode {
    static let wrongLastSequence = 10071
    static let streamNotFound = 10059
    static let consumerNotFound = 10014
    static let noMessageFound = 10037
    static let streamNameInUse = 10058
    static let bucketNotFound = 10059
}

/// The error for a libnats status (and JetStream code), read right after the failed call on the
/// same thread so the last-error text is the call's own.
func fleetError(_ operation: @autoclosure () -> String, _ status: natsStatus, jetStream code: Int = 0,
                detail: String? = nil, conflictIsRevision: Bool = false) -> FleetError {
    let text = detail ?? NatsLibrary.lastErrorText()
    let failure = FleetFailure(operation: operation(), status: Int32(status.rawValue),
                               statusText: NatsLibrary.statusText(status),
                               jetStreamCode: code == 0 ? nil : code, detail: text)
    if code == JetStreamCode.wrongLastSequence {
        return conflictIsRevision ? .revisionConflict(failure) : .wrongLastSequence(failure)
    }
    if code == JetStreamCode.streamNotFound || code == JetStreamCode.consumerNotFound || code == JetStreamCode.noMessageFound {
        return .notFound(failure)
    }
    let lower = (text ?? "").lowercased()
    switch status {
    case NATS_TIMEOUT: return .timeout(failure)
    case NATS_NO_RESPONDERS: return .noResponders(failure)
    case NATS_NOT_FOUND: return .notFound(failure)
    case NATS_NOT_PERMITTED: return .notPermitted(failure)
    case NATS_CONNECTION_AUTH_FAILED: return .authenticationFailed(failure)
    case NATS_SSL_ERROR, NATS_SECURE_CONNECTION_WANTED, NATS_SECURE_CONNECTION_REQUIRED: return .tls(failure)
    case NATS_NO_SERVER, NATS_CONNECTION_CLOSED, NATS_CONNECTION_DISCONNECTED, NATS_NOT_YET_CONNECTED, NATS_IO_ERROR,
         NATS_STALE_CONNECTION:
        // libnats reports a refused user or a failed handshake through the server it could not
        // use; the text says which.
        if lower.contains("authorization") || lower.contains("authentication") { return .authenticationFailed(failure) }
        if lower.contains("ssl") || lower.contains("tls") || lower.contains("certificate") { return .tls(failure) }
        return .notConnected(failure)
    case NATS_INVALID_ARG, NATS_INVALID_SUBJECT, NATS_ADDRESS_MISSING, NATS_INVALID_TIMEOUT:
        return .invalidArgument(failure)
    default:
        if lower.contains("permissions violation") { return .notPermitted(failure) }
        if lower.contains("authorization violation") { return .authenticationFailed(failure) }
        return .failed(failure)
    }
}

/// Throws unless `status` is `NATS_OK`.
func check(_ status: natsStatus, _ operation: @autoclosure () -> String) throws(FleetError) {
    if status != NATS_OK { throw fleetError(operation(), status) }
}

/// C copies of Swift strings that stay valid until the arena goes (libnats's configuration
/// structs hold `const char *` fields that must outlive the call that reads them).
final class CStringArena {
    private var owned: [UnsafeMutablePointer<CChar>] = []

    func dup(_ string: String) -> UnsafePointer<CChar> {
        let copy = strdup(string)!  // strdup fails only without memory
        owned.append(copy)
        return UnsafePointer(copy)
    }

    func dup(_ string: String?) -> UnsafePointer<CChar>? {
        string.map { dup($0) }
    }

    /// A C array of C strings (`const char **`), owned by the arena.
    func array(_ strings: [String]) -> UnsafeMutablePointer<UnsafePointer<CChar>?> {
        let array = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: max(strings.count, 1))
        for (i, s) in strings.enumerated() { array[i] = dup(s) }
        arrays.append(UnsafeMutableRawPointer(array))
        return array
    }
    private var arrays: [UnsafeMutableRawPointer] = []

    deinit {
        owned.forEach { free($0) }
        arrays.forEach { $0.deallocate() }
    }
}

/// Milliseconds for libnats from a Duration (at least 1).
func milliseconds(_ duration: Duration) -> Int64 {
    let parts = duration.components
    let ms = parts.seconds * 1000 + parts.attoseconds / 1_000_000_000_000_000
    return max(ms, 1)
}

/// A message's headers (keys in libnats's order; a key with several values keeps the first).
func readHeaders(_ msg: OpaquePointer) -> [String: String] {
    var keys: UnsafeMutablePointer<UnsafePointer<CChar>?>?
    var count: Int32 = 0
    guard natsMsgHeader_Keys(msg, &keys, &count) == NATS_OK, let keys else { return [:] }
    defer { free(keys) }
    var headers: [String: String] = [:]
    for i in 0..<Int(count) {
        guard let key = keys[i] else { continue }
        var value: UnsafePointer<CChar>?
        if natsMsgHeader_Get(msg, key, &value) == NATS_OK, let value {
            headers[String(cString: key)] = String(cString: value)
        }
    }
    return headers
}

/// A message's payload.
func readPayload(_ msg: OpaquePointer) -> [UInt8] {
    let length = Int(natsMsg_GetDataLength(msg))
    guard length > 0, let data = natsMsg_GetData(msg) else { return [] }
    return data.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
}
