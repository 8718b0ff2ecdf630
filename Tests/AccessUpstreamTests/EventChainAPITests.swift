import AccessCore
import AccessStore
import AccessTestSupport
import Foundation
import Testing

/// The platform's side of the hash chain: events served by the API carry `prev_hash` and `hash`,
/// and the chain can be checked from the served JSON alone, with the encoding the schema documents.
@Suite("Event hash chain over the API", .serialized)
struct EventChainAPITests {
    static let standardKeys: Set<String> = ["id", "serial", "time", "type", "portal", "direction", "credential_kind", "credential",
                                            "person_id", "house_id", "role", "granted", "reason", "prev_hash", "hash"]

    /// The event's fields rebuilt from its JSON: the time's microseconds and offset from the
    /// RFC 3339 text, the details from the keys beyond the standard ones, in their order.
    static func fields(_ event: JSON) throws -> LogChain.EventFields {
        guard case .object(let pairs) = event, case .string(let time)? = event["time"] else { throw PeerError(description: "not an event: \(event)") }
        let dot = try #require(time.firstIndex(of: "."))
        let zoneStart = try #require(time[dot...].firstIndex { $0 == "+" || $0 == "-" || $0 == "Z" })
        let fraction = try #require(Int64(time[time.index(after: dot)..<zoneStart]))
        let zone = String(time[zoneStart...])
        let seconds = try #require(ISO8601.parse(String(time[..<dot]) + zone, zone: .fixed(offsetSeconds: 0), dateOnly: .startOfDay))
        var offset: Int64 = 0
        if zone != "Z" {
            let parts = zone.dropFirst().split(separator: ":").compactMap { Int64($0) }
            offset = (parts[0] * 3600 + parts[1] * 60) * (zone.hasPrefix("-") ? -1 : 1)
        }
        let detail = pairs.filter { !standardKeys.contains($0.0) }
        func text(_ key: String) -> String? { event[key]?.stringValue }
        var granted: Bool?
        if case .bool(let g)? = event["granted"] { granted = g }
        return LogChain.EventFields(
            serial: try #require(event["serial"]?.intValue), timeMicros: seconds * 1_000_000 + fraction, utcOffset: offset,
            type: try #require(text("type")), portal: text("portal"), direction: text("direction"), credentialKind: text("credential_kind"),
            credential: text("credential"), personID: text("person_id"), houseID: text("house_id"), role: text("role"), granted: granted,
            reason: text("reason"), detail: detail.isEmpty ? nil : JSON.object(detail).rendered())
    }

    @Test func servedEventsCarryTheirChainAndThePlatformCanRecomputeEveryHash() async throws {
        let site = try await APISite()
        try site.board.swipe(reader: "reader-b01", card: 6_553_701)
        try site.board.swipe(reader: "reader-b01", card: 424_242)
        _ = try site.controller.door(portal: "b01-door", command: .alwaysClosed, operator: "ops")
        #expect(try site.eventCount() >= 4)
        let reply = try await site.request("/api/v1/events?limit=1000")
        guard case .array(let events)? = reply.json?["events"] else { Issue.record("no events: \(reply.body)"); return }
        var previous = LogChain.genesis
        for event in events {
            let prev = try #require(event["prev_hash"]?.stringValue.flatMap(Hex.decode))
            let hash = try #require(event["hash"]?.stringValue.flatMap(Hex.decode))
            #expect(prev == previous, "serial \(event["serial"] ?? .null) links to the one before")
            #expect(LogChain.hash(try Self.fields(event), previous: prev) == hash, "\(event.rendered())")
            previous = hash
        }
        // The platform notices an edit it is shown: one field changed, the hash no longer holds.
        let access = try #require(events.first { $0["type"] == .string("access") })
        guard case .object(var pairs) = access else { return }
        pairs = pairs.map { $0.0 == "person_id" ? ($0.0, .string("P999")) : $0 }
        let forged = JSON.object(pairs)
        #expect(LogChain.hash(try Self.fields(forged), previous: Hex.decode(forged["prev_hash"]!.stringValue!)!)
                != Hex.decode(forged["hash"]!.stringValue!)!)
    }
}
