import AccessCore
import AccessDevices
import TOMLKit

/// Turns TOML into a `SiteConfig`, refusing unknown keys and wrong types, and naming the line
/// of every mistake.
struct ConfigParser {
    let text: String
    let file: String
    let lines: KeyLines

    init(text: String, file: String) {
        self.text = text
        self.file = file
        self.lines = KeyLines(text: text)
    }

    func error(_ key: String, _ problem: String) -> ConfigError {
        ConfigError(file: file, line: lines.line(of: key), key: key, problem: problem)
    }

    func parse() throws(ConfigError) -> SiteConfig {
        if let (line, problem) = tomlTextProblem(in: text) {
            throw ConfigError(file: file, line: line, key: "syntax", problem: problem)
        }
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw ConfigError(file: file, line: e.source.begin.line, key: "syntax", problem: e.description)
        } catch {
            throw ConfigError(file: file, line: nil, key: "syntax", problem: "\(error)")
        }
        try allowOnly(root, "", ["controller", "database", "portal", "area", "anti_passback", "defaults", "upstream",
                                 "board", "door", "linkage", "control", "modbus", "barrier", "fence", "events", "analytics"])

        let controller = try requiredTable(root, "controller")
        try allowOnly(controller, "controller", ["id", "community", "time_zone"])
        let id = try string(controller, "controller.id", required: true)
        if let problem = RosterCSVSchema.identifierProblem(id) { throw error("controller.id", problem) }
        let zoneName = try string(controller, "controller.time_zone", default: "Asia/Shanghai")
        guard let zone = ZoneRules(identifier: zoneName) else {
            throw error("controller.time_zone", "\"\(zoneName)\" is not a known IANA time zone (e.g. Asia/Shanghai)")
        }
        let community = try string(controller, "controller.community", default: "")

        let database = try requiredTable(root, "database")
        try allowOnly(database, "database", ["path"])
        let path = try string(database, "database.path", required: true)

        var portals: [Portal] = []
        var seen: [String: String] = [:]
        var readers: [String: String] = [:]
        for (i, item) in try tables(root, "portal").enumerated() {
            let k = "portal[\(i)]"
            try allowOnly(item, k, ["id", "kind", "direction", "from_area", "to_area", "building", "readers"])
            let pid = try string(item, "\(k).id", required: true)
            if let problem = RosterCSVSchema.identifierProblem(pid) { throw error("\(k).id", problem) }
            if let other = seen[pid] { throw error("\(k).id", "\"\(pid)\" is already the id of \(other)") }
            seen[pid] = k
            let portal = Portal(
                id: pid,
                kind: try enumeration(item, "\(k).kind", default: PortalKind.door),
                direction: try enumeration(item, "\(k).direction", default: PortalDirection.in),
                fromArea: try string(item, "\(k).from_area", default: "outside"),
                toArea: try string(item, "\(k).to_area", default: "community"),
                building: try string(item, "\(k).building", default: ""),
                readers: try strings(item, "\(k).readers")
            )
            for reader in portal.readers {
                if let other = readers[reader] { throw error("\(k).readers", "reader \"\(reader)\" is already bound to portal \(other)") }
                readers[reader] = pid
            }
            portals.append(portal)
        }
        if portals.isEmpty { throw error("portal", "at least one [[portal]] is required") }

        var policy = AntiPassbackPolicy()
        if let apb = try table(root, "anti_passback", required: false) {
            try allowOnly(apb, "anti_passback", ["mode", "forgive_minutes"])
            policy.defaultRule = .init(
                mode: try enumeration(apb, "anti_passback.mode", default: AntiPassbackMode.off),
                forgiveAfterSeconds: Int64(try int(apb, "anti_passback.forgive_minutes", default: 0, range: 0...525_600)) * 60
            )
        }
        let areaNames = Set(portals.flatMap { [$0.fromArea, $0.toArea] })
        for (i, item) in try tables(root, "area").enumerated() {
            let k = "area[\(i)]"
            try allowOnly(item, k, ["id", "anti_passback", "forgive_minutes"])
            let aid = try string(item, "\(k).id", required: true)
            guard areaNames.contains(aid) else {
                throw error("\(k).id", "no portal joins an area \"\(aid)\" (known: \(areaNames.sorted().joined(separator: ", ")))")
            }
            policy.areas[aid] = .init(
                mode: try enumeration(item, "\(k).anti_passback", default: AntiPassbackMode.off),
                forgiveAfterSeconds: Int64(try int(item, "\(k).forgive_minutes", default: 0, range: 0...525_600)) * 60
            )
        }

        var defaults: [Role: [String]] = [:]
        if let d = try table(root, "defaults", required: false) {
            try allowOnly(d, "defaults", Role.allCases.map(\.rawValue))
            for role in Role.allCases { defaults[role] = try strings(d, "defaults.\(role.rawValue)") }
        }

        var http: SiteConfig.HTTP?
        var mqtt: SiteConfig.MQTT?
        if let upstream = try table(root, "upstream", required: false) {
            try allowOnly(upstream, "upstream", ["http", "mqtt"])
            if let h = try table(upstream, "http", required: false, key: "upstream.http") {
                try allowOnly(h, "upstream.http", ["listen", "tls_certificate", "tls_key", "max_body_bytes", "auth_failures_per_minute"])
                let listen = try string(h, "upstream.http.listen", default: "127.0.0.1:8380")
                guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {  // 0: any free port (tests)
                    throw error("upstream.http.listen", "\"\(listen)\" is not host:port")
                }
                let certificate = try string(h, "upstream.http.tls_certificate", default: "")
                let key = try string(h, "upstream.http.tls_key", default: "")
                if certificate.isEmpty != key.isEmpty {
                    throw error(certificate.isEmpty ? "upstream.http.tls_key" : "upstream.http.tls_certificate",
                                "TLS needs both tls_certificate and tls_key")
                }
                http = .init(listen: listen, tlsCertificate: certificate.isEmpty ? nil : certificate, tlsKey: key.isEmpty ? nil : key,
                             maxBodyBytes: try int(h, "upstream.http.max_body_bytes", default: 65_536, range: 1_024...16_777_216),
                             authFailuresPerMinute: try int(h, "upstream.http.auth_failures_per_minute", default: 20, range: 1...10_000))
            }
            if let m = try table(upstream, "mqtt", required: false, key: "upstream.mqtt") {
                // Files (password, CA) are only named here and read when accessd starts, so
                // accessctl, which reads the same TOML, needs no access to them.
                try allowOnly(m, "upstream.mqtt", ["host", "port", "topic_prefix", "client_id", "username", "password_file",
                                                   "tls_ca_file", "keepalive_seconds", "backlog_rate"])
                let host = try string(m, "upstream.mqtt.host", default: "127.0.0.1")
                if host.isEmpty || host.contains(where: { $0 == " " || $0 == "/" }) {
                    throw error("upstream.mqtt.host", "\"\(host)\" is not a host name or address")
                }
                let prefix = try string(m, "upstream.mqtt.topic_prefix", default: "community")
                if prefix.isEmpty || prefix.hasPrefix("/") || prefix.hasSuffix("/") || prefix.contains(where: { "+#\0".contains($0) }) {
                    throw error("upstream.mqtt.topic_prefix", "\"\(prefix)\" is not a topic prefix (not empty, no +, # or leading/trailing /)")
                }
                func optional(_ key: String) throws(ConfigError) -> String? {
                    guard m[leaf(key)] != nil else { return nil }
                    return try string(m, key, required: true)
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
                mqtt = SiteConfig.MQTT(
                    host: host, port: try int(m, "upstream.mqtt.port", default: 1883, range: 1...65535), topicPrefix: prefix,
                    clientID: clientID, username: username, passwordFile: passwordFile,
                    tlsCAFile: try optional("upstream.mqtt.tls_ca_file"),
                    keepaliveSeconds: try int(m, "upstream.mqtt.keepalive_seconds", default: 60, range: 5...65_535),
                    backlogRate: try int(m, "upstream.mqtt.backlog_rate", default: 500, range: 1...1_000_000))
            }
        }

        var retention = EventRetention()
        if let e = try table(root, "events", required: false) {
            try allowOnly(e, "events", ["max_count", "max_age_days"])
            retention.maxCount = Int64(try int(e, "events.max_count", default: 10_000_000, range: 1_000...1_000_000_000))
            retention.maxAgeDays = try int(e, "events.max_age_days", default: 0, range: 0...36_500)
        }

        var config = SiteConfig(
            controller: .init(id: id, community: community, timeZone: zone), databasePath: path, portals: portals,
            antiPassback: policy, defaultGroups: defaults, http: http, mqtt: mqtt, source: file
        )
        config.retention = retention
        config.analytics = try parseAnalytics(root)
        try parseHardware(root, into: &config)
        return config
    }

    /// `[analytics]`: whether accessd runs the 以房管人 analytics, and its indicators' thresholds.
    func parseAnalytics(_ root: TOMLTable) throws(ConfigError) -> SiteConfig.Analytics {
        var analytics = SiteConfig.Analytics()
        guard let a = try table(root, "analytics", required: false) else { return analytics }
        try allowOnly(a, "analytics", ["enabled", "alone_not_seen_hours", "out_not_back_hours", "distinct_credentials_days",
                                       "distinct_credentials_max", "late_night", "late_night_entries", "late_night_days"])
        analytics.enabled = try bool(a, "analytics.enabled", default: true)
        var t = AnalyticsThresholds()
        t.aloneNotSeenHours = try int(a, "analytics.alone_not_seen_hours", default: t.aloneNotSeenHours, range: 1...8_760)
        t.outNotBackHours = try int(a, "analytics.out_not_back_hours", default: t.outNotBackHours, range: 1...8_760)
        t.distinctCredentialsDays = try int(a, "analytics.distinct_credentials_days", default: t.distinctCredentialsDays, range: 1...30)
        t.distinctCredentialsMax = try int(a, "analytics.distinct_credentials_max", default: t.distinctCredentialsMax, range: 1...1_000)
        let window = try string(a, "analytics.late_night", default: t.lateNight.description)
        guard let lateNight = LateNightWindow.parse(window) else {
            throw error("analytics.late_night", "\"\(window)\" is not a local time window HH:MM-HH:MM (e.g. \"00:00-05:00\"; \"23:00-05:00\" crosses midnight)")
        }
        t.lateNight = lateNight
        t.lateNightEntries = try int(a, "analytics.late_night_entries", default: t.lateNightEntries, range: 1...100)
        t.lateNightDays = try int(a, "analytics.late_night_days", default: t.lateNightDays, range: 1...30)
        analytics.thresholds = t
        return analytics
    }

    /// The bindings only accessd needs: the board, doors, site-wide inputs and the control socket.
    /// Line names are checked against the board map when accessd starts.
    func parseHardware(_ root: TOMLTable, into config: inout SiteConfig) throws(ConfigError) {
        if let b = try table(root, "board", required: false) {
            try allowOnly(b, "board", ["map", "simulated"])
            config.board = .init(map: try string(b, "board.map", required: true), simulated: try bool(b, "board.simulated", default: false))
        }
        if let c = try table(root, "control", required: false) {
            try allowOnly(c, "control", ["socket"])
            config.controlSocket = try string(c, "control.socket", required: true)
        }
        let portalIDs = Set(config.portals.map(\.id))
        var doorPortals: [String: String] = [:]
        for (i, item) in try tables(root, "door").enumerated() {
            let k = "door[\(i)]"
            try allowOnly(item, k, ["id", "portals", "lock", "fail_safe", "contact", "exit", "unlock_seconds", "held_open_seconds", "escape_route"])
            let id = try string(item, "\(k).id", required: true)
            let portals = try strings(item, "\(k).portals")
            if portals.isEmpty { throw error("\(k).portals", "name at least one portal whose readers open this door") }
            for portal in portals {
                guard portalIDs.contains(portal) else { throw error("\(k).portals", "no portal \"\(portal)\"") }
                if let other = doorPortals[portal] { throw error("\(k).portals", "portal \"\(portal)\" already opens door \(other)") }
                doorPortals[portal] = id
            }
            let contact = try string(item, "\(k).contact", default: "")
            let exit = try string(item, "\(k).exit", default: "")
            config.doors.append(.init(
                id: id, portals: portals, lock: try string(item, "\(k).lock", required: true),
                failSafe: try bool(item, "\(k).fail_safe", default: false),
                contact: contact.isEmpty ? nil : contact, exitButton: exit.isEmpty ? nil : exit,
                unlockSeconds: try int(item, "\(k).unlock_seconds", default: 5, range: 1...255),
                heldOpenSeconds: try int(item, "\(k).held_open_seconds", default: 30, range: 0...86_400),
                escapeRoute: try bool(item, "\(k).escape_route", default: true)
            ))
        }
        if let l = try table(root, "linkage", required: false) {
            try allowOnly(l, "linkage", ["fire", "call", "tamper"])
            config.linkage = .init(fire: try strings(l, "linkage.fire"), call: try strings(l, "linkage.call"),
                                   tamper: try strings(l, "linkage.tamper"))
        }
        try parseModbus(root, into: &config)
    }

    /// Modbus lines and devices, and the barriers and fence zones they serve. Register maps are
    /// read when accessd starts.
    func parseModbus(_ root: TOMLTable, into config: inout SiteConfig) throws(ConfigError) {
        if let m = try table(root, "modbus", required: false) {
            try allowOnly(m, "modbus", ["bus", "device"])
            for (i, item) in try tables(m, "bus").enumerated() {
                let k = "modbus.bus[\(i)]"
                try allowOnly(item, k, ["id", "transport", "device", "baud", "parity", "data_bits", "stop_bits", "rs485",
                                        "inter_frame_gap_us", "host", "port", "response_timeout_ms", "retries"])
                let id = try string(item, "\(k).id", required: true)
                if config.modbusLines.contains(where: { $0.id == id }) { throw error("\(k).id", "\"\(id)\" names two buses") }
                let transport: ModbusBusConfig.Transport
                switch try string(item, "\(k).transport", required: true) {
                case "simulated":
                    config.modbusLines.append(.init(id: id, kind: .simulated))
                    continue
                case "rtu":
                    let gap = try int(item, "\(k).inter_frame_gap_us", default: -1, range: -1...1_000_000)
                    transport = .rtu(device: try string(item, "\(k).device", required: true),
                                     baud: try int(item, "\(k).baud", default: 9600, range: 300...4_000_000),
                                     parity: try enumeration(item, "\(k).parity", default: ModbusBusConfig.Parity.none),
                                     dataBits: try int(item, "\(k).data_bits", default: 8, range: 5...8),
                                     stopBits: try int(item, "\(k).stop_bits", default: 1, range: 1...2),
                                     rs485: try bool(item, "\(k).rs485", default: false), interFrameGapMicros: gap < 0 ? nil : gap)
                case "tcp":
                    transport = .tcp(host: try string(item, "\(k).host", required: true),
                                     port: try int(item, "\(k).port", default: 502, range: 1...65_535))
                case let other:
                    throw error("\(k).transport", "\"\(other)\" is not one of rtu, tcp, simulated")
                }
                let bus = ModbusBusConfig(id: id, transport: transport,
                                          responseTimeout: .milliseconds(try int(item, "\(k).response_timeout_ms", default: 500, range: 10...60_000)),
                                          retries: try int(item, "\(k).retries", default: 2, range: 0...10))
                if let (key, problem) = bus.problem() { throw error("\(k).\(key)", problem) }
                config.modbusLines.append(.init(id: id, kind: .bus(bus)))
            }
            for (i, item) in try tables(m, "device").enumerated() {
                let k = "modbus.device[\(i)]"
                try allowOnly(item, k, ["id", "bus", "unit", "map", "poll_ms"])
                let id = try string(item, "\(k).id", required: true)
                if config.modbusDevices.contains(where: { $0.id == id }) { throw error("\(k).id", "\"\(id)\" names two devices") }
                let bus = try string(item, "\(k).bus", required: true)
                guard config.modbusLines.contains(where: { $0.id == bus }) else {
                    throw error("\(k).bus", "no [[modbus.bus]] has id \"\(bus)\"")
                }
                config.modbusDevices.append(.init(
                    id: id, bus: bus, unit: UInt8(try int(item, "\(k).unit", default: 1, range: 0...247)),
                    map: try string(item, "\(k).map", required: true),
                    pollMillis: try int(item, "\(k).poll_ms", default: 200, range: 20...60_000)))
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
        for (i, item) in try tables(root, "barrier").enumerated() {
            let k = "barrier[\(i)]"
            try allowOnly(item, k, ["portal", "device", "position_timeout_seconds", "close_delay_seconds", "auto_close"])
            let id = try string(item, "\(k).portal", required: true)
            try portal("\(k).portal", id, kind: .barrier, taken: config.barriers.map(\.portal))
            let dev = try string(item, "\(k).device", required: true)
            try device("\(k).device", dev)
            config.barriers.append(.init(
                portal: id, device: dev,
                positionTimeoutSeconds: Double(try int(item, "\(k).position_timeout_seconds", default: 8, range: 1...120)),
                closeDelaySeconds: Double(try int(item, "\(k).close_delay_seconds", default: 1, range: 0...600)),
                autoClose: try bool(item, "\(k).auto_close", default: true)))
        }
        for (i, item) in try tables(root, "fence").enumerated() {
            let k = "fence[\(i)]"
            try allowOnly(item, k, ["portal", "device", "zone", "emergency", "armed", "arm_schedule", "outputs"])
            let id = try string(item, "\(k).portal", required: true)
            try portal("\(k).portal", id, kind: .fence, taken: config.fenceZones.map(\.portal))
            let dev = try string(item, "\(k).device", required: true)
            try device("\(k).device", dev)
            let zone = try int(item, "\(k).zone", default: 1, range: 1...256)
            if config.fenceZones.contains(where: { $0.device == dev && $0.zone == zone }) {
                throw error("\(k).zone", "zone \(zone) of \(dev) is bound twice")
            }
            let schedule = try string(item, "\(k).arm_schedule", default: "")
            config.fenceZones.append(.init(
                portal: id, device: dev, zone: zone, emergency: try bool(item, "\(k).emergency", default: false),
                armed: try bool(item, "\(k).armed", default: true), armSchedule: schedule.isEmpty ? nil : schedule,
                outputs: try strings(item, "\(k).outputs")))
        }
    }

    // MARK: Typed access

    func allowOnly(_ table: TOMLTable, _ prefix: String, _ allowed: [String]) throws(ConfigError) {
        for key in table.keys.sorted() where !allowed.contains(key) {
            let full = prefix.isEmpty ? key : "\(prefix).\(key)"
            throw error(full, "unknown key (known here: \(allowed.joined(separator: ", ")))")
        }
    }

    func table(_ parent: TOMLTable, _ name: String, required: Bool, key: String? = nil) throws(ConfigError) -> TOMLTable? {
        let full = key ?? name
        guard let value = parent[name] else {
            if required { throw error(full, "the table [\(full)] is required") }
            return nil
        }
        guard let table = value.table else { throw error(full, "must be a table, not a \(value.type)") }
        return table
    }

    func requiredTable(_ parent: TOMLTable, _ name: String) throws(ConfigError) -> TOMLTable {
        guard let table = try table(parent, name, required: true) else { throw error(name, "the table [\(name)] is required") }
        return table
    }

    func tables(_ parent: TOMLTable, _ name: String) throws(ConfigError) -> [TOMLTable] {
        guard let value = parent[name] else { return [] }
        guard let array = value.array else { throw error(name, "must be an array of tables ([[\(name)]])") }
        var out: [TOMLTable] = []
        for (i, item) in array.enumerated() {
            guard let t = item.table else { throw error("\(name)[\(i)]", "must be a table") }
            out.append(t)
        }
        return out
    }

    func leaf(_ key: String) -> String { String(key.split(separator: ".").last ?? "") }

    func string(_ table: TOMLTable, _ key: String, required: Bool = false, default fallback: String = "") throws(ConfigError) -> String {
        guard let value = table[leaf(key)] else {
            if required { throw error(key, "is required") }
            return fallback
        }
        guard let s = value.string else { throw error(key, "must be a string, not a \(value.type)") }
        if required && s.isEmpty { throw error(key, "may not be empty") }
        return s
    }

    func bool(_ table: TOMLTable, _ key: String, default fallback: Bool) throws(ConfigError) -> Bool {
        guard let value = table[leaf(key)] else { return fallback }
        guard let b = value.bool else { throw error(key, "must be true or false, not a \(value.type)") }
        return b
    }

    func int(_ table: TOMLTable, _ key: String, default fallback: Int, range: ClosedRange<Int>) throws(ConfigError) -> Int {
        guard let value = table[leaf(key)] else { return fallback }
        guard let i = value.int else { throw error(key, "must be an integer, not a \(value.type)") }
        guard range.contains(i) else { throw error(key, "\(i) is out of range \(range.lowerBound)…\(range.upperBound)") }
        return i
    }

    func strings(_ table: TOMLTable, _ key: String) throws(ConfigError) -> [String] {
        guard let value = table[leaf(key)] else { return [] }
        guard let array = value.array else { throw error(key, "must be an array of strings") }
        var out: [String] = []
        for item in array {
            guard let s = item.string else { throw error(key, "must be an array of strings") }
            out.append(s)
        }
        return out
    }

    func enumeration<E: RawRepresentable & CaseIterable>(_ table: TOMLTable, _ key: String, default fallback: E) throws(ConfigError) -> E where E.RawValue == String {
        let raw = try string(table, key, default: fallback.rawValue)
        guard let value = E(rawValue: raw) else {
            throw error(key, "\"\(raw)\" is not one of \(E.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }
}

/// Where each key of a TOML text stands, e.g. `portal[1].kind` → line 23, found by reading
/// table headers and `key =` lines (TOMLKit reports positions only for syntax errors).
struct KeyLines {
    private var lines: [String: Int] = [:]

    init(text: String) {
        var table = ""
        var arrayCounts: [String: Int] = [:]
        var inMultiline = false
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = n + 1
            let line = raw.trimming(charactersIn: " \t\r")
            let quotes = line.components(of: "\"\"\"") + line.components(of: "'''")
            if inMultiline {
                if quotes % 2 == 1 { inMultiline = false }
                continue
            }
            if line.hasPrefix("[[") {
                let name = line.dropFirst(2).prefix { $0 != "]" }.trimming(charactersIn: " \t")
                let index = arrayCounts[name, default: 0]
                arrayCounts[name] = index + 1
                table = "\(name)[\(index)]"
                record(table, lineNumber)
            } else if line.hasPrefix("[") {
                table = line.dropFirst().prefix { $0 != "]" }.trimming(charactersIn: " \t")
                record(table, lineNumber)
            } else if let eq = line.firstIndex(of: "="), !line.hasPrefix("#") {
                let key = line[..<eq].trimming(charactersIn: " \t\"'")
                record(table.isEmpty ? key : "\(table).\(key)", lineNumber)
                if quotes % 2 == 1 { inMultiline = true }
            }
        }
    }

    private mutating func record(_ key: String, _ line: Int) {
        if lines[key] == nil { lines[key] = line }
    }

    /// The line of a key, or of the nearest enclosing table that has one.
    func line(of key: String) -> Int? {
        var k = Substring(key)
        while !k.isEmpty {
            if let l = lines[String(k)] { return l }
            guard let dot = k.lastIndex(of: ".") else { break }
            k = k[..<dot]
        }
        return nil
    }
}

extension StringProtocol {
    func components(of needle: String) -> Int {
        guard !needle.isEmpty else { return 0 }
        var count = 0
        var rest = Substring(self)
        while let r = rest.range(of: needle) {
            count += 1
            rest = rest[r.upperBound...]
        }
        return count
    }
}
