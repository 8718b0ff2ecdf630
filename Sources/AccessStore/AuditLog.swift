import AccessCore

/// One operator change: who, when, what, and the record before and after.
public struct AuditEntry: Hashable, Sendable {
    public var id: Int64
    public var timeMicros: Int64
    /// The Unix user the kernel vouched for (or a service's name, `api:TOKEN`).
    public var `operator`: String
    /// What the operator typed (`--operator NAME`), beside the user, never instead of it.
    public var note: String?
    public var action: String
    public var target: String
    public var before: String?
    public var after: String?

    public func json(zone: ZoneRules) -> JSON {
        .object([
            ("id", .int(id)), ("time", .string(ISO8601.format(micros: timeMicros, zone: zone))),
            ("operator", .string(self.operator)), ("note", .string(note)), ("action", .string(action)), ("target", .string(target)),
            ("before", .string(before)), ("after", .string(after)),
        ])
    }
}

extension AccessDatabase {
    /// Appends to the audit log, chained to the entry before it (`LogChain`); call inside the
    /// transaction of the change it records. `operator` is an `OperatorIdentity`'s recorded form:
    /// its user and note go to their own columns.
    public func appendAudit(operator: String, action: String, target: String, before: JSON?, after: JSON?) throws {
        let who = OperatorIdentity(recorded: `operator`)
        let link = try nextAuditLink()
        let fields = LogChain.AuditFields(id: link.id, timeMicros: Self.nowMicros(), operator: who.user, note: who.note, action: action,
                                          target: target, before: before?.rendered(), after: after?.rendered())
        let hash = LogChain.hash(fields, previous: link.previous)
        try connection.run("""
            INSERT INTO audit (id, time_us, operator, note, action, target, before, after, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [.int(fields.id), .int(fields.timeMicros), .text(fields.operator), .optional(fields.note), .text(action), .text(target),
                  .optional(fields.before), .optional(fields.after), .blob(link.previous), .blob(hash)])
    }

    /// Audit entries after `after` (an id), oldest first, optionally filtered.
    public func audit(after: Int64 = 0, since: Int64? = nil, until: Int64? = nil, operator: String? = nil,
                      target: String? = nil, limit: Int = 100) throws -> [AuditEntry] {
        let s = try connection.statement("""
            SELECT id, time_us, operator, action, target, before, after, note FROM audit
            WHERE id > ?1 AND (?2 IS NULL OR time_us >= ?2) AND (?3 IS NULL OR time_us < ?3)
              AND (?4 IS NULL OR operator = ?4) AND (?5 IS NULL OR target = ?5)
            ORDER BY id LIMIT ?6
            """)
        try s.bind([.int(after), .optional(since), .optional(until), .optional(`operator`), .optional(target), .int(Int64(limit))])
        var out: [AuditEntry] = []
        while try s.step() {
            out.append(AuditEntry(id: s.int(0), timeMicros: s.int(1), operator: s.text(2), note: s.optionalText(7), action: s.text(3),
                                  target: s.text(4), before: s.optionalText(5), after: s.optionalText(6)))
        }
        return out
    }
}
