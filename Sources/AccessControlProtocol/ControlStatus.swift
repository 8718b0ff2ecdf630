import AccessCore

/// The reply to `status`: counters, swipe → relay latency, and every door, lane and fence zone.
public struct ControlStatus: Sendable, Equatable {
    /// Swipe → relay latency over the recent grants, in microseconds.
    public struct Latency: Sendable, Equatable {
        /// Grants timed (those that moved a relay).
        public var count: Int
        public var p50: Int
        public var p99: Int
        public var max: Int
        /// Every figure in microseconds.
        public init(count: Int, p50: Int, p99: Int, max: Int) {
            self.count = count
            self.p50 = p50
            self.p99 = p99
            self.max = max
        }
    }

    /// A door's mode and lock.
    public struct Door: Sendable, Equatable {
        public var id: String
        public var mode: PortalMode
        /// The lock is released (the door may open).
        public var released: Bool
        /// A fire release is latched until reset.
        public var fire: Bool
        public init(id: String, mode: PortalMode, released: Bool, fire: Bool) {
            self.id = id
            self.mode = mode
            self.released = released
            self.fire = fire
        }
    }

    /// A barrier lane's arm, loop and lock.
    public struct Lane: Sendable, Equatable {
        public var portal: String
        /// The arm, as the gate last reported it.
        public var position: BarrierPosition
        /// A vehicle is on the lane's loop.
        public var loopOccupied: Bool
        /// Held in place by an operator (always-open or always-closed).
        public var locked: Bool
        public init(portal: String, position: BarrierPosition, loopOccupied: Bool, locked: Bool) {
            self.portal = portal
            self.position = position
            self.loopOccupied = loopOccupied
            self.locked = locked
        }
    }

    /// A fence zone's arming and latched alarms.
    public struct FenceZone: Sendable, Equatable {
        public var portal: String
        public var armed: Bool
        /// The alarm kinds latched until reset, sorted.
        public var latched: [String]
        public init(portal: String, armed: Bool, latched: [String]) {
            self.portal = portal
            self.armed = armed
            self.latched = latched
        }
    }

    /// A reader with a tamper input, and whether its tamper alarm is latched.
    public struct Reader: Sendable, Equatable {
        public var reader: String
        /// The portal it reads for, if any.
        public var portal: String?
        public var tamper: Bool
        public init(reader: String, portal: String?, tamper: Bool) {
            self.reader = reader
            self.portal = portal
            self.tamper = tamper
        }
    }

    /// Cars counted inside under a parking key (`house:ID`, `visitors`), and its spaces.
    public struct Parking: Sendable, Equatable {
        public var key: String
        public var inside: Int
        /// Nil: no limit.
        public var spaces: Int?
        public init(key: String, inside: Int, spaces: Int?) {
            self.key = key
            self.inside = inside
            self.spaces = spaces
        }
    }

    /// The controller's place in the fleet (`[fleet]` configured).
    public struct Fleet: Sendable, Equatable {
        public var community: String
        public var connected: Bool
        /// The community sequence applied here, and how far the stream is ahead of it.
        public var applied: Int
        public var lag: Int
        /// Why the controller cannot apply the next change set, if it cannot.
        public var stuck: String?
        /// Events shipped to the community's events stream: every one up to `eventsAcked` is
        /// stored there; `eventsBacklog` durable ones wait here.
        public var eventsAcked: Int
        public var eventsBacklog: Int
        public init(community: String, connected: Bool, applied: Int, lag: Int, stuck: String?, eventsAcked: Int = 0, eventsBacklog: Int = 0) {
            self.community = community
            self.connected = connected
            self.applied = applied
            self.lag = lag
            self.stuck = stuck
            self.eventsAcked = eventsAcked
            self.eventsBacklog = eventsBacklog
        }

        public var json: JSON {
            .object([("community", .string(community)), ("connected", .bool(connected)), ("applied", .int(applied)),
                     ("lag", .int(lag)), ("stuck", .string(stuck)), ("events_acked", .int(eventsAcked)), ("events_backlog", .int(eventsBacklog))])
        }
    }

    /// The controller's id.
    public var controller: String
    /// Decisions taken since start, and how many granted.
    public var decisions: Int
    public var granted: Int
    /// Wiegand frames refused as garbled, and GPIO edge overruns.
    public var garbledFrames: Int
    public var gpioOverruns: Int
    /// Event-log writes that failed and were retried.
    public var eventStoreFailures: Int
    public var swipeToRelay: Latency
    public var doors: [Door]
    public var lanes: [Lane]
    public var fenceZones: [FenceZone]
    /// Readers with a tamper input.
    public var readers: [Reader]
    /// Parking keys with cars inside or a limit, sorted by key.
    public var parking: [Parking]
    /// Nil without `[fleet]`.
    public var fleet: Fleet?

    public init(controller: String, decisions: Int, granted: Int, garbledFrames: Int, gpioOverruns: Int, eventStoreFailures: Int,
                swipeToRelay: Latency, doors: [Door], lanes: [Lane], fenceZones: [FenceZone], readers: [Reader] = [],
                parking: [Parking] = [], fleet: Fleet? = nil) {
        self.readers = readers
        self.parking = parking
        self.controller = controller
        self.decisions = decisions
        self.granted = granted
        self.garbledFrames = garbledFrames
        self.gpioOverruns = gpioOverruns
        self.eventStoreFailures = eventStoreFailures
        self.swipeToRelay = swipeToRelay
        self.doors = doors
        self.lanes = lanes
        self.fenceZones = fenceZones
        self.fleet = fleet
    }

    var fields: [(String, JSON)] {
        [
            ("controller", .string(controller)),
            ("decisions", .int(decisions)), ("granted", .int(granted)),
            ("garbled_frames", .int(garbledFrames)), ("gpio_overruns", .int(gpioOverruns)),
            ("event_store_failures", .int(eventStoreFailures)),
            ("swipe_to_relay_micros", .object([
                ("count", .int(swipeToRelay.count)), ("p50", .int(swipeToRelay.p50)),
                ("p99", .int(swipeToRelay.p99)), ("max", .int(swipeToRelay.max)),
            ])),
            ("doors", .array(doors.map { d in
                .object([("id", .string(d.id)), ("mode", .string(d.mode.rawValue)), ("released", .bool(d.released)), ("fire", .bool(d.fire))])
            })),
            ("lanes", .array(lanes.map { l in
                .object([("portal", .string(l.portal)), ("position", .string(l.position.rawValue)), ("loop_occupied", .bool(l.loopOccupied)), ("locked", .bool(l.locked))])
            })),
            ("fence_zones", .array(fenceZones.map { z in
                .object([("portal", .string(z.portal)), ("armed", .bool(z.armed)), ("latched", .strings(z.latched))])
            })),
            ("readers", .array(readers.map { r in
                .object([("reader", .string(r.reader)), ("portal", .string(r.portal)), ("tamper", .bool(r.tamper))])
            })),
            ("parking", .array(parking.map { p in
                .object([("key", .string(p.key)), ("inside", .int(p.inside)), ("spaces", p.spaces.map { .int($0) } ?? .null)])
            })),
            ("fleet", fleet?.json ?? .null),
        ]
    }

    init(fields json: JSON) throws(ControlProtocolError) {
        let f = Fields(json)
        let latency = Fields(json["swipe_to_relay_micros"] ?? .null)
        func list(_ key: String) throws(ControlProtocolError) -> [Fields] {
            guard case .array(let items)? = json[key] else { throw .malformed("\"\(key)\" must be an array") }
            return items.map(Fields.init)
        }
        var doors: [Door] = []
        for d in try list("doors") {
            let text = try d.string("mode")
            guard let mode = PortalMode(rawValue: text) else { throw .malformed("unknown door mode \"\(text)\"") }
            doors.append(Door(id: try d.string("id"), mode: mode, released: try d.bool("released"), fire: try d.bool("fire")))
        }
        var lanes: [Lane] = []
        for l in try list("lanes") {
            let text = try l.string("position")
            guard let position = BarrierPosition(rawValue: text) else { throw .malformed("unknown barrier position \"\(text)\"") }
            lanes.append(Lane(portal: try l.string("portal"), position: position,
                              loopOccupied: try l.bool("loop_occupied"), locked: try l.bool("locked")))
        }
        var zones: [FenceZone] = []
        for z in try list("fence_zones") {
            guard case .array(let latched)? = z.json["latched"] else { throw .malformed("\"latched\" must be an array") }
            zones.append(FenceZone(portal: try z.string("portal"), armed: try z.bool("armed"), latched: latched.compactMap(\.stringValue)))
        }
        var readers: [Reader] = []
        if case .array(let items)? = json["readers"] {  // absent from an older accessd
            for item in items.map(Fields.init) {
                readers.append(Reader(reader: try item.string("reader"), portal: item.json["portal"]?.stringValue, tamper: try item.bool("tamper")))
            }
        }
        var parking: [Parking] = []
        if case .array(let items)? = json["parking"] {  // absent from an older accessd
            for item in items.map(Fields.init) {
                parking.append(Parking(key: try item.string("key"), inside: Int(try item.int("inside")),
                                       spaces: item.json["spaces"]?.intValue.map { Int($0) }))
            }
        }
        self.init(
            controller: try f.string("controller"), decisions: Int(try f.int("decisions")), granted: Int(try f.int("granted")),
            garbledFrames: Int(try f.int("garbled_frames")), gpioOverruns: Int(try f.int("gpio_overruns")),
            eventStoreFailures: Int(try f.int("event_store_failures")),
            swipeToRelay: Latency(count: Int(try latency.int("count")), p50: Int(try latency.int("p50")),
                                  p99: Int(try latency.int("p99")), max: Int(try latency.int("max"))),
            doors: doors, lanes: lanes, fenceZones: zones, readers: readers, parking: parking)
        if let fleet = json["fleet"], case .object = fleet {
            let g = Fields(fleet)
            self.fleet = Fleet(community: try g.string("community"), connected: try g.bool("connected"),
                               applied: Int(try g.int("applied")), lag: Int(try g.int("lag")), stuck: fleet["stuck"]?.stringValue,
                               eventsAcked: Int(fleet["events_acked"]?.intValue ?? 0), eventsBacklog: Int(fleet["events_backlog"]?.intValue ?? 0))
        }
    }
}
