import AccessConfig
import AccessCore
import AccessDevices
import AccessTestSupport
import Synchronization
import Testing

/// Collects board events from the handler.
final class EventLog: Sendable {
    private let events = Mutex<[BoardEvent]>([])
    func append(_ e: BoardEvent) { events.withLock { $0.append(e) } }
    var all: [BoardEvent] { events.withLock { $0 } }
}

@Suite("Simulated board")
struct SimulatedBoardTests {
    static let map: BoardMap = {
        let path = BoardMapTests.root + "/Hardware/boards/sim.toml"
        return (try? BoardMap.load(path: path)) ?? BoardMap(model: "missing")
    }()

    @Test func swipesGoThroughTheRealDecoder() throws {
        let log = EventLog()
        let board = SimulatedBoard(map: Self.map) { log.append($0) }
        try board.start()
        #expect(log.all.count == Self.map.inputs.count, "every input reported at start")
        try board.swipe(reader: "reader-north-in", card: 6_553_701)
        try board.swipe(reader: "reader-b01", card: 12_345)  // auto reader: 26-bit frame, ends on silence
        try board.keys(reader: "reader-b01", [.digit(4), .hash])
        let cards = log.all.compactMap { e -> (String, UInt64)? in
            if case .card(let r, let f, _) = e { return (r, f.cardNumber) } else { return nil }
        }
        #expect(cards.map(\.0) == ["reader-north-in", "reader-b01"])
        #expect(cards.map(\.1) == [6_553_701, 12_345])
        let keys = log.all.compactMap { e -> KeypadKey? in if case .key(_, let k, _) = e { return k } else { return nil } }
        #expect(keys == [.digit(4), .hash])
        #expect(throws: DeviceError.unknownName(kind: "reader", name: "nope")) { try board.swipe(reader: "nope", card: 1) }
        #expect(throws: DeviceError.self) { try board.swipe(reader: "reader-north-in", card: 1 << 24) }
    }

    @Test func garbledBitsAreReportedNotDecoded() throws {
        let log = EventLog()
        let board = SimulatedBoard(map: Self.map) { log.append($0) }
        try board.start()
        let (bits, count) = try #require(WiegandDecoder.encode(cardNumber: 99, format: .bits26))
        board.send(bits: bits ^ 0b100, count: count, reader: 0)
        #expect(log.all.last == .garbled(reader: "reader-north-in", reason: .parity(bits: 26)))
    }

    @Test func inputsAndOutputs() throws {
        let log = EventLog()
        let board = SimulatedBoard(map: Self.map) { log.append($0) }
        try board.start()
        try board.setInput("fire.alarm", active: true)
        guard case .input("fire.alarm", true, _)? = log.all.last else { Issue.record("no fire event: \(log.all.last as Any)"); return }
        #expect(try board.read("fire.alarm"))
        #expect(board.outputs["gate-north.lock"] == false)
        try board.output("gate-north.lock").set(true)
        #expect(board.outputs["gate-north.lock"] == true)
        board.close()
        #expect(board.outputs.values.allSatisfy { !$0 }, "outputs back to safe at close")
        #expect(throws: DeviceError.unknownName(kind: "output", name: "moon")) { try board.output("moon") }
    }
}

@Suite("Door lock")
struct DoorLockTests {
    @Test func failSafeLocksHoldWhileEnergised() throws {
        let relay = FakeOutputLine(name: "gate.lock")
        let failSafe = DoorLock(output: relay, failSafe: true)
        try failSafe.release(true)
        try failSafe.release(false)
        #expect(relay.values == [false, true])
        let strike = FakeOutputLine(name: "b01.lock")
        try DoorLock(output: strike, failSafe: false).release(true)
        #expect(strike.values == [true])
    }

    @Test func relayFailuresSurface() {
        let relay = FakeOutputLine(name: "gate.lock")
        relay.failNext.withLock { $0 = .gpio(operation: "set value", line: "gate.lock", errno: 5) }
        #expect(throws: DeviceError.gpio(operation: "set value", line: "gate.lock", errno: 5)) {
            try DoorLock(output: relay, failSafe: false).release(true)
        }
    }
}
