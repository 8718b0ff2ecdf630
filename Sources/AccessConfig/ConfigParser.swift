import AccessCore
import Glibc
import TOMLKit

/// Turns TOML into a `SiteConfig`, refusing unknown keys and wrong types, and naming the line
/// of every mistake.
struct ConfigParser {
    let r: TOMLReader

    init(_ reader: TOMLReader) {
        r = reader
    }

    func error(_ key: String, _ problem: String) -> ConfigError { r.error(key, problem) }

    func parse() throws(ConfigError) -> SiteConfig {
        let root = r.root
        try r.allowOnly(root, "", ["controller", "database", "portal", "area", "anti_passback", "defaults", "upstream",
                                 "board", "door", "linkage", "control", "modbus", "barrier", "fence", "events", "analytics", "fleet", "gate",
                                 "interlock", "security", "parking"])

        let controller = try r.requiredTable(root, "controller")
        try r.allowOnly(controller, "controller", ["id", "community", "time_zone"])
        let id = try r.string(controller, "controller.id", required: true)
        if let problem = RosterCSVSchema.identifierProblem(id) { throw error("controller.id", problem) }
        let zoneName = try r.string(controller, "controller.time_zone", default: "Asia/Shanghai")
        guard let zone = ZoneRules(identifier: zoneName) else {
            throw error("controller.time_zone", "\"\(zoneName)\" is not a known IANA time zone (e.g. Asia/Shanghai)")
        }
        let community = try r.string(controller, "controller.community", default: "")

        let fleet = try parseFleet(root)
        // The property office: [fleet] and no [database]; its replica of the roster is kept per user.
        let isOffice = fleet != nil && !r.has(root, "database")
        let path: String
        if let fleet, isOffice {
            path = Self.officeReplicaPath(community: fleet.community)
        } else {
            let database = try r.requiredTable(root, "database")
            try r.allowOnly(database, "database", ["path"])
            path = try r.string(database, "database.path", required: true)
        }

        var portals: [Portal] = []
        var seen: [String: String] = [:]
        var readers: [String: String] = [:]
        for (i, item) in try r.tables(root, "portal").enumerated() {
            let k = "portal[\(i)]"
            try r.allowOnly(item, k, ["id", "kind", "direction", "from_area", "to_area", "building", "readers", "verify", "verify_schedule",
                                      "multi_card", "multi_card_seconds"])
            let pid = try r.string(item, "\(k).id", required: true)
            if let problem = RosterCSVSchema.identifierProblem(pid) { throw error("\(k).id", problem) }
            if let other = seen[pid] { throw error("\(k).id", "\"\(pid)\" is already the id of \(other)") }
            seen[pid] = k
            let verify: VerifyMode? = r.has(item, "verify") ? try r.enumeration(item, "\(k).verify", default: nil) : nil
            let verifySchedule = try r.optionalString(item, "\(k).verify_schedule")
            if verifySchedule != nil && verify == nil { throw error("\(k).verify_schedule", "applies a verify mode: give verify too") }
            var multiCard: MultiCardRule?
            if r.has(item, "multi_card") {
                multiCard = MultiCardRule(cards: try r.int(item, "\(k).multi_card", default: 2, range: 2...10),
                                          seconds: try r.int(item, "\(k).multi_card_seconds", default: 30, range: 1...600))
            } else if r.has(item, "multi_card_seconds") {
                throw error("\(k).multi_card_seconds", "times a multi-card opening: give multi_card (how many people) too")
            }
            let portal = Portal(
                id: pid,
                kind: try r.enumeration(item, "\(k).kind", default: PortalKind.door),
                direction: try r.enumeration(item, "\(k).direction", default: PortalDirection.in),
                fromArea: try r.string(item, "\(k).from_area", default: "outside"),
                toArea: try r.string(item, "\(k).to_area", default: "community"),
                building: try r.string(item, "\(k).building", default: ""),
                readers: try r.strings(item, "\(k).readers"),
                verify: verify, verifySchedule: verifySchedule, multiCard: multiCard
            )
            if portal.kind == .fence, verify != nil { throw error("\(k).verify", "a fence zone has no readers to verify with") }
            if portal.kind == .fence, multiCard != nil { throw error("\(k).multi_card", "a fence zone has no readers to present cards at") }
            for reader in portal.readers {
                if let other = readers[reader] { throw error("\(k).readers", "reader \"\(reader)\" is already bound to portal \(other)") }
                readers[reader] = pid
            }
            portals.append(portal)
        }
        if portals.isEmpty && !isOffice { throw error("portal", "at least one [[portal]] is required") }

        var policy = AntiPassbackPolicy()
        if let apb = try r.table(root, "anti_passback", required: false) {
            try r.allowOnly(apb, "anti_passback", ["mode", "forgive_minutes"])
            policy.defaultRule = .init(
                mode: try r.enumeration(apb, "anti_passback.mode", default: AntiPassbackMode.off),
                forgiveAfterSeconds: Int64(try r.int(apb, "anti_passback.forgive_minutes", default: 0, range: 0...525_600)) * 60
            )
        }
        let areaNames = Set(portals.flatMap { [$0.fromArea, $0.toArea] })
        for (i, item) in try r.tables(root, "area").enumerated() {
            let k = "area[\(i)]"
            try r.allowOnly(item, k, ["id", "anti_passback", "forgive_minutes"])
            let aid = try r.string(item, "\(k).id", required: true)
            guard areaNames.contains(aid) else {
                throw error("\(k).id", "no portal joins an area \"\(aid)\" (known: \(areaNames.sorted().joined(separator: ", ")))")
            }
            policy.areas[aid] = .init(
                mode: try r.enumeration(item, "\(k).anti_passback", default: AntiPassbackMode.off),
                forgiveAfterSeconds: Int64(try r.int(item, "\(k).forgive_minutes", default: 0, range: 0...525_600)) * 60
            )
        }

        var defaults: [Role: [String]] = [:]
        if let d = try r.table(root, "defaults", required: false) {
            try r.allowOnly(d, "defaults", Role.allCases.map(\.rawValue))
            for role in Role.allCases { defaults[role] = try r.strings(d, "defaults.\(role.rawValue)") }
        }

        var http: SiteConfig.HTTP?
        var mqtt: SiteConfig.MQTT?
        if let upstream = try r.table(root, "upstream", required: false) {
            try r.allowOnly(upstream, "upstream", ["http", "mqtt"])
            if let h = try r.table(upstream, "upstream.http", required: false) {
                try r.allowOnly(h, "upstream.http", ["listen", "tls_certificate", "tls_key", "max_body_bytes", "auth_failures_per_minute"])
                let listen = try r.string(h, "upstream.http.listen", default: "127.0.0.1:8380")
                guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {  // 0: any free port (tests)
                    throw error("upstream.http.listen", "\"\(listen)\" is not host:port")
                }
                let certificate = try r.string(h, "upstream.http.tls_certificate", default: "")
                let key = try r.string(h, "upstream.http.tls_key", default: "")
                if certificate.isEmpty != key.isEmpty {
                    throw error(certificate.isEmpty ? "upstream.http.tls_key" : "upstream.http.tls_certificate",
                                "TLS needs both tls_certificate and tls_key")
                }
                http = .init(listen: listen, tlsCertificate: certificate.isEmpty ? nil : certificate, tlsKey: key.isEmpty ? nil : key,
                             maxBodyBytes: try r.int(h, "upstream.http.max_body_bytes", default: 65_536, range: 1_024...16_777_216),
                             authFailuresPerMinute: try r.int(h, "upstream.http.auth_failures_per_minute", default: 20, range: 1...10_000))
            }
            if let m = try r.table(upstream, "upstream.mqtt", required: false) {
                // Files (password, CA) are only named here and read when accessd starts, so
                // accessctl, which reads the same TOML, needs no access to them.
                try r.allowOnly(m, "upstream.mqtt", ["host", "port", "topic_prefix", "client_id", "username", "password_file",
                                                   "tls_ca_file", "tls_certificate", "tls_key", "keepalive_seconds", "backlog_rate"])
                let host = try r.string(m, "upstream.mqtt.host", default: "127.0.0.1")
                if host.isEmpty || host.contains(where: { $0 == " " || $0 == "/" }) {
                    throw error("upstream.mqtt.host", "\"\(host)\" is not a host name or address")
                }
                let prefix = try r.string(m, "upstream.mqtt.topic_prefix", default: "community")
                if prefix.isEmpty || prefix.hasPrefix("/") || prefix.hasSuffix("/") || prefix.contains(where: { "+#\0".contains($0) }) {
                    throw error("upstream.mqtt.topic_prefix", "\"\(prefix)\" is not a topic prefix (not empty, no +, # or leading/trailing /)")
                }
                func optional(_ key: String) throws(ConfigError) -> String? {
                    guard r.has(m, key) else { return nil }
                    return try r.string(m, key, required: true)
                }
                let clientID = try optional("upstream.mqtt.client_id")
                if let clientID, clientID.utf8.count > 65_535 || clientID.contains("\0") {
                    throw error("upstream.mqtt.client_id", "is not a usable MQTT client id (at most 65535 bytes, no NUL)")
                }
                let username = try optional("upstream.mqtt.username")
                let passwordFile = try optional("upstream.mqtt.password_file")
                if passwordFile != nil && username == nil {
                    throw error("upstream.mqtt.password_file", "needs upstream.mqtt.username (MQTT 3.1.1 sends no password without a user name)")
                }
                let caFile = try optional("upstream.mqtt.tls_ca_file")
                let clientCertificate = try optional("upstream.mqtt.tls_certificate")
                let clientKey = try optional("upstream.mqtt.tls_key")
                if (clientCertificate == nil) != (clientKey == nil) {
                    throw error(clientCertificate == nil ? "upstream.mqtt.tls_key" : "upstream.mqtt.tls_certificate",
                                "a client certificate needs both tls_certificate and tls_key")
                }
                if clientCertificate != nil && caFile == nil {
                    throw error("upstream.mqtt.tls_certificate", "a client certificate needs TLS: set upstream.mqtt.tls_ca_file too")
                }
                var mqttConfig = SiteConfig.MQTT(
                    host: host, port: try r.int(m, "upstream.mqtt.port", default: 1883, range: 1...65535), topicPrefix: prefix,
                    clientID: clientID, username: username, passwordFile: passwordFile,
                    tlsCAFile: caFile,
                    keepaliveSeconds: try r.int(m, "upstream.mqtt.keepalive_seconds", default: 60, range: 5...65_535),
                    backlogRate: try r.int(m, "upstream.mqtt.backlog_rate", default: 500, range: 1...1_000_000))
                mqttConfig.tlsCertificate = clientCertificate
                mqttConfig.tlsKey = clientKey
                mqtt = mqttConfig
            }
        }

        var retention = EventRetention()
        if let e = try r.table(root, "events", required: false) {
            try r.allowOnly(e, "events", ["max_count", "max_age_days"])
            retention.maxCount = Int64(try r.int(e, "events.max_count", default: 10_000_000, range: 1_000...1_000_000_000))
            retention.maxAgeDays = try r.int(e, "events.max_age_days", default: 0, range: 0...36_500)
        }

        var config = SiteConfig(
            controller: .init(id: id, community: community, timeZone: zone), databasePath: path, portals: portals,
            antiPassback: policy, defaultGroups: defaults, http: http, mqtt: mqtt, source: r.file
        )
        config.retention = retention
        config.gate = try parseGate(root)
        if let p = try r.table(root, "parking", required: false) {
            try r.allowOnly(p, "parking", ["visitor_spaces"])
            if r.has(p, "visitor_spaces") { config.visitorParkingSpaces = try r.int(p, "parking.visitor_spaces", default: 0, range: 0...10_000) }
        }
        config.fleet = fleet
        config.isOffice = isOffice
        config.analytics = try parseAnalytics(root)
        if let security = try r.table(root, "security", required: false) {
            try r.allowOnly(security, "security", ["pin_key_file"])
            let file = try r.string(security, "security.pin_key_file", default: "")
            config.pinKeyFile = file.isEmpty ? nil : file
        }
        try parseHardware(root, into: &config)
        return config
    }

    /// `[gate]`: card and PIN's timeout, repeat reads, the wrong-attempt alarm and the lockout.
    func parseGate(_ root: TOMLTable) throws(ConfigError) -> GateSettings {
        var gate = GateSettings()
        guard let g = try r.table(root, "gate", required: false) else { return gate }
        try r.allowOnly(g, "gate", ["pin_after_card_seconds", "repeat_read_seconds", "wrong_attempts", "wrong_attempt_window_seconds",
                                    "lockout_seconds"])
        gate.pinAfterCardSeconds = Double(try r.int(g, "gate.pin_after_card_seconds", default: 15, range: 1...300))
        gate.repeatReadSeconds = Double(try r.int(g, "gate.repeat_read_seconds", default: 3, range: 0...60))
        // GB 50396 asks for the alarm after at most 5 wrong attempts; 0 turns the lockout off.
        gate.wrongAttemptLimit = try r.int(g, "gate.wrong_attempts", default: 5, range: 0...5)
        gate.wrongAttemptWindowSeconds = Double(try r.int(g, "gate.wrong_attempt_window_seconds", default: 60, range: 1...86_400))
        gate.lockoutSeconds = Double(try r.int(g, "gate.lockout_seconds", default: 180, range: 1...86_400))
        return gate
    }

    /// `[fleet]`: the servers, the community and the credentials (files are named, read when used).
    func parseFleet(_ root: TOMLTable) throws(ConfigError) -> SiteConfig.Fleet? {
        guard let f = try r.table(root, "fleet", required: false) else { return nil }
        try r.allowOnly(f, "fleet", ["servers", "community", "user", "password_file", "creds_file", "tls_ca_file", "replicas"])
        let servers = try r.strings(f, "fleet.servers")
        if servers.isEmpty { throw error("fleet.servers", "at least one server URL is required, e.g. [\"nats://10.0.0.5:4222\"]") }
        for url in servers where !(url.hasPrefix("nats://") || url.hasPrefix("tls://")) || url.contains(" ") {
            throw error("fleet.servers", "\"\(url)\" is not a nats:// or tls:// URL")
        }
        let community = try r.string(f, "fleet.community", required: true)
        if community.isEmpty || community.utf8.count > 64 || !community.unicodeScalars.allSatisfy({ ($0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil)) || $0 == "-" || $0 == "_" }) {
            throw error("fleet.community", "\"\(community)\" is not a community name (letters, digits, '-' and '_', at most 64)")
        }
        func optional(_ key: String) throws(ConfigError) -> String? {
            guard r.has(f, key) else { return nil }
            return try r.string(f, key, required: true)
        }
        let user = try optional("fleet.user")
        let passwordFile = try optional("fleet.password_file")
        let credsFile = try optional("fleet.creds_file")
        if passwordFile != nil && user == nil { throw error("fleet.password_file", "needs fleet.user") }
        if credsFile != nil && user != nil { throw error("fleet.creds_file", "is instead of fleet.user and password_file, not beside them") }
        return SiteConfig.Fleet(
            servers: servers, community: community, user: user, passwordFile: passwordFile, credsFile: credsFile,
            tlsCAFile: try optional("fleet.tls_ca_file"),
            replicas: try r.int(f, "fleet.replicas", default: servers.count >= 3 ? 3 : 1, range: 1...5)
        )
    }

    /// Where the office keeps its replica: `$XDG_STATE_HOME` or `~/.local/state`, per community.
    static func officeReplicaPath(community: String) -> String {
        let env = { (name: String) -> String? in getenv(name).flatMap { String(validatingCString: $0) }.flatMap { $0.isEmpty ? nil : $0 } }
        let base = env("XDG_STATE_HOME") ?? ((env("HOME") ?? "/tmp") + "/.local/state")
        return base + "/communityaccess/office-" + community + ".db"
    }

    /// `[analytics]`: whether accessd runs the 以房管人 analytics, and its indicators' thresholds.
    func parseAnalytics(_ root: TOMLTable) throws(ConfigError) -> SiteConfig.Analytics {
        var analytics = SiteConfig.Analytics()
        guard let a = try r.table(root, "analytics", required: false) else { return analytics }
        try r.allowOnly(a, "analytics", ["enabled", "alone_not_seen_hours", "out_not_back_hours", "distinct_credentials_days",
                                       "distinct_credentials_max", "late_night", "late_night_entries", "late_night_days"])
        analytics.enabled = try r.bool(a, "analytics.enabled", default: true)
        var t = AnalyticsThresholds()
        t.aloneNotSeenHours = try r.int(a, "analytics.alone_not_seen_hours", default: t.aloneNotSeenHours, range: 1...8_760)
        t.outNotBackHours = try r.int(a, "analytics.out_not_back_hours", default: t.outNotBackHours, range: 1...8_760)
        t.distinctCredentialsDays = try r.int(a, "analytics.distinct_credentials_days", default: t.distinctCredentialsDays, range: 1...30)
        t.distinctCredentialsMax = try r.int(a, "analytics.distinct_credentials_max", default: t.distinctCredentialsMax, range: 1...1_000)
        let window = try r.string(a, "analytics.late_night", default: t.lateNight.description)
        guard let lateNight = LateNightWindow.parse(window) else {
            throw error("analytics.late_night", "\"\(window)\" is not a local time window HH:MM-HH:MM (e.g. \"00:00-05:00\"; \"23:00-05:00\" crosses midnight)")
        }
        t.lateNight = lateNight
        t.lateNightEntries = try r.int(a, "analytics.late_night_entries", default: t.lateNightEntries, range: 1...100)
        t.lateNightDays = try r.int(a, "analytics.late_night_days", default: t.lateNightDays, range: 1...30)
        analytics.thresholds = t
        return analytics
    }

    /// The bindings only accessd needs: the board, doors, site-wide inputs and the control socket.
    /// Line names are checked against the board map when accessd starts.
    func parseHardware(_ root: TOMLTable, into config: inout SiteConfig) throws(ConfigError) {
        if let b = try r.table(root, "board", required: false) {
            try r.allowOnly(b, "board", ["map", "simulated"])
            config.board = .init(map: try r.string(b, "board.map", required: true), simulated: try r.bool(b, "board.simulated", default: false))
        }
        if let c = try r.table(root, "control", required: false) {
            try r.allowOnly(c, "control", ["socket", "group"])
            config.controlSocket = try r.string(c, "control.socket", required: true)
            let group = try r.string(c, "control.group", default: "")
            config.controlSocketGroup = group.isEmpty ? nil : group
        }
        let portalIDs = Set(config.portals.map(\.id))
        var doorPortals: [String: String] = [:]
        for (i, item) in try r.tables(root, "door").enumerated() {
            let k = "door[\(i)]"
            try r.allowOnly(item, k, ["id", "portals", "lock", "fail_safe", "contact", "exit", "unlock_seconds", "held_open_seconds", "escape_route",
                                      "normally_open_schedule", "first_card_group"])
            let id = try r.string(item, "\(k).id", required: true)
            let portals = try r.strings(item, "\(k).portals")
            if portals.isEmpty { throw error("\(k).portals", "name at least one portal whose readers open this door") }
            for portal in portals {
                guard portalIDs.contains(portal) else { throw error("\(k).portals", "no portal \"\(portal)\"") }
                if let other = doorPortals[portal] { throw error("\(k).portals", "portal \"\(portal)\" already opens door \(other)") }
                doorPortals[portal] = id
            }
            let contact = try r.string(item, "\(k).contact", default: "")
            let exit = try r.string(item, "\(k).exit", default: "")
            // Schedules and groups are the roster's: a missing one is reported when accessd runs.
            let plan = try r.string(item, "\(k).normally_open_schedule", default: "")
            let firstCard = try r.string(item, "\(k).first_card_group", default: "")
            if !firstCard.isEmpty && plan.isEmpty {
                throw error("\(k).first_card_group", "first-card applies within a normally-open plan: give normally_open_schedule too")
            }
            config.doors.append(.init(
                id: id, portals: portals, lock: try r.string(item, "\(k).lock", required: true),
                failSafe: try r.bool(item, "\(k).fail_safe", default: false),
                contact: contact.isEmpty ? nil : contact, exitButton: exit.isEmpty ? nil : exit,
                unlockSeconds: try r.int(item, "\(k).unlock_seconds", default: 5, range: 1...255),
                heldOpenSeconds: try r.int(item, "\(k).held_open_seconds", default: 30, range: 0...86_400),
                escapeRoute: try r.bool(item, "\(k).escape_route", default: true),
                normallyOpenSchedule: plan.isEmpty ? nil : plan, firstCardGroup: firstCard.isEmpty ? nil : firstCard
            ))
        }
        let doorIDs = Set(config.doors.map(\.id))
        for (i, item) in try r.tables(root, "interlock").enumerated() {
            let k = "interlock[\(i)]"
            try r.allowOnly(item, k, ["doors"])
            let doors = try r.strings(item, "\(k).doors")
            if Set(doors).count < 2 || Set(doors).count != doors.count { throw error("\(k).doors", "name two or more different doors") }
            for door in doors where !doorIDs.contains(door) { throw error("\(k).doors", "no door \"\(door)\"") }
            config.interlocks.append(doors)
        }
        if let l = try r.table(root, "linkage", required: false) {
            try r.allowOnly(l, "linkage", ["fire", "call", "tamper"])
            config.linkage = .init(fire: try r.strings(l, "linkage.fire"), call: try r.strings(l, "linkage.call"),
                                   tamper: try r.strings(l, "linkage.tamper"))
        }
        try parseModbus(root, into: &config)
    }

    /// The line keys of a barrier on dry contacts: outputs, then inputs.
    static let contactKeys = ["open", "close", "stop", "loop", "infrared", "raised", "lowered"]

    /// A barrier controller on the board's lines: OPEN and CLOSE relays (STOP optional), the arm's
    /// limit switches, and the loop or the infrared beam, without which the lane could not tell a
    /// vehicle under the arm. Lines and their roles are checked against the board map when
    /// accessd starts.
    func parseContacts(_ item: TOMLTable, _ k: String) throws(ConfigError) -> BarrierContacts {
        var seen: [String: String] = [:]
        func line(_ key: String, required: Bool) throws(ConfigError) -> String? {
            guard required || r.has(item, key) else { return nil }
            let name = try r.string(item, "\(k).\(key)", required: true)
            if let other = seen[name] { throw error("\(k).\(key)", "line \"\(name)\" is already this lane's \(other)") }
            seen[name] = key
            return name
        }
        let open = try line("open", required: true) ?? ""
        let close = try line("close", required: true) ?? ""
        let stop = try line("stop", required: false)
        let loop = try line("loop", required: false)
        let infrared = try line("infrared", required: false)
        let raised = try line("raised", required: true) ?? ""
        let lowered = try line("lowered", required: true) ?? ""
        if loop == nil && infrared == nil {
            throw error("\(k).loop", "a barrier on dry contacts needs loop or infrared: the lane must see a vehicle under the arm")
        }
        return BarrierContacts(open: open, close: close, stop: stop, loop: loop, infrared: infrared, raised: raised, lowered: lowered,
                               pulseMillis: try r.int(item, "\(k).pulse_ms", default: 500, range: 100...5_000))
    }

    /// Modbus lines and devices, and the barriers and fence zones they serve. Register maps are
    /// read when accessd starts.
    func parseModbus(_ root: TOMLTable, into config: inout SiteConfig) throws(ConfigError) {
        if let m = try r.table(root, "modbus", required: false) {
            try r.allowOnly(m, "modbus", ["bus", "device"])
            for (i, item) in try r.tables(m, "modbus.bus").enumerated() {
                let k = "modbus.bus[\(i)]"
                try r.allowOnly(item, k, ["id", "transport", "device", "baud", "parity", "data_bits", "stop_bits", "rs485",
                                        "inter_frame_gap_us", "host", "port", "response_timeout_ms", "retries"])
                let id = try r.string(item, "\(k).id", required: true)
                if config.modbusLines.contains(where: { $0.id == id }) { throw error("\(k).id", "\"\(id)\" names two buses") }
                let transport: ModbusBusConfig.Transport
                switch try r.string(item, "\(k).transport", required: true) {
                case "simulated":
                    config.modbusLines.append(.init(id: id, kind: .simulated))
                    continue
                case "rtu":
                    let gap = try r.int(item, "\(k).inter_frame_gap_us", default: -1, range: -1...1_000_000)
                    transport = .rtu(device: try r.string(item, "\(k).device", required: true),
                                     baud: try r.int(item, "\(k).baud", default: 9600, range: 300...4_000_000),
                                     parity: try r.enumeration(item, "\(k).parity", default: ModbusBusConfig.Parity.none),
                                     dataBits: try r.int(item, "\(k).data_bits", default: 8, range: 5...8),
                                     stopBits: try r.int(item, "\(k).stop_bits", default: 1, range: 1...2),
                                     rs485: try r.bool(item, "\(k).rs485", default: false), interFrameGapMicros: gap < 0 ? nil : gap)
                case "tcp":
                    transport = .tcp(host: try r.string(item, "\(k).host", required: true),
                                     port: try r.int(item, "\(k).port", default: 502, range: 1...65_535))
                case let other:
                    throw error("\(k).transport", "\"\(other)\" is not one of rtu, tcp, simulated")
                }
                let bus = ModbusBusConfig(id: id, transport: transport,
                                          responseTimeout: .milliseconds(try r.int(item, "\(k).response_timeout_ms", default: 500, range: 10...60_000)),
                                          retries: try r.int(item, "\(k).retries", default: 2, range: 0...10))
                if let (key, problem) = bus.problem() { throw error("\(k).\(key)", problem) }
                config.modbusLines.append(.init(id: id, kind: .bus(bus)))
            }
            for (i, item) in try r.tables(m, "modbus.device").enumerated() {
                let k = "modbus.device[\(i)]"
                try r.allowOnly(item, k, ["id", "bus", "unit", "map", "poll_ms"])
                let id = try r.string(item, "\(k).id", required: true)
                if config.modbusDevices.contains(where: { $0.id == id }) { throw error("\(k).id", "\"\(id)\" names two devices") }
                let bus = try r.string(item, "\(k).bus", required: true)
                guard config.modbusLines.contains(where: { $0.id == bus }) else {
                    throw error("\(k).bus", "no [[modbus.bus]] has id \"\(bus)\"")
                }
                config.modbusDevices.append(.init(
                    id: id, bus: bus, unit: UInt8(try r.int(item, "\(k).unit", default: 1, range: 0...247)),
                    map: try r.string(item, "\(k).map", required: true),
                    pollMillis: try r.int(item, "\(k).poll_ms", default: 200, range: 20...60_000)))
            }
        }
        let devices = Set(config.modbusDevices.map(\.id))
        func portal(_ key: String, _ id: String, kind: PortalKind, taken: [String]) throws(ConfigError) {
            guard let p = config.portals.first(where: { $0.id == id }) else { throw error(key, "no portal \"\(id)\"") }
            guard p.kind == kind else { throw error(key, "portal \"\(id)\" is a \(p.kind.rawValue), not a \(kind.rawValue)") }
            if taken.contains(id) { throw error(key, "portal \"\(id)\" is bound twice") }
        }
        func device(_ key: String, _ id: String) throws(ConfigError) {
            guard devices.contains(id) else { throw error(key, "no [[modbus.device]] has id \"\(id)\"") }
        }
        for (i, item) in try r.tables(root, "barrier").enumerated() {
            let k = "barrier[\(i)]"
            try r.allowOnly(item, k, ["portal", "device", "position_timeout_seconds", "close_delay_seconds", "auto_close"]
                                + Self.contactKeys + ["pulse_ms"])
            let id = try r.string(item, "\(k).portal", required: true)
            try portal("\(k).portal", id, kind: .barrier, taken: config.barriers.map(\.portal))
            let gate: SiteLayout.Lane.Gate
            if let contactKey = (Self.contactKeys + ["pulse_ms"]).first(where: { r.has(item, $0) }) {
                if r.has(item, "device") {
                    throw error("\(k).\(contactKey)", "a lane's gate is a Modbus device or a barrier on dry contacts, not both")
                }
                gate = .contacts(try parseContacts(item, k))
            } else {
                guard r.has(item, "device") else {
                    throw error("\(k).device", "give device (a Modbus barrier gate) or open, close, raised, lowered and loop "
                                + "(a barrier controller on the board's dry contacts)")
                }
                let dev = try r.string(item, "\(k).device", required: true)
                try device("\(k).device", dev)
                gate = .device(dev)
            }
            config.barriers.append(.init(
                portal: id, gate: gate,
                positionTimeoutSeconds: Double(try r.int(item, "\(k).position_timeout_seconds", default: 8, range: 1...120)),
                closeDelaySeconds: Double(try r.int(item, "\(k).close_delay_seconds", default: 1, range: 0...600)),
                autoClose: try r.bool(item, "\(k).auto_close", default: true)))
        }
        for (i, item) in try r.tables(root, "fence").enumerated() {
            let k = "fence[\(i)]"
            try r.allowOnly(item, k, ["portal", "device", "zone", "emergency", "armed", "arm_schedule", "outputs"])
            let id = try r.string(item, "\(k).portal", required: true)
            try portal("\(k).portal", id, kind: .fence, taken: config.fenceZones.map(\.portal))
            let dev = try r.string(item, "\(k).device", required: true)
            try device("\(k).device", dev)
            let zone = try r.int(item, "\(k).zone", default: 1, range: 1...256)
            if config.fenceZones.contains(where: { $0.device == dev && $0.zone == zone }) {
                throw error("\(k).zone", "zone \(zone) of \(dev) is bound twice")
            }
            let schedule = try r.string(item, "\(k).arm_schedule", default: "")
            config.fenceZones.append(.init(
                portal: id, device: dev, zone: zone, emergency: try r.bool(item, "\(k).emergency", default: false),
                armed: try r.bool(item, "\(k).armed", default: true), armSchedule: schedule.isEmpty ? nil : schedule,
                outputs: try r.strings(item, "\(k).outputs")))
        }
    }
}
