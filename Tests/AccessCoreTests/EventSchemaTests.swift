import AccessCore
import AccessTestSupport
import Testing

/// `API/event.schema.json` is the platform's contract: its enumerations and the code's must agree.
@Suite("The event schema and the code")
struct EventSchemaTests {
    static let root = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")

    func enumeration(_ property: String) throws -> Set<String> {
        let text = try #require(readTextFile("\(Self.root)/API/event.schema.json"))
        let schema = try #require(JSON.parse(text))
        guard case .array(let values)? = schema["properties"]?[property]?["enum"] else {
            Issue.record("the schema has no enum for \(property)")
            return []
        }
        return Set(values.compactMap(\.stringValue))
    }

    @Test func everyReasonInTheCodeIsInTheSchemaAndNoOther() throws {
        let schema = try enumeration("reason")
        let code = Set(EventReason.allCases.map(\.rawValue))
        #expect(code.subtracting(schema).isEmpty, "missing from the schema: \(code.subtracting(schema).sorted())")
        #expect(schema.subtracting(code).isEmpty, "in the schema, not in the code: \(schema.subtracting(code).sorted())")
    }

    @Test func typesCredentialKindsAndRolesAgree() throws {
        #expect(try enumeration("type") == Set(EventType.allCases.map(\.rawValue)))
        #expect(try enumeration("credential_kind") == Set(CredentialKind.allCases.map(\.rawValue)))
        #expect(try enumeration("role") == Set(Role.allCases.map(\.rawValue)))
    }

    /// The fleet's analytics read events back from the stream: what `json` writes, `init(json:)`
    /// reads to an equal event, fraction of a second and offset included.
    @Test(arguments: [
        AccessEvent(serial: 42, timeMicros: 1_764_900_000_123_456, utcOffset: 28_800, type: .access, portal: "gate-north-in",
                    direction: .in, credentialKind: .card, credential: "6553701", personID: "P1", houseID: "B01-U1-0301",
                    role: .owner, granted: true, reason: .granted, detail: [("reader", .string("reader-north-in"))]),
        AccessEvent(serial: 7, timeMicros: -1_500_000, utcOffset: -18_000, type: .alarm, portal: nil, houseID: "H1",
                    reason: .indicatorCrowdedHouse, detail: [("indicator", .string("crowded_house:H1:")), ("count", .int(3))]),
        AccessEvent(serial: 1, timeMicros: 1_764_900_000_000_000, utcOffset: 0, type: .system, reason: .started),
    ])
    func anEventReadsBackFromItsJSON(_ event: AccessEvent) throws {
        let back = try #require(AccessEvent(json: event.json(controllerID: "xfl-north-1")))
        #expect(back == event)
        #expect(back.timeMicros == event.timeMicros && back.utcOffset == event.utcOffset && back.serial == event.serial)
    }

    @Test func aTimestampWithoutAnOffsetOrAType() {
        #expect(ISO8601.parseTimestamp("2026-12-05T08:00:00") == nil)
        #expect(AccessEvent(json: .object([("serial", .int(1)), ("time", .string("2026-12-05T08:00:00Z"))])) == nil)
        #expect(ISO8601.parseTimestamp("2026-12-05T08:00:00.5+08:00").map { $0.micros % 1_000_000 } == 500_000)
    }
}
