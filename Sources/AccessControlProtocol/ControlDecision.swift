import AccessCore

/// A decision as the control socket reports it (`sim.swipe`, `sim.keys`, `sim.qr`, `sim.plate`).
public struct ControlDecision: Sendable, Equatable {
    public var granted: Bool
    /// Why: the first check that failed, or `granted`.
    public var reason: Reason
    /// The credential's owner and their house, when known.
    public var personID: String?
    public var houseID: String?
    /// The portal the reader or lane belongs to.
    public var portal: String

    public init(granted: Bool, reason: Reason, personID: String?, houseID: String?, portal: String) {
        self.granted = granted
        self.reason = reason
        self.personID = personID
        self.houseID = houseID
        self.portal = portal
    }

    /// The parts of a controller's decision the socket carries.
    public init(_ decision: Decision) {
        self.init(granted: decision.granted, reason: decision.reason, personID: decision.personID,
                  houseID: decision.houseID, portal: decision.portal)
    }

    var json: JSON {
        .object([
            ("granted", .bool(granted)), ("reason", .string(reason.rawValue)), ("person_id", .string(personID)),
            ("house_id", .string(houseID)), ("portal", .string(portal)),
        ])
    }

    init(json: JSON) throws(ControlProtocolError) {
        let f = Fields(json)
        let text = try f.string("reason")
        guard let reason = Reason(rawValue: text) else { throw .malformed("unknown decision reason \"\(text)\"") }
        self.init(granted: try f.bool("granted"), reason: reason, personID: json["person_id"]?.stringValue,
                  houseID: json["house_id"]?.stringValue, portal: try f.string("portal"))
    }
}
