import AccessCore
import AccessStore
import AccessTestSupport
import Testing

/// The hash chains on real SQLite files, tampered with by the real `sqlite3` shell on a copy
/// (`VACUUM INTO`), as someone holding the file would.
@Suite("Tamper-evident event and audit logs")
struct LogChainStoreTests {
    let dir = TemporaryDirectory("chain")

    /// A log of 60 events written in batches of 1, 7 and 52, and five audit entries.
    func makeLog() throws -> AccessDatabase {
        let db = try AccessDatabase(path: dir.file("access.db"))
        var n: Int64 = 0
        for size in [1, 7, 52] {
            try db.appendEvents((0..<size).map { _ in
                n += 1
                return AccessEvent(timeMicros: 1_790_000_000_000_000 + n * 1_000_000, utcOffset: 28_800, type: .access, portal: "gate-in",
                                   direction: .in, credentialKind: .card, credential: String(6_553_700 + n), personID: "P\(n)",
                                   houseID: "B01-0301", role: .owner, granted: n % 3 != 0, reason: n % 3 != 0 ? .granted : .expired,
                                   detail: n % 2 == 0 ? [("reader", .string("r1"))] : [])
            })
        }
        for i in 1...5 { try db.addHouse(House(id: "H\(i)", building: "B01"), operator: "alice (note: zhang)") }
        return db
    }

    /// A copy of the live file with `sql` run on it by the sqlite3 shell; the copy, opened.
    func tampered(_ db: AccessDatabase, _ sql: String) throws -> AccessDatabase {
        let copy = dir.file("copy-\(Int.random(in: 0...Int.max)).db")
        try sqlite3(db.path, "VACUUM INTO '\(copy)'")
        try sqlite3(copy, sql)
        return try AccessDatabase(path: copy, create: false)
    }

    func sqlite3(_ path: String, _ sql: String) throws {
        let shell = try PeerProcess(["sqlite3", path, sql], log: dir.file("sqlite3-\(Int.random(in: 0...Int.max)).log"))
        guard shell.wait() == 0 else { throw PeerError(description: "sqlite3 \(sql): \(shell.output)") }
    }

    @Test func anUntouchedLogIsIntactAndEveryEventLinksToTheOneBefore() throws {
        let db = try makeLog()
        let events = try db.events(EventQuery(after: 0, limit: 1000))
        #expect(events.count == 60)
        #expect(events.first?.previousHash == LogChain.genesis)
        for (earlier, later) in zip(events, events.dropFirst()) { #expect(later.previousHash == earlier.hash) }
        #expect(try db.verifyEventChain() == ChainReport(log: "events", checked: 60, unchained: 0, firstBreak: nil))
        #expect(try db.verifyAuditChain() == ChainReport(log: "audit", checked: 5, unchained: 0, firstBreak: nil))
        let copy = try tampered(db, "SELECT 1")
        #expect(try copy.verifyEventChain().isIntact && copy.verifyAuditChain().isIntact, "a copy verifies as the original")
    }

    /// The writer binds each row's texts and hashes from one reused buffer: every value must come
    /// back as given (empty text stays text, absent stays NULL), row after row, also when a long
    /// row makes the buffer grow between short ones, and each stored hash must be its link.
    @Test func everyFieldIsStoredAsGivenWhateverTheRowsBeforeIt() throws {
        let db = try AccessDatabase(path: dir.file("fields.db"))
        let long = String(repeating: "长", count: 400)  // 1,200 bytes: more than the buffer's first size
        let kinds = [
            AccessEvent(timeMicros: 1, utcOffset: -18_000, type: .access, portal: "gate-in", direction: .in, credentialKind: .card,
                        credential: "6553701", personID: "P1", houseID: "B01-0301", role: .owner, granted: true, reason: .granted,
                        detail: [("reader", .string("r1"))]),
            AccessEvent(timeMicros: 2, utcOffset: 0, type: .alarm, portal: "", credential: "", personID: "", houseID: "",
                        granted: false, reason: .expired, detail: []),
            AccessEvent(timeMicros: 3, utcOffset: 28_800, type: .access, portal: long, direction: .out, credentialKind: .qr,
                        credential: "\(long)\"\n", personID: "住户", houseID: "B01-0302", role: .tenant, granted: nil,
                        detail: [("note", .string(long)), ("n", .int(-7))]),
            AccessEvent(timeMicros: 4, utcOffset: 0, type: .alarm),
        ]
        // 68 events go in as two 32-row statements and four single rows; the next 33 continue the
        // chain from the last of them in a second transaction.
        let first = Array(repeatElement(kinds, count: 17).joined())
        let second = Array(first.prefix(33))
        try db.appendEvents(first)
        try db.appendEvents(second)
        let given = first + second
        let stored = try db.events(EventQuery(after: 0, limit: 200))
        #expect(stored.count == given.count)
        var previous = LogChain.genesis
        for (serial, (event, back)) in zip(given, stored).enumerated() {
            var expected = event
            expected.serial = Int64(serial + 1)
            expected.previousHash = previous
            expected.hash = LogChain.hash(event, serial: expected.serial,
                                          detail: event.detail.isEmpty ? nil : JSON.object(event.detail).rendered(), previous: previous)
            #expect(back == expected, "serial \(serial + 1)")
            previous = expected.hash ?? []
        }
        #expect(try db.verifyEventChain().isIntact)
    }

    @Test(arguments: [
        ("DELETE FROM events WHERE serial = 20", ChainBreak.deleted(serial: 20)),
        ("DELETE FROM events WHERE serial BETWEEN 31 AND 35", .deleted(serial: 31)),
        ("DELETE FROM events WHERE serial = 60", .deleted(serial: 60)),
        ("DELETE FROM events WHERE serial <= 3", .deleted(serial: 3)),
        ("UPDATE events SET granted = 1, reason = 'granted' WHERE serial = 9", .altered(serial: 9)),
        ("UPDATE events SET credential = '6553999' WHERE serial = 44", .altered(serial: 44)),
        ("UPDATE events SET time_us = time_us - 3600000000 WHERE serial = 1", .altered(serial: 1)),
        ("UPDATE events SET detail = NULL WHERE serial = 12", .altered(serial: 12)),
        ("UPDATE events SET hash = NULL, prev_hash = NULL WHERE serial = 50", .altered(serial: 50)),
        // Two events swap places: every column but the serial moves.
        ("""
         UPDATE events SET serial = -1 WHERE serial = 25; UPDATE events SET serial = 25 WHERE serial = 26;
         UPDATE events SET serial = 26 WHERE serial = -1;
         """, .altered(serial: 25)),
    ])
    func tamperingWithTheEventLogIsFoundAtTheFirstSerialTouched(sql: String, expected: ChainBreak) throws {
        let db = try makeLog()
        let copy = try tampered(db, sql)
        #expect(try copy.verifyEventChain().firstBreak == expected, "\(sql)")
        #expect(try copy.verifyAuditChain().isIntact)
    }

    @Test func anEditedEventWithItsHashRecomputedIsStillFoundByTheNextLink() throws {
        let db = try makeLog()
        // Rewrite event 30's hash as if recomputed (any other value): event 31 links to the old one.
        let copy = try tampered(db, "UPDATE events SET credential = '1', hash = randomblob(32) WHERE serial = 30")
        #expect(try copy.verifyEventChain().firstBreak == .altered(serial: 30))
    }

    @Test(arguments: [
        ("DELETE FROM audit WHERE id = 2", ChainBreak.deleted(serial: 2)),
        ("UPDATE audit SET operator = 'mallory' WHERE id = 4", .altered(serial: 4)),
        ("UPDATE audit SET note = NULL WHERE id = 1", .altered(serial: 1)),
        ("DELETE FROM audit WHERE id = 5", .deleted(serial: 5)),
    ])
    func tamperingWithTheAuditLogIsFound(sql: String, expected: ChainBreak) throws {
        let db = try makeLog()
        let copy = try tampered(db, sql)
        #expect(try copy.verifyAuditChain().firstBreak == expected, "\(sql)")
        #expect(try copy.verifyEventChain().isIntact)
    }

    @Test func retentionKeepsTheKeptLogVerifiableAndADeletionBeyondItIsFound() throws {
        let db = try makeLog()
        var report = try db.pruneEvents(EventRetention(maxCount: 25, maxAgeDays: 0), nowMicros: 1_790_000_000_000_000, chunk: 10)
        while report.deleted > 0 { report = try db.pruneEvents(EventRetention(maxCount: 25, maxAgeDays: 0), nowMicros: 1_790_000_000_000_000, chunk: 10) }
        #expect(try db.eventCount() == 25)
        #expect(try db.eventChainAnchor()?.serial == 35)
        #expect(try db.verifyEventChain() == ChainReport(log: "events", checked: 25, unchained: 0, firstBreak: nil))
        // More appended after pruning still link on.
        try db.appendEvents([AccessEvent(timeMicros: 1_790_000_100_000_000, utcOffset: 28_800, type: .system, reason: .started)])
        #expect(try db.verifyEventChain().isIntact)
        // Someone deletes the oldest kept event as if retention had.
        let copy = try tampered(db, "DELETE FROM events WHERE serial = 36")
        #expect(try copy.verifyEventChain().firstBreak == .deleted(serial: 36))
    }

    @Test func whenRetentionRemovedEveryEventTheNextLinksToItsAnchor() throws {
        let db = try makeLog()
        var report = try db.pruneEvents(EventRetention(maxCount: 10, maxAgeDays: 1), nowMicros: 1_800_000_000_000_000)
        while report.deleted > 0 { report = try db.pruneEvents(EventRetention(maxCount: 10, maxAgeDays: 1), nowMicros: 1_800_000_000_000_000) }
        #expect(try db.eventCount() == 0)
        let anchor = try #require(try db.eventChainAnchor())
        #expect(anchor.serial == 60)
        let next = try db.appendEvents([AccessEvent(timeMicros: 1_800_000_000_000_000, utcOffset: 28_800, type: .system, reason: .started)])
        #expect(next.first?.serial == 61 && next.first?.previousHash == anchor.hash)
        #expect(try db.verifyEventChain().isIntact)
    }

    @Test func eventsStoredBeforeTheChainAreCountedAndTheChainStartsAfterThem() throws {
        let db = try AccessDatabase(path: dir.file("access.db"))
        // As an older build wrote them: no hashes.
        try sqlite3(db.path, """
            INSERT INTO events (time_us, utc_offset, type, reason) VALUES (1790000000000000, 28800, 'system', 'started');
            INSERT INTO events (time_us, utc_offset, type, reason) VALUES (1790000001000000, 28800, 'system', 'stopped');
            """)
        let stored = try db.appendEvents([AccessEvent(timeMicros: 1_790_000_002_000_000, utcOffset: 28_800, type: .system, reason: .started)])
        #expect(stored.first?.serial == 3 && stored.first?.previousHash == LogChain.genesis)
        #expect(try db.verifyEventChain() == ChainReport(log: "events", checked: 3, unchained: 2, firstBreak: nil))
        let served = try db.events(EventQuery())
        #expect(served.first?.json(controllerID: "c")["hash"] == .null, "an unchained event says so")
    }
}
