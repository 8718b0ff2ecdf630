/// What a site is made of, fixed while the controller runs: the decision rules, the doors with
/// the lines that report their state, the barrier lanes and fence zones on field devices, and
/// the inputs that act on the whole site. Built from the configuration.
public struct SiteLayout: Sendable {
    /// A door: the portals whose readers open it, how it behaves, and its input lines.
    public struct Door: Sendable, Equatable {
        public var id: String
        public var portals: [String]
        public var config: DoorConfig
        public var contact: String?
        public var exitButton: String?
        /// Held open while this schedule is on (a door-status plan); nil: locked but for grants.
        public var normallyOpenSchedule: String?
        /// First-card: the plan holds the door open only once a granted member of this group
        /// has passed in the schedule's period.
        public var firstCardGroup: String?

        public init(id: String, portals: [String], config: DoorConfig, contact: String? = nil, exitButton: String? = nil,
                    normallyOpenSchedule: String? = nil, firstCardGroup: String? = nil) {
            self.normallyOpenSchedule = normallyOpenSchedule
            self.firstCardGroup = firstCardGroup
            self.id = id
            self.portals = portals
            self.config = config
            self.contact = contact
            self.exitButton = exitButton
        }
    }

    /// A barrier lane: its portal and the gate that carries out its commands, a field device or
    /// a barrier controller on the board's dry contacts.
    public struct Lane: Sendable, Equatable {
        public enum Gate: Sendable, Equatable {
            case device(String)
            case contacts(BarrierContacts)

            /// The field device, for a gate on one.
            public var device: String? {
                if case .device(let device) = self { return device }
                return nil
            }

            /// The board lines, for a gate on dry contacts.
            public var contacts: BarrierContacts? {
                if case .contacts(let contacts) = self { return contacts }
                return nil
            }
        }

        public var portal: String
        public var gate: Gate
        public var config: BarrierLaneConfig

        public init(portal: String, device: String, config: BarrierLaneConfig) {
            self.init(portal: portal, gate: .device(device), config: config)
        }

        public init(portal: String, gate: Gate, config: BarrierLaneConfig) {
            self.portal = portal
            self.gate = gate
            self.config = config
        }

        /// The field device, for a lane on one.
        public var device: String? { gate.device }

        /// The board lines, for a lane on dry contacts.
        public var contacts: BarrierContacts? { gate.contacts }
    }

    /// A fence zone of a fence alarm host.
    public struct Zone: Sendable, Equatable {
        public var portal: String
        public var device: String
        public var zone: Int
        /// Armed always; a disarm is refused.
        public var emergency: Bool
        /// Armed at start (unless `armSchedule` says otherwise).
        public var armed: Bool
        /// Armed while this schedule is on; an operator's command holds until it next changes.
        public var armSchedule: String?
        /// Sirens and lights on while any alarm of the zone is latched.
        public var outputs: [String]

        public init(portal: String, device: String, zone: Int, emergency: Bool = false, armed: Bool = false,
                    armSchedule: String? = nil, outputs: [String] = []) {
            self.portal = portal
            self.device = device
            self.zone = zone
            self.emergency = emergency
            self.armed = armed
            self.armSchedule = armSchedule
            self.outputs = outputs
        }
    }

    /// A Wiegand reader's own lines (from the board map): the LED and beeper that show its
    /// decisions, and its tamper switch.
    public struct Reader: Sendable, Equatable {
        public var name: String
        public var led: String?
        public var beeper: String?
        /// Active when the reader's cover is off or it is pulled from the wall: a latched alarm.
        public var tamper: String?

        public init(name: String, led: String? = nil, beeper: String? = nil, tamper: String? = nil) {
            self.name = name
            self.led = led
            self.beeper = beeper
            self.tamper = tamper
        }
    }

    /// Input lines that act on the whole site.
    public struct Linkage: Sendable, Equatable {
        /// The fire panel: every escape door releases and every barrier rises, latched.
        public var fire: [String]
        /// One-key call buttons (一键呼叫).
        public var call: [String]
        public var tamper: [String]

        public init(fire: [String] = [], call: [String] = [], tamper: [String] = []) {
            self.fire = fire
            self.call = call
            self.tamper = tamper
        }
    }

    public var rules: SiteRules
    public var doors: [Door]
    public var lanes: [Lane]
    public var zones: [Zone]
    public var linkage: Linkage
    /// A pause between keypad keys longer than this starts the PIN over.
    public var pinTimeoutSeconds: Double
    /// Card and PIN's timeout, repeat reads, wrong attempts and the lockout.
    public var gate: GateSettings
    /// Man-traps: groups of door ids of which at most one may be released or open at a time.
    public var interlocks: [[String]]
    /// The readers with LED, beeper or tamper lines.
    public var readers: [Reader]

    public init(rules: SiteRules, doors: [Door] = [], lanes: [Lane] = [], zones: [Zone] = [], linkage: Linkage = Linkage(),
                pinTimeoutSeconds: Double = 10, gate: GateSettings = GateSettings(), interlocks: [[String]] = [],
                readers: [Reader] = []) {
        self.readers = readers
        self.gate = gate
        self.interlocks = interlocks
        self.rules = rules
        self.doors = doors
        self.lanes = lanes
        self.zones = zones
        self.linkage = linkage
        self.pinTimeoutSeconds = pinTimeoutSeconds
    }

    /// Every board output the fence zones sound.
    public var fenceOutputs: [String] { Array(Set(zones.flatMap(\.outputs))).sorted() }

    /// Every board output the site drives besides the locks: fence sirens and lights, reader LEDs
    /// and beepers, the relays of barriers on dry contacts.
    public var outputs: [String] {
        Array(Set(zones.flatMap(\.outputs) + readers.flatMap { [$0.led, $0.beeper].compactMap { $0 } }
                  + lanes.flatMap { $0.contacts?.outputs ?? [] })).sorted()
    }
}
