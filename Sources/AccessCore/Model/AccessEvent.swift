/// The kinds of event in the log (interfaces.md).
public enum EventType: String, CaseIterable, Sendable, Codable {
    case access, door, barrier, fence, alarm, system, `operator`
}

/// One entry of the append-only event log: who, what, where, when and why.
public struct AccessEvent: Hashable, Sendable {
    /// Monotonic, never reused; 0 until the log assigns it.
    public var serial: Int64
    /// Wall-clock time in microseconds since the epoch (UTC).
    public var timeMicros: Int64
    /// The community zone's offset at that moment, so the time prints as the gate's clock showed it.
    public var utcOffset: Int
    public var type: EventType
    public var portal: String?
    public var direction: PortalDirection?
    public var credentialKind: CredentialKind?
    /// The credential as presented: card number, plate or pass id; PINs are never recorded.
    public var credential: String?
    public var personID: String?
    public var houseID: String?
    public var role: Role?
    public var granted: Bool?
    public var reason: EventReason?
    /// Further facts of the event (alarm, anti-passback, operator, device …), as a JSON object.
    public var detail: [(String, JSON)]
    /// The hash of the event before it in the log (`LogChain`); nil until the log stores it, and
    /// for events stored before the chain existed.
    public var previousHash: [UInt8]?
    /// SHA-256 over the previous hash and this event (`LogChain.hash`); nil as `previousHash`.
    public var hash: [UInt8]?

    public init(
        serial: Int64 = 0, timeMicros: Int64, utcOffset: Int, type: EventType, portal: String? = nil,
        direction: PortalDirection? = nil, credentialKind: CredentialKind? = nil, credential: String? = nil,
        personID: String? = nil, houseID: String? = nil, role: Role? = nil, granted: Bool? = nil,
        reason: EventReason? = nil, detail: [(String, JSON)] = []
    ) {
        self.serial = serial
        self.timeMicros = timeMicros
        self.utcOffset = utcOffset
        self.type = type
        self.portal = portal
        self.direction = direction
        self.credentialKind = credentialKind
        self.credential = credential
        self.personID = personID
        self.houseID = houseID
        self.role = role
        self.granted = granted
        self.reason = reason
        self.detail = detail
    }

    /// The access event that records a decision.
    public init(decision: Decision, presented: PresentedCredential, portal: Portal, timeMicros: Int64, zone: ZoneRules) {
        let credential: String?
        switch presented {
        case .card(let n): credential = String(n)
        case .pin: credential = nil
        case .plate(let p): credential = (try? CredentialValue.plate(p)) ?? p
        case .qr: credential = decision.visitorPassID
        }
        var detail: [(String, JSON)] = []
        if decision.alarm { detail.append(("alarm", true)) }
        if decision.antiPassbackViolation { detail.append(("anti_passback_violation", true)) }
        if let pass = decision.visitorPassID { detail.append(("visitor_pass", .string(pass))) }
        self.init(
            timeMicros: timeMicros, utcOffset: zone.offset(at: timeMicros / 1_000_000), type: .access,
            portal: portal.id, direction: portal.direction, credentialKind: presented.kind, credential: credential,
            personID: decision.personID, houseID: decision.houseID, role: decision.role, granted: decision.granted,
            reason: EventReason(decision.reason), detail: detail
        )
    }

    /// `CONTROLLER_ID:SERIAL`, stable forever.
    public func id(controllerID: String) -> String { "\(controllerID):\(serial)" }

    /// The event as the HTTP API and MQTT carry it.
    public func json(controllerID: String) -> JSON {
        var pairs: [(String, JSON)] = [
            ("id", .string(id(controllerID: controllerID))),
            ("serial", .int(serial)),
            ("time", .string(ISO8601.format(micros: timeMicros, zone: .fixed(offsetSeconds: utcOffset)))),
            ("type", .string(type.rawValue)),
            ("portal", .string(portal)),
            ("direction", .string(direction == .both ? nil : direction?.rawValue)),
            ("credential_kind", .string(credentialKind?.rawValue)),
            ("credential", .string(credential)),
            ("person_id", .string(personID)),
            ("house_id", .string(houseID)),
            ("role", .string(role?.rawValue)),
            ("granted", granted.map(JSON.bool) ?? .null),
            ("reason", .string(reason?.rawValue)),
            ("prev_hash", .string(previousHash.map(Hex.encode))),
            ("hash", .string(hash.map(Hex.encode))),
        ]
        for (key, value) in detail where !pairs.contains(where: { $0.0 == key }) { pairs.append((key, value)) }
        return .object(pairs)
    }

    /// Reads an event as `json(controllerID:)` wrote it (the fleet's events stream); nil when it
    /// is not one. The id is not kept: `serial` is the controller's.
    public init?(json: JSON) {
        guard case .object(let pairs) = json, let serial = json["serial"]?.intValue,
              let time = json["time"]?.stringValue.flatMap(ISO8601.parseTimestamp),
              let type = json["type"]?.stringValue.flatMap(EventType.init(rawValue:)) else { return nil }
        func text(_ key: String) -> String? { json[key]?.stringValue }
        self.init(
            serial: serial, timeMicros: time.micros, utcOffset: time.utcOffset, type: type, portal: text("portal"),
            direction: text("direction").flatMap(PortalDirection.init(rawValue:)),
            credentialKind: text("credential_kind").flatMap(CredentialKind.init(rawValue:)), credential: text("credential"),
            personID: text("person_id"), houseID: text("house_id"), role: text("role").flatMap(Role.init(rawValue:)),
            granted: { if case .bool(let b)? = json["granted"] { b } else { nil } }(),
            reason: text("reason").flatMap(EventReason.init(rawValue:)),
            detail: pairs.filter { !Self.mainKeys.contains($0.0) }
        )
        previousHash = text("prev_hash").flatMap(Hex.decode)
        hash = text("hash").flatMap(Hex.decode)
    }

    /// The keys `json(controllerID:)` writes before the detail.
    static let mainKeys: Set<String> = ["id", "serial", "time", "type", "portal", "direction", "credential_kind", "credential",
                                        "person_id", "house_id", "role", "granted", "reason", "prev_hash", "hash"]

    public static func == (a: AccessEvent, b: AccessEvent) -> Bool {
        a.json(controllerID: "") == b.json(controllerID: "") && a.utcOffset == b.utcOffset
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(serial); hasher.combine(timeMicros) }
}
