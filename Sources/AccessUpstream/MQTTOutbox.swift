/// Which messages are out and which are acknowledged, per lane, and so how far the durable
/// cursor may move. A value: the engine feeds it what it published and what was acknowledged.
struct MQTTOutbox: Equatable, Sendable {
    enum Lane: Equatable, Sendable { case events, alarms }

    struct InFlight: Equatable, Sendable {
        var mid: Int32
        var serial: Int64
    }

    struct LaneState: Equatable, Sendable {
        /// Every message of the lane up to this serial has been published on the current
        /// connection, or acknowledged before it.
        var published: Int64
        /// Published, not yet acknowledged, in increasing serial order.
        var inflight: [InFlight] = []
        /// Every message of the lane up to this serial is acknowledged.
        var acked: Int64 { inflight.first.map { $0.serial - 1 } ?? published }
    }

    private(set) var events: LaneState
    private(set) var alarms: LaneState

    init(cursor: Int64) {
        events = LaneState(published: cursor)
        alarms = LaneState(published: cursor)
    }

    /// Every event up to here is acknowledged on `events`, and on `alarms` if it is an alarm.
    var cursor: Int64 { min(events.acked, alarms.acked) }

    subscript(lane: Lane) -> LaneState { lane == .events ? events : alarms }

    /// `serial` was published in `lane` as message `mid`; serials rise within a lane.
    mutating func published(_ lane: Lane, serial: Int64, mid: Int32) {
        modify(lane) { state in
            assert(serial > state.published, "lane \(lane) published \(serial) after \(state.published)")
            state.inflight.append(InFlight(mid: mid, serial: serial))
            state.published = serial
        }
    }

    /// The lane holds nothing more up to `serial` (the log was read through it).
    mutating func scanned(_ lane: Lane, through serial: Int64) {
        modify(lane) { $0.published = max($0.published, serial) }
    }

    /// A PUBACK; returns the lane of the message, nil when it is not an event message.
    @discardableResult
    mutating func acknowledged(mid: Int32) -> Lane? {
        if let i = events.inflight.firstIndex(where: { $0.mid == mid }) {
            events.inflight.remove(at: i)
            return .events
        }
        if let i = alarms.inflight.firstIndex(where: { $0.mid == mid }) {
            alarms.inflight.remove(at: i)
            return .alarms
        }
        return nil
    }

    /// The connection is gone with whatever it had in flight: each lane starts again after its
    /// acknowledged cursor on the next one.
    mutating func connectionLost() {
        events = LaneState(published: events.acked)
        alarms = LaneState(published: alarms.acked)
    }

    private mutating func modify(_ lane: Lane, _ body: (inout LaneState) -> Void) {
        switch lane {
        case .events: body(&events)
        case .alarms: body(&alarms)
        }
    }
}
