import AccessCore

extension AccessDatabase {
    /// Issues a pass for a visitor of `houseID`. The id is random and unguessable; the QR code
    /// that carries it is signed with the controller's secret.
    public func issuePass(
        houseID: String, visitorName: String, phone: String = "", plate: String? = nil,
        validFrom: UnixSeconds, validUntil: UnixSeconds, maxUses: Int, portals: [String] = [], operator: String
    ) throws -> VisitorPass {
        guard validFrom < validUntil else {
            throw RosterError.invalid(field: "until", value: String(validUntil), problem: "is not after the start of the pass")
        }
        guard maxUses > 0 else { throw RosterError.invalid(field: "uses", value: String(maxUses), problem: "must be at least 1") }
        guard !visitorName.isEmpty else { throw RosterError.invalid(field: "name", value: "", problem: "is required") }
        let plate = try plate.map { try Self.normalise(.plate, $0) }
        var pass = VisitorPass(id: Self.passID(), houseID: houseID, visitorName: visitorName, phone: phone, plate: plate,
                               validFrom: validFrom, validUntil: validUntil, maxUses: maxUses, portals: portals)
        try write(operator: `operator`, action: "visitor.issue", target: pass.id) {
            guard try self.house(houseID) != nil else { throw RosterError.notFound(kind: "house", id: houseID) }
            let known = Set(try self.portals().map(\.id))
            for portal in portals where !known.contains(portal) { throw RosterError.notFound(kind: "portal", id: portal) }
            while try self.pass(pass.id) != nil { pass.id = Self.passID() }
            try self.connection.run("""
                INSERT INTO visitor_passes (id, house_id, visitor_name, phone, plate, valid_from, valid_until, max_uses,
                    portals, issued_by, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [.text(pass.id), .text(houseID), .text(visitorName), .text(phone), .optional(plate), .int(validFrom),
                      .int(validUntil), .int(Int64(maxUses)), .text(portals.joined(separator: " ")), .text(`operator`),
                      .int(Self.nowMicros() / 1_000_000)])
            return (nil, RosterJSON.pass(pass))
        }
        return pass
    }

    public func pass(_ id: String) throws -> VisitorPass? {
        let s = try connection.statement(Self.passSelect + " WHERE id = ?")
        try s.bind([.text(id)])
        return try s.first(Self.pass(from:))
    }

    /// Passes, newest first, optionally of one house or only those still usable at `activeAt`.
    public func passes(house: String? = nil, activeAt: UnixSeconds? = nil, limit: Int = -1) throws -> [VisitorPass] {
        let s = try connection.statement(Self.passSelect + """
             WHERE (?1 IS NULL OR house_id = ?1)
               AND (?2 IS NULL OR (status = 'active' AND valid_until > ?2 AND uses < max_uses))
             ORDER BY issued_at DESC, id LIMIT ?3
            """)
        try s.bind([.optional(house), .optional(activeAt), .int(Int64(limit))])
        var out: [VisitorPass] = []
        while try s.step() { out.append(Self.pass(from: s)) }
        return out
    }

    public func revokePass(_ id: String, operator: String) throws {
        try write(operator: `operator`, action: "visitor.revoke", target: id) {
            guard var pass = try self.pass(id) else { throw RosterError.notFound(kind: "visitor pass", id: id) }
            let before = RosterJSON.pass(pass)
            pass.status = .revoked
            try self.connection.run("UPDATE visitor_passes SET status = 'revoked' WHERE id = ?", [.text(id)])
            return (before, RosterJSON.pass(pass))
        }
    }

    /// Counts one use of a pass (a granted entry). The roster generation is not moved: accessd
    /// counted the use in memory when it decided, and a full reload per visitor would cost
    /// seconds at a million credentials.
    public func recordPassUse(_ id: String) throws {
        try connection.run("UPDATE visitor_passes SET uses = uses + 1 WHERE id = ?", [.text(id)])
    }

    static let passSelect = """
        SELECT id, house_id, visitor_name, phone, plate, valid_from, valid_until, max_uses, uses, status, portals FROM visitor_passes
        """

    static func pass(from s: Statement) -> VisitorPass {
        VisitorPass(id: s.text(0), houseID: s.text(1), visitorName: s.text(2), phone: s.text(3), plate: s.optionalText(4),
                    validFrom: s.int(5), validUntil: s.int(6), maxUses: Int(s.int(7)), uses: Int(s.int(8)),
                    status: VisitorPass.Status(rawValue: s.text(9)) ?? .revoked,
                    portals: s.text(10).split(separator: " ").map(String.init))
    }

    /// Ten characters of Crockford base32 (50 bits): short enough to read out, hard to guess.
    static func passID() -> String {
        let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        var generator = SystemRandomNumberGenerator()
        return "V" + String((0..<10).map { _ in alphabet[Int.random(in: 0..<32, using: &generator)] })
    }
}
