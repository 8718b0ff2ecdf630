import AccessCore
import AccessStore
import Glibc

/// A small community used across tests: two buildings, shared gates, a barrier pair, anti-passback.
public enum Fixtures {
    public static let shanghai = ZoneRules(identifier: "Asia/Shanghai")!  // allowed: test fixture, zone is in every tz database

    public static let portals: [Portal] = [
        Portal(id: "gate-in", kind: .door, direction: .in, fromArea: "outside", toArea: "community", readers: ["r-gate-in"]),
        Portal(id: "gate-out", kind: .door, direction: .out, fromArea: "community", toArea: "outside", readers: ["r-gate-out"]),
        Portal(id: "lane-in", kind: .barrier, direction: .in, fromArea: "outside", toArea: "community", readers: ["lpr-in"]),
        Portal(id: "lane-out", kind: .barrier, direction: .out, fromArea: "community", toArea: "outside", readers: ["lpr-out"]),
        Portal(id: "b01-door", kind: .door, direction: .in, fromArea: "community", toArea: "b01", building: "B01"),
        Portal(id: "b02-door", kind: .door, direction: .in, fromArea: "community", toArea: "b02", building: "B02"),
        Portal(id: "gym", kind: .door, direction: .both, fromArea: "community", toArea: "gym"),
    ]

    public static func rules(zone: ZoneRules = shanghai, antiPassback: AntiPassbackPolicy = AntiPassbackPolicy(),
                             defaultGroups: [Role: [String]] = [:]) -> SiteRules {
        SiteRules(controllerID: "test-1", zone: zone, portals: portals, defaultGroups: defaultGroups, antiPassback: antiPassback)
    }

    /// The PIN key of the pure tests' rosters (the store's tests use a key file like accessd).
    public static let pinKey = PinKey(bytes: Array(0..<32))!  // allowed: test fixture, 32 bytes

    /// A PIN as the roster stores it: its keyed hash under `pinKey`.
    public static func pin(_ digits: String) -> String { pinKey.hash(digits) }

    /// The instant of a local wall-clock time in `zone`, e.g. `at("2026-11-23T08:00")`.
    public static func at(_ text: String, zone: ZoneRules = shanghai) -> UnixSeconds {
        guard let t = ISO8601.parse(text, zone: zone, dateOnly: .startOfDay) else {
            preconditionFailure("bad fixture time \(text)")
        }
        return t
    }
}

/// A whole text file, or nil when it cannot be read.
public func readTextFile(_ path: String) -> String? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        bytes += buffer[0..<n]
        if n < buffer.count { break }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// A deterministic generator (xorshift64), so that randomised tests can be reproduced.
public struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    public init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    public mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}

/// A directory under /tmp removed when the test is done with it; kept (and its path printed)
/// when `ACCESS_KEEP_TEST_DIRS` is set, to read the logs of a run that went wrong.
public final class TemporaryDirectory {
    public let path: String

    public init(_ prefix: String = "access-test") {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in buffer.baseAddress.flatMap { mkdtemp($0) } }
        path = made.map { String(cString: $0) } ?? "/tmp/\(prefix)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(path, 0o700)
    }

    public func file(_ name: String) -> String { "\(path)/\(name)" }

    /// Writes `text` to `name` and returns the path.
    @discardableResult
    public func write(_ name: String, _ text: String) -> String {
        let p = file(name)
        if let f = fopen(p, "wb") {
            fputs(text, f)
            fclose(f)
        }
        return p
    }

    /// Writes `bytes` (any bytes, NUL included) to `name` and returns the path.
    @discardableResult
    public func write(_ name: String, bytes: [UInt8]) -> String {
        let p = file(name)
        if let f = fopen(p, "wb") {
            _ = fwrite(bytes, 1, bytes.count, f)
            fclose(f)
        }
        return p
    }

    public func read(_ name: String) -> String? { readTextFile(file(name)) }

    deinit {
        if getenv("ACCESS_KEEP_TEST_DIRS") != nil {
            print("kept test directory \(path)")
            return
        }
        _ = system("rm -rf '\(path)'")
    }
}

/// Builds synthetic rosters for tests and benchmarks.
public enum SyntheticRoster {
    /// A CSV of `people` residents spread over buildings of 200 houses, one card each (numbered
    /// from `firstCard`), every tenth with a plate.
    public static func csv(people: Int, firstCard: UInt64 = 1_000_000, housesPerBuilding: Int = 200) -> String {
        var out = "house_id,building,unit,floor,room,person_id,name,role,phone,valid_from,valid_until,cards,plates,groups,status\n"
        out.reserveCapacity(people * 110)
        for i in 0..<people {
            let house = i / 3
            let building = house / housesPerBuilding + 1
            let b = "B" + pad(building, 3)
            let room = pad(house % housesPerBuilding, 4)
            let houseID = "\(b)-\(room)"
            let role = i % 3 == 0 ? "owner" : (i % 3 == 1 ? "family" : "tenant")
            let until = role == "tenant" ? "2027-06-30" : ""
            let plate = i % 10 == 0 ? plateNumber(i) : ""
            out += "\(houseID),\(b),1,\(house % 30 + 1),\(room),P\(pad(i, 7)),住户\(i),\(role),,,\(until),\(firstCard + UInt64(i)),\(plate),,active\n"
        }
        return out
    }

    /// A valid plate, unique for each `n` below 26 × 100000.
    public static func plateNumber(_ n: Int) -> String {
        let letters = Array("ABCDEFGHJKLMNPQRSTUVWXYZ")
        return "京" + String(letters[(n / 100_000) % letters.count]) + pad(n % 100_000, 5)
    }

    public static func pad(_ v: Int, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    /// An index of `people` people with one card each (cards `firstCard ..< firstCard + people`),
    /// built straight into memory (benchmarks of the decision path).
    public static func index(people: Int, rules: SiteRules, firstCard: UInt64 = 1_000_000, passes: [VisitorPass] = []) -> RosterIndex {
        var builder = RosterIndex.Builder(rules: rules, expectedPeople: people, expectedCards: people)
        let houses = (people + 2) / 3
        for h in 0..<houses { builder.addHouse(id: "H\(h)", building: h % 2 == 0 ? "B01" : "B02") }
        for i in 0..<people {
            builder.addPerson(id: "P\(i)", status: .active, validFrom: nil, validUntil: nil,
                              houses: [HouseBinding(houseID: "H\(i / 3)", role: .owner)], groups: [])
            builder.addCredential(kind: .card, value: String(firstCard + UInt64(i)), owner: .person("P\(i)"), status: .active)
        }
        for pass in passes { builder.addVisitorPass(pass) }
        return builder.finish()
    }
}
