import AccessCore
import Testing

@Suite("Hash chains of the event and audit logs")
struct LogChainTests {
    static let accessEvent = AccessEvent(
        timeMicros: 1_790_000_000_000_000, utcOffset: 28_800, type: .access, portal: "gate-in", direction: .in, credentialKind: .card,
        credential: "6553701", personID: "P1", houseID: "B01-0301", role: .owner, granted: true, reason: .granted, detail: [("alarm", true)])

    /// Known answers computed outside Swift (Python's hashlib) from the encoding the event schema
    /// documents, so a platform can check hashes with nothing but that description.
    @Test func theHashesAreTheDocumentedEncodingsKnownAnswers() {
        let first = LogChain.hash(LogChain.EventFields(Self.accessEvent, serial: 1, detail: #"{"alarm":true}"#), previous: LogChain.genesis)
        #expect(Hex.encode(first) == "f08ee8d13deb2905905d85053c4d7763b974eb7b129981c5c810590a213670b7")
        let started = AccessEvent(timeMicros: 1_790_000_001_000_000, utcOffset: 28_800, type: .system, reason: .started)
        let second = LogChain.hash(LogChain.EventFields(started, serial: 2, detail: nil), previous: first)
        #expect(Hex.encode(second) == "2979da6e722f8cdd8ea2d9368b68f68e337525e99a92fe8af2e7108bfd6867a6")
        let audit = LogChain.hash(LogChain.AuditFields(id: 1, timeMicros: 1_790_000_000_000_000, operator: "alice", note: "zhang",
                                                       action: "door.open", target: "b01-door", before: nil, after: #"{"mode":"normal"}"#),
                                  previous: LogChain.genesis)
        #expect(Hex.encode(audit) == "b9947aba2be908cfa32f1c417953f6c889740106d88c3a7cc1b652bfab498780")
        // Zero and negative integers (a zone west of UTC), granted false, everything else absent.
        let west = LogChain.EventFields(serial: 0, timeMicros: -1000, utcOffset: -18_000, type: "system", portal: nil, direction: nil,
                                        credentialKind: nil, credential: nil, personID: nil, houseID: nil, role: nil, granted: false,
                                        reason: nil, detail: nil)
        #expect(Hex.encode(LogChain.hash(west, previous: LogChain.genesis)) == "8d7ec5e7d4c048af9f5839eee4ed9d2f6c740c2ff78544311407e561f60e75c0")
    }

    @Test func everyFieldAndTheLinkAreCovered() {
        let base = LogChain.EventFields(Self.accessEvent, serial: 7, detail: #"{"alarm":true}"#)
        let hash = LogChain.hash(base, previous: LogChain.genesis)
        var edits: [LogChain.EventFields] = []
        for edit in [{ (e: inout LogChain.EventFields) in e.serial = 8 }, { $0.timeMicros += 1 }, { $0.utcOffset = 0 }, { $0.type = "door" },
                     { $0.portal = nil }, { $0.direction = "out" }, { $0.credentialKind = "plate" }, { $0.credential = "6553702" },
                     { $0.personID = "P2" }, { $0.houseID = nil }, { $0.role = "tenant" }, { $0.granted = false }, { $0.granted = nil },
                     { $0.reason = "expired" }, { $0.detail = nil }, { $0.portal = "" }] as [(inout LogChain.EventFields) -> Void] {
            var changed = base
            edit(&changed)
            edits.append(changed)
        }
        for changed in edits { #expect(LogChain.hash(changed, previous: LogChain.genesis) != hash, "\(changed)") }
        #expect(LogChain.hash(base, previous: [UInt8](repeating: 1, count: 32)) != hash)
        // Field boundaries are unambiguous: moving text from one field to the next changes the hash.
        var shifted = base
        shifted.personID = "P1B01-0301"
        shifted.houseID = ""
        #expect(LogChain.hash(shifted, previous: LogChain.genesis) != hash)
    }

    /// A chain of `count` entries: (serial, previous, hash), each recomputing to itself.
    static func chain(_ serials: ClosedRange<Int64>, from start: [UInt8] = LogChain.genesis) -> [(Int64, [UInt8], [UInt8])] {
        var previous = start
        return serials.map { serial in
            let event = AccessEvent(timeMicros: 1_790_000_000_000_000 + serial, utcOffset: 0, type: .system, reason: .started)
            let hash = LogChain.hash(LogChain.EventFields(event, serial: serial, detail: nil), previous: previous)
            defer { previous = hash }
            return (serial, previous, hash)
        }
    }

    static func verify(_ rows: [(Int64, [UInt8]?, [UInt8]?, [UInt8]?)], anchor: (Int64, [UInt8])? = nil, lastAssigned: Int64? = nil) -> ChainBreak? {
        var verifier = ChainVerifier(anchor: anchor.map { (serial: $0.0, hash: $0.1) })
        for row in rows {
            if let problem = verifier.check(serial: row.0, previous: row.1, hash: row.2, recomputed: row.3) { return problem }
        }
        return verifier.finish(lastAssigned: lastAssigned ?? rows.last?.0 ?? 0)
    }

    static func rows(_ chain: [(Int64, [UInt8], [UInt8])]) -> [(Int64, [UInt8]?, [UInt8]?, [UInt8]?)] {
        chain.map { ($0.0, $0.1, $0.2, $0.2) }
    }

    @Test func anIntactChainHasNoBreak() {
        #expect(Self.verify(Self.rows(Self.chain(1...10))) == nil)
        #expect(Self.verify([]) == nil)
    }

    @Test func aDeletedEntryIsNamed() {
        var rows = Self.rows(Self.chain(1...10))
        rows.remove(at: 4)
        #expect(Self.verify(rows) == .deleted(serial: 5))
        #expect(Self.verify(Array(Self.rows(Self.chain(1...10)).dropLast(2)), lastAssigned: 10) == .deleted(serial: 9), "from the end")
        #expect(Self.verify(Array(Self.rows(Self.chain(1...10)).dropFirst(3))) == .deleted(serial: 3), "from the start, with no retention anchor")
    }

    @Test func anAlteredEntryIsNamedEvenWhenItsHashWasRecomputed() {
        var rows = Self.rows(Self.chain(1...10))
        rows[3].3 = [UInt8](repeating: 9, count: 32)  // its content no longer gives its hash
        #expect(Self.verify(rows) == .altered(serial: 4))
        rows = Self.rows(Self.chain(1...10))
        let forged = [UInt8](repeating: 7, count: 32)
        rows[3].2 = forged  // edited and re-hashed: the next entry's link shows it
        rows[3].3 = forged
        #expect(Self.verify(rows) == .altered(serial: 4))
        rows = Self.rows(Self.chain(1...10))
        rows[6].2 = nil  // a hash removed inside the chain
        #expect(Self.verify(rows) == .altered(serial: 7))
    }

    @Test func reorderedEntriesAreNamed() {
        let chain = Self.chain(1...10)
        var rows = Self.rows(chain)
        // Entries 5 and 6 swap places (their serials stay in order): serial 5 now holds 6's entry,
        // whose hash covers serial 6.
        let five = chain[4], six = chain[5]
        let contentOfSix = LogChain.hash(LogChain.EventFields(
            AccessEvent(timeMicros: 1_790_000_000_000_000 + 6, utcOffset: 0, type: .system, reason: .started), serial: 5, detail: nil), previous: six.1)
        rows[4] = (5, six.1, six.2, contentOfSix)
        rows[5] = (6, five.1, five.2, nil)
        #expect(Self.verify(rows) == .altered(serial: 5))
    }

    @Test func retentionsAnchorAndUnchainedEntriesAreNotBreaks() {
        let chain = Self.chain(1...10)
        let kept = Array(Self.rows(chain).dropFirst(4))
        #expect(Self.verify(kept, anchor: (4, chain[3].2)) == nil)
        #expect(Self.verify(Array(kept.dropFirst()), anchor: (4, chain[3].2)) == .deleted(serial: 5), "one more than retention removed")
        #expect(Self.verify(kept, anchor: (4, [UInt8](repeating: 3, count: 32))) == .altered(serial: 5))
        // Three entries from before the chain, then the chain from genesis.
        let legacy: [(Int64, [UInt8]?, [UInt8]?, [UInt8]?)] = [(1, nil, nil, nil), (2, nil, nil, nil), (3, nil, nil, nil)]
        var verifier = ChainVerifier()
        for row in legacy + Self.rows(Self.chain(4...8)) {
            #expect(verifier.check(serial: row.0, previous: row.1, hash: row.2, recomputed: row.3) == nil)
        }
        #expect(verifier.unchained == 3 && verifier.checked == 8)
        #expect(verifier.finish(lastAssigned: 8) == nil)
    }
}
