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
}
