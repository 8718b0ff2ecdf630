import AccessCore

/// The reply to `door` and `fence`: the state of what was commanded, only the fields that apply
/// (`released` for a door, `locked` for a barrier lane, `armed` and `alarm` for a fence zone).
public struct PortalState: Sendable, Equatable {
    /// A door's lock is released.
    public var released: Bool?
    /// A barrier lane is held in place by an operator.
    public var locked: Bool?
    /// A fence zone (or, for `reset-alarm` through `door`, the zone) is armed.
    public var armed: Bool?
    /// A fence zone has an alarm latched.
    public var alarm: Bool?
    /// A fence reset the host has not confirmed yet.
    public var pending: Bool?

    public init(released: Bool? = nil, locked: Bool? = nil, armed: Bool? = nil, alarm: Bool? = nil, pending: Bool? = nil) {
        self.released = released
        self.locked = locked
        self.armed = armed
        self.alarm = alarm
        self.pending = pending
    }

    /// From the controller's answer, keyed by those field names.
    public init(_ state: [String: Bool]) {
        self.init(released: state["released"], locked: state["locked"], armed: state["armed"], alarm: state["alarm"], pending: state["pending"])
    }

    var fields: [(String, JSON)] {
        [("released", released), ("locked", locked), ("armed", armed), ("alarm", alarm), ("pending", pending)].compactMap { key, value in
            value.map { (key, JSON.bool($0)) }
        }
    }

    init(fields json: JSON) {
        let f = Fields(json)
        self.init(released: f.optionalBool("released"), locked: f.optionalBool("locked"), armed: f.optionalBool("armed"), alarm: f.optionalBool("alarm"),
                  pending: f.optionalBool("pending"))
    }
}
