import AccessCore
import AccessRuntime

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
        /// Held open while this roster schedule is on (a door-status plan).
        public var normallyOpenSchedule: String? = nil
        /// First-card: held open only once a granted member of this group has passed in the period.
        public var firstCardGroup: String? = nil
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

    /// A barrier portal's gate: plate and card reads at the portal's readers raise it. The gate
    /// is a Modbus device or a barrier controller on the board's dry contacts.
    public struct Barrier: Sendable, Equatable {
        public var portal: String
        public var gate: SiteLayout.Lane.Gate
        public var positionTimeoutSeconds: Double
        public var closeDelaySeconds: Double
        public var autoClose: Bool

        /// The Modbus device, for a gate on one.
        public var device: String? { gate.device }

        /// The board lines, for a gate on dry contacts.
        public var contacts: BarrierContacts? { gate.contacts }
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
    /// `[security] pin_key_file`: the site's PIN key (PINs are stored as keyed hashes under it);
    /// nil: `pinKeyPath`'s default beside the database.
    public var pinKeyFile: String?
    /// The file it was read from.
    public var source: String

    /// The PIN key file: `pin_key_file`, else beside the database (`access.db` → `access.pin-key`),
    /// made on first start when missing.
    public var pinKeyPath: String {
        pinKeyFile ?? Self.defaultPinKeyPath(database: databasePath)
    }

    /// The PIN key file of a database given alone (`accessctl --db`): beside it, `.db` → `.pin-key`.
    public static func defaultPinKeyPath(database: String) -> String {
        (database.hasSuffix(".db") ? String(database.dropLast(3)) : database) + ".pin-key"
    }

    /// Every file that holds a secret accessd reads, with who may share it: the PIN key, the
    /// database (it holds the visitor-pass and resident-QR secret), TLS private keys and the
    /// MQTT and fleet credentials. accessd refuses to start while any lets others read it.
    public var secretFiles: [(key: String, path: String, sharing: SecretFile.Sharing)] {
        var files: [(String, String, SecretFile.Sharing)] = [
            ("security.pin_key_file", pinKeyPath, .secret), ("database.path", databasePath, .groupWritable),
        ]
        if let key = http?.tlsKey { files.append(("upstream.http.tls_key", key, .secret)) }
        if let file = mqtt?.passwordFile { files.append(("upstream.mqtt.password_file", file, .secret)) }
        if let key = mqtt?.tlsKey { files.append(("upstream.mqtt.tls_key", key, .secret)) }
        if let file = fleet?.passwordFile { files.append(("fleet.password_file", file, .secret)) }
        if let file = fleet?.credsFile { files.append(("fleet.creds_file", file, .secret)) }
        return files
    }

    /// `secretFiles` whose mode lets others read them (or the group change a key), each as
    /// `FILE: mode 0644 lets other users read this secret; chmod 640 FILE` under its config key.
    public func secretFileProblems() -> [ConfigError] {
        secretFiles.compactMap { key, path, sharing -> ConfigError? in
            do {
                try SecretFile.checkMode(path, sharing: sharing)
                return nil
            } catch {
                return ConfigError(file: source, line: nil, key: key, problem: "\(error)")
            }
        }
    }

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
