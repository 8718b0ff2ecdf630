import AccessCore

/// accessd's answer to a `ControlRequest`. On the wire: `"ok": true` and the case's fields, or
/// `"ok": false` and `"error"` (thrown by the client as `ControlProtocolError.refused`).
public enum ControlReply: Sendable, Equatable {
    /// To `status`.
    case status(ControlStatus)
    /// To `metrics`: the Prometheus text, as `text`.
    case metrics(text: String)
    /// To `door`, `fence` and `reader` (a reader's `alarm`).
    case portal(PortalState)
    /// To `apb.reset`: whether the person had any anti-passback state to clear (`cleared`).
    case antiPassbackReset(cleared: Bool)
    /// To `sim.swipe`, `sim.keys`, `sim.qr` and `sim.plate`: the decision taken, if any (`decision`, or null).
    case decision(ControlDecision?)
    /// To `sim.outputs`: every output line and whether it is driven (`outputs`, name → 0|1, sorted).
    case outputs([String: Bool])
    /// To `sim.input`, `sim.loop`, `sim.fence` and `sim.device`: done, nothing more to say.
    case done

    /// The reply's fields without `ok`.
    public var fields: [(String, JSON)] {
        switch self {
        case .status(let status): status.fields
        case .metrics(let text): [("text", .string(text))]
        case .portal(let state): state.fields
        case .antiPassbackReset(let cleared): [("cleared", .bool(cleared))]
        case .decision(let decision): [("decision", decision?.json ?? .null)]
        case .outputs(let outputs): [("outputs", .object(outputs.keys.sorted().map { ($0, JSON.int(outputs[$0] == true ? 1 : 0)) }))]
        case .done: []
        }
    }

    /// The reply as it goes on the wire.
    public var json: JSON { .object([("ok", true)] + fields) }

    /// A refusal as it goes on the wire.
    public static func failure(_ message: String) -> JSON {
        .object([("ok", false), ("error", .string(message))])
    }

    /// Reads the reply to a request of kind `op`; a refusal is thrown as `.refused(message)`.
    public init(json: JSON, for op: ControlRequest.Op) throws(ControlProtocolError) {
        guard json["ok"] == .bool(true) else {
            if case .string(let message)? = json["error"] { throw .refused(message) }
            throw .refused("accessd refused the request")
        }
        switch op {
        case .status:
            self = .status(try ControlStatus(fields: json))
        case .metrics:
            guard let text = json["text"]?.stringValue else { throw .malformed("accessd sent no metrics") }
            self = .metrics(text: text)
        case .door, .fence, .reader:
            self = .portal(PortalState(fields: json))
        case .antiPassbackReset:
            self = .antiPassbackReset(cleared: Fields(json).optionalBool("cleared") ?? false)
        case .simSwipe, .simKeys, .simQR, .simPlate:
            guard let decision = json["decision"] else { throw .malformed("\"decision\" is missing") }
            self = .decision(decision == .null ? nil : try ControlDecision(json: decision))
        case .simOutputs:
            guard case .object(let pairs)? = json["outputs"] else { throw .malformed("\"outputs\" must be an object") }
            self = .outputs(Dictionary(pairs.map { ($0.0, $0.1 == .int(1)) }, uniquingKeysWith: { $1 }))
        case .simInput, .simLoop, .simFence, .simDevice:
            self = .done
        }
    }
}
