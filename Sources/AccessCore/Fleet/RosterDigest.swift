import Crypto

/// A digest of a set of records that can be updated one record at a time: the lane-wise sum
/// (mod 2^64) of each record's SHA-256. Order does not matter, so a controller can keep it
/// current as it applies change sets, and two rosters with the same records have the same digest.
public struct RosterDigest: Hashable, Sendable, CustomStringConvertible {
    public private(set) var lanes: (UInt64, UInt64, UInt64, UInt64)

    public static let empty = RosterDigest(lanes: (0, 0, 0, 0))

    init(lanes: (UInt64, UInt64, UInt64, UInt64)) { self.lanes = lanes }

    public init?(hex: String) {
        let bytes = Array(hex.utf8)
        guard bytes.count == 64 else { return nil }
        var values: [UInt64] = []
        for i in 0..<4 {
            guard let v = UInt64(String(decoding: bytes[(i * 16)..<(i * 16 + 16)], as: UTF8.self), radix: 16) else { return nil }
            values.append(v)
        }
        lanes = (values[0], values[1], values[2], values[3])
    }

    public var hex: String {
        [lanes.0, lanes.1, lanes.2, lanes.3].map { v in
            let s = String(v, radix: 16)
            return String(repeating: "0", count: 16 - s.count) + s
        }.joined()
    }

    public var description: String { hex }

    public static func == (a: RosterDigest, b: RosterDigest) -> Bool { a.hex == b.hex }
    public func hash(into hasher: inout Hasher) { hasher.combine(hex) }

    /// Adds a record (a put; a delete adds nothing).
    public mutating func add(_ record: RosterChange) { combine(record, sign: 1) }
    /// Removes a record added before.
    public mutating func remove(_ record: RosterChange) { combine(record, sign: -1) }

    private mutating func combine(_ record: RosterChange, sign: Int) {
        guard !record.isDelete else { return }
        var record = record
        // A pass's uses are counted at each gate; the roster the fleet agrees on is the pass itself.
        if case .putVisitorPass(var pass) = record {
            pass.uses = 0
            record = .putVisitorPass(pass)
        }
        let hash = Array(SHA256.hash(data: Array(record.json().rendered().utf8)))
        func lane(_ i: Int) -> UInt64 { hash[(i * 8)..<(i * 8 + 8)].reduce(0) { $0 << 8 | UInt64($1) } }
        if sign > 0 {
            lanes = (lanes.0 &+ lane(0), lanes.1 &+ lane(1), lanes.2 &+ lane(2), lanes.3 &+ lane(3))
        } else {
            lanes = (lanes.0 &- lane(0), lanes.1 &- lane(1), lanes.2 &- lane(2), lanes.3 &- lane(3))
        }
    }
}
