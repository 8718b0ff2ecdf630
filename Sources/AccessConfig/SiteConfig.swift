import AccessCore

/// The site description shared by `accessd` and `accessctl` (interfaces.md): a plain value with
/// defaults; `ConfigParser` turns TOML into it.
public struct SiteConfig: Sendable {
    public struct Controller: Sendable {
        public var id: String
        public var community: String
        public var timeZone: ZoneRules
    }

    public struct HTTP: Sendable, Equatable {
        /// `host:port`.
        public var listen: String
        /// PEM files; both set: HTTPS only.
        public var tlsCertificate: String?
        public var tlsKey: String?
        /// Request bodies above this are refused with 413.
        public var maxBodyBytes: Int = 65_536
        /// Failed token checks from one address within a minute before it is refused with 429.
        public var authFailuresPerMinute: Int = 20

        public var host: String { String(listen[..<(listen.lastIndex(of: ":") ?? listen.endIndex)]) }
        public var port: Int { Int(listen[listen.index(after: listen.lastIndex(of: ":") ?? listen.startIndex)...]) ?? 8380 }
    }

    /// `[upstream.mqtt]`: the broker the event log is pushed to (interfaces.md, MQTT).
    public struct MQTT: Sendable, Equatable {
        public var host: String
        public var port: Int
        public var topicPrefix: String
        /// The MQTT client id of the persistent session; nil: the controller id.
        public var clientID: String?
        public var username: String?
        /// A file holding the password (its first line), so the TOML itself may be world-readable.
        public var passwordFile: String?
        /// A PEM file of the CA that signed the broker's certificate; set: the connection uses TLS.
        public var tlsCAFile: String?
        /// PEM files of this controller's client certificate and its key, for a broker that
        /// requires certificates (`require_certificate`); both or neither, and only with TLS.
        public var tlsCertificate: String?
        public var tlsKey: String?
        public var keepaliveSeconds: Int
        /// Events per second at which a backlog (e.g. after an outage) is drained.
        public var backlogRate: Int

        public init(host: String = "127.0.0.1", port: Int = 1883, topicPrefix: String = "community", clientID: String? = nil,
                    username: String? = nil, passwordFile: String? = nil, tlsCAFile: String? = nil,
                    keepaliveSeconds: Int = 60, backlogRate: Int = 500) {
            self.host = host
            self.port = port
            self.topicPrefix = topicPrefix
            self.clientID = clientID
            self.username = username
            self.passwordFile = passwordFile
            self.tlsCAFile = tlsCAFile
            self.keepaliveSeconds = keepaliveSeconds
            self.backlogRate = backlogRate
        }
    }

    /// `[analytics]`: the 以房管人 analytics accessd runs (unless `enabled = false`) and the
    /// thresholds of its indicators.
    public struct Analytics: Sendable, Equatable {
        public var enabled: Bool
        public var thresholds: AnalyticsThresholds

        public init(enabled: Bool = true, thresholds: AnalyticsThresholds = AnalyticsThresholds()) {
            self.enabled = enabled
            self.thresholds = thresholds
        }
    }

    /// The board accessd drives: a board map, on real GPIO or simulated in memory.
    public struct Board: Sendable, Equatable {
        public var map: String
        public var simulated: Bool
    }

    /// A door: the portals whose readers open it, and the lines of its lock, contact and button.
    public struct Door: Sendable, Equatable {
        public var id: String
        public var portals: [String]
        public var lock: String
        public var failSafe: Bool
        public var contact: String?
        public var exitButton: String?
        public var unlockSeconds: Int
        public var heldOpenSeconds: Int
        public var escapeRoute: Bool
    }

    /// Inputs that act on the whole site (fire, one-key call, tamper lines).
    public typealias Linkage = SiteLayout.Linkage

    /// A Modbus line: a real RTU/TCP bus, or `simulated`: devices in memory, driven with
    /// `accessctl sim` (the simulated board's profile).
    public struct ModbusLine: Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            case bus(ModbusBusConfig)
            case simulated
        }
        public var id: String
        public var kind: Kind
    }

    /// A Modbus device on a line: its unit id and the register map of its model.
    public struct ModbusDevice: Sendable, Equatable {
        public var id: String
        public var bus: String
        public var unit: UInt8
        /// A file under `Hardware/devices/` (relative to the working directory).
        public var map: String
        /// How often its state is read.
        public var pollMillis: Int
    }

    /// A barrier portal's gate: plate and card reads at the portal's readers raise it.
    public struct Barrier: Sendable, Equatable {
        public var portal: String
        public var device: String
        public var positionTimeoutSeconds: Double
        public var closeDelaySeconds: Double
        public var autoClose: Bool
    }

    /// `[fleet]` (interfaces.md, Fleet).
    public struct Fleet: Sendable, Equatable {
        /// NATS URLs of the cluster's nodes.
        public var servers: [String]
        /// The roster's name in the fleet: letters, digits, '-' and '_'.
        public var community: String
        public var user: String?
        /// Read when connecting, never logged.
        public var passwordFile: String?
        /// A NATS .creds file (JWT and nkey seed) instead of user and password.
        public var credsFile: String?
        public var tlsCAFile: String?
        /// Copies JetStream keeps of each stream: 3 on a 3-node cluster, 1 on a single server.
        public var replicas: Int

        public init(servers: [String], community: String, user: String? = nil, passwordFile: String? = nil,
                    credsFile: String? = nil, tlsCAFile: String? = nil, replicas: Int = 1) {
            self.servers = servers
            self.community = community
            self.user = user
            self.passwordFile = passwordFile
            self.credsFile = credsFile
            self.tlsCAFile = tlsCAFile
            self.replicas = replicas
        }
    }

    /// A fence portal: one zone of a fence alarm host, its arming, and the outputs it sounds.
    public typealias FenceZone = SiteLayout.Zone

    public var controller: Controller
    /// Absolute, or relative to the current directory as given on the command line.
    public var databasePath: String
    public var portals: [Portal]
    public var antiPassback: AntiPassbackPolicy
    public var defaultGroups: [Role: [String]]
    public var http: HTTP?
    public var mqtt: MQTT?
    /// `[fleet]`: the community roster and event streams on NATS JetStream; nil: this controller
    /// keeps its own roster, as before the fleet.
    public var fleet: Fleet?
    /// A config with `[fleet]` and no `[database]`: the property office. Roster commands publish
    /// change sets, and `databasePath` is the office's local replica of the community roster.
    public var isOffice = false
    public var analytics = Analytics()
    /// Needed by accessd only.
    public var board: Board?
    public var doors: [Door] = []
    public var linkage = Linkage(fire: [], call: [], tamper: [])
    /// `[[interlock]] doors`: groups of doors of which at most one may be released or open.
    public var interlocks: [[String]] = []
    public var modbusLines: [ModbusLine] = []
    public var modbusDevices: [ModbusDevice] = []
    public var barriers: [Barrier] = []
    public var fenceZones: [FenceZone] = []
    /// The control socket accessctl uses to reach accessd (sim and door commands).
    public var controlSocket: String?
    /// The operators' group the control socket is given (`[control] group`); nil: accessd's own
    /// group (the unit's `Group=accessd-operators`).
    public var controlSocketGroup: String?
    /// How much of the event log is kept (`[events]`).
    public var retention = EventRetention()
    /// `[parking] visitor_spaces`: at most this many visitor plates inside at once; nil: no limit.
    public var visitorParkingSpaces: Int?
    /// `[gate]`: card and PIN's timeout, repeat reads, wrong attempts and the lockout.
    public var gate = GateSettings()
    /// The file it was read from.
    public var source: String

    /// The rules decisions need.
    public var rules: SiteRules {
        SiteRules(controllerID: controller.id, zone: controller.timeZone, portals: portals,
                  defaultGroups: defaultGroups, antiPassback: antiPassback, visitorParkingSpaces: visitorParkingSpaces)
    }

    /// Reads and validates a configuration file.
    public static func load(path: String) throws(ConfigError) -> SiteConfig {
        try ConfigParser(try TOMLReader.load(path: path)).parse()
    }

    /// Validates configuration text; errors name `file`.
    public static func parse(_ text: String, file: String) throws(ConfigError) -> SiteConfig {
        try ConfigParser(try TOMLReader(text: text, file: file)).parse()
    }
}
