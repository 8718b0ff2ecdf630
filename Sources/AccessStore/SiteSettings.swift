import AccessCore

extension AccessDatabase {
    /// Records the site description's decision-relevant parts, so that `accessctl --db` decides
    /// exactly as the controller does.
    public func saveSite(_ rules: SiteRules) throws {
        try syncPortals(rules.portals)
        let apb = JSON.object([
            ("default", Self.json(rules.antiPassback.defaultRule)),
            ("areas", .object(rules.antiPassback.areas.sorted { $0.key < $1.key }.map { ($0.key, Self.json($0.value)) })),
        ])
        let defaults = JSON.object(rules.defaultGroups.sorted { $0.key.rawValue < $1.key.rawValue }.map { ($0.key.rawValue, .strings($0.value)) })
        let values: [(String, String)] = [
            ("controller_id", rules.controllerID), ("time_zone", rules.zone.identifier),
            ("anti_passback", apb.rendered()), ("default_groups", defaults.rendered()),
        ]
        for (key, value) in values where try connection.scalarText("SELECT value FROM settings WHERE key = ?", [.text(key)]) != value {
            try connection.run("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", [.text(key), .text(value)])
        }
    }

    /// The site rules last recorded by `saveSite`, or nil when no configuration was ever used.
    public func loadSite() throws -> SiteRules? {
        guard let controllerID = try connection.scalarText("SELECT value FROM settings WHERE key = 'controller_id'") else { return nil }
        let zoneID = try connection.scalarText("SELECT value FROM settings WHERE key = 'time_zone'") ?? "Asia/Shanghai"
        let zone = ZoneRules(identifier: zoneID) ?? .fixed(identifier: zoneID, offsetSeconds: 8 * 3600)
        var policy = AntiPassbackPolicy()
        if let apb = JSON.parse(try connection.scalarText("SELECT value FROM settings WHERE key = 'anti_passback'") ?? "") {
            if let d = apb["default"].flatMap(Self.rule) { policy.defaultRule = d }
            if case .object(let areas)? = apb["areas"] {
                for (area, value) in areas { if let r = Self.rule(value) { policy.areas[area] = r } }
            }
        }
        var defaults: [Role: [String]] = [:]
        if case .object(let pairs)? = JSON.parse(try connection.scalarText("SELECT value FROM settings WHERE key = 'default_groups'") ?? "") {
            for (role, value) in pairs {
                guard let role = Role(rawValue: role), case .array(let names) = value else { continue }
                defaults[role] = names.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
            }
        }
        return SiteRules(controllerID: controllerID, zone: zone, portals: try portals(), defaultGroups: defaults, antiPassback: policy)
    }

    static func json(_ rule: AntiPassbackPolicy.Rule) -> JSON {
        .object([("mode", .string(rule.mode.rawValue)), ("forgive_seconds", .int(rule.forgiveAfterSeconds))])
    }

    static func rule(_ json: JSON) -> AntiPassbackPolicy.Rule? {
        guard case .string(let m)? = json["mode"], let mode = AntiPassbackMode(rawValue: m) else { return nil }
        var seconds: Int64 = 0
        if case .int(let s)? = json["forgive_seconds"] { seconds = s }
        return .init(mode: mode, forgiveAfterSeconds: seconds)
    }
}
