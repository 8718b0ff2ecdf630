import AccessCore
import AccessTestSupport
import Testing

/// PINs are kept as keyed hashes: the roster holds no digits, and deciding needs the key.
@Suite struct PinKeyTests {
    static let rules = Fixtures.rules()

    static func policy(stored value: String, key: PinKey?) -> AccessPolicy {
        var b = RosterIndex.Builder(rules: rules)
        b.addHouse(id: "H1", building: "")
        b.addPerson(Person(id: "P1", houses: [HouseBinding(houseID: "H1", role: .owner)]))
        b.addCredential(Credential(kind: .pin, value: value, owner: .person("P1")))
        return AccessPolicy(rules: rules, roster: b.finish(), pinKey: key)
    }

    static func reason(_ policy: AccessPolicy, _ pin: String) throws -> Reason {
        try policy.decide(DecisionRequest(portal: "gym", credential: .pin(pin), at: Fixtures.at("2026-11-23T10:00"))).reason
    }

    @Test func aPinIsFoundByItsKeyedHashAndOnlyWithItsKey() throws {
        #expect(try Self.reason(Self.policy(stored: Fixtures.pin("482913"), key: Fixtures.pinKey), "482913") == .granted)
        #expect(try Self.reason(Self.policy(stored: Fixtures.pin("482913"), key: Fixtures.pinKey), "482914") == .unknownCredential)
        let other = try #require(PinKey(bytes: Array(repeating: 9, count: 32)))
        #expect(try Self.reason(Self.policy(stored: Fixtures.pin("482913"), key: other), "482913") == .unknownCredential,
                "another site's key finds nothing")
        #expect(try Self.reason(Self.policy(stored: Fixtures.pin("482913"), key: nil), "482913") == .unknownCredential,
                "without a key every PIN is unknown")
    }

    @Test func digitsStoredAsTypedAreNeverFound() throws {
        #expect(try Self.reason(Self.policy(stored: "482913", key: Fixtures.pinKey), "482913") == .unknownCredential)
    }

    @Test func theStoredFormIsSixtyFourHexDigitsThatDependOnTheKey() throws {
        let hash = Fixtures.pin("0042")
        #expect(hash.utf8.count == 64 && PinDigest.isStored(hash) && !hash.contains("0042"))
        #expect(PinDigest(hex: hash)?.hex == hash)
        #expect(!PinDigest.isStored("0042") && !PinDigest.isStored(hash.uppercased()) && !PinDigest.isStored(String(hash.dropLast())))
        #expect(try #require(PinKey(bytes: Array(repeating: 1, count: 32))).hash("0042") != hash)
        #expect(PinKey(bytes: Array(repeating: 1, count: 16)) == nil, "a key is 32 bytes")
        #expect("\(try #require(PinDigest(hex: hash)))" == "PinDigest(****)", "a digest is never printed")
    }

    @Test func digestsDifferingInAnyWordAreUnequal() throws {
        let hash = Fixtures.pin("1234")
        for position in [0, 17, 33, 63] {
            var chars = Array(hash)
            chars[position] = chars[position] == "0" ? "1" : "0"
            #expect(PinDigest(hex: String(chars)) != PinDigest(hex: hash), "hex digit \(position)")
        }
        #expect(PinDigest(hex: hash) == PinDigest(hex: String(hash)))
    }
}
