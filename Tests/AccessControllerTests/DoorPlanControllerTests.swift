import AccessControlProtocol
import AccessController
import AccessCore
@_spi(Testing) import AccessStore
import AccessTestSupport
import Foundation
import Glibc
import Testing

extension Rig {
    /// A second person: a tenant of B01-0301 with card 6553702, in `groups`.
    func addSecondPerson(groups: [String] = []) throws {
        try db.addPerson(Person(id: "P2", houses: [HouseBinding(houseID: "B01-0301", role: .tenant)], groups: groups), operator: "t")
        try db.addCredential(Credential(kind: .card, value: "6553702", owner: .person("P2")), operator: "t")
    }

    /// The b01 door's events with the plan they name: "released normally_open", "relocked".
    func b01Events() throws -> [String] {
        try events().filter { $0.type == .door && $0.detail.contains { $0.0 == "door" && $0.1 == .string("b01") } }.compactMap { e in
            guard let reason = e.reason?.rawValue else { return nil }
            guard let plan = e.detail.first(where: { $0.0 == "plan" })?.1.stringValue else { return reason }
            return "\(reason) \(plan)"
        }
    }

    /// The simulated board's b01 lock as accessd drives it (1: released).
    func b01LockThroughAccessd() throws -> JSON? { try control([("op", "sim.outputs")])["outputs"]?["b01.lock"] }

    func accessdEvents() throws -> [AccessEvent] { try db.events(EventQuery(after: 0, limit: 10_000)) }
}

/// Door-status plans and multi-card through the controller on the simulated board, time moved
/// by hand across the schedule's edges. The rig's clock reads 2026-09-21 22:13:20 in Shanghai.
@Suite("Door-status plans and multi-card on the simulated board", .serialized)
struct DoorPlanControllerTests {
    @Test func aNormallyOpenPlanReleasesTheDoorAtTheSchedulesStartAndRelocksItAtItsEnd() throws {
        let rig = try Rig(b01Door: "normally_open_schedule = \"lobby-hours\"")
        try rig.db.saveSchedule(try Schedule(name: "lobby-hours", specs: ["daily 22:14-22:16"]), isNew: true, operator: "t")
        rig.advance(0.25)  // the roster reload that brings the schedule in
        #expect(rig.board.outputs["b01.lock"] == false)
        rig.advance(39)
        #expect(rig.board.outputs["b01.lock"] == false, "22:13:59: not yet")
        rig.advance(1)
        #expect(rig.board.outputs["b01.lock"] == true, "22:14:00: released")
        try rig.board.swipe(reader: "reader-b01", card: 6_553_701)
        rig.advance(119)
        #expect(rig.board.outputs["b01.lock"] == true, "22:15:59: the grant's unlock time is long over, the plan holds it")
        rig.advance(1)
        #expect(rig.board.outputs["b01.lock"] == false, "22:16:00: relocked")
        #expect(try rig.b01Events() == ["released normally_open", "relocked normally_open"])
    }

    @Test func anOperatorsAlwaysClosedHoldsUntilNormal() throws {
        let rig = try Rig(b01Door: "normally_open_schedule = \"all-day\"")
        try rig.db.saveSchedule(try Schedule(name: "all-day", specs: ["daily 00:00-24:00"]), isNew: true, operator: "t")
        rig.advance(0.25)
        rig.advance(0.25)
        #expect(rig.board.outputs["b01.lock"] == true)
        _ = try rig.controller.door(portal: "b01-door", command: .alwaysClosed, operator: "t")
        rig.advance(60)
        #expect(rig.board.outputs["b01.lock"] == false)
        _ = try rig.controller.door(portal: "b01-door", command: .normal, operator: "t")
        #expect(rig.board.outputs["b01.lock"] == true)
    }

    @Test func aFirstCardDoorWaitsForAMemberOfItsGroup() throws {
        let rig = try Rig(b01Door: "normally_open_schedule = \"all-day\"\nfirst_card_group = \"managers\"")
        try rig.db.saveSchedule(try Schedule(name: "all-day", specs: ["daily 00:00-24:00"]), isNew: true, operator: "t")
        try rig.db.saveGroup(AccessGroup(name: "managers", portals: ["b01-door"]), isNew: true, operator: "t")
        try rig.addSecondPerson(groups: ["managers"])
        rig.advance(0.25)
        rig.advance(0.25)
        #expect(rig.board.outputs["b01.lock"] == false, "in the schedule, before the first card")
        try rig.board.swipe(reader: "reader-b01", card: 6_553_701)
        rig.advance(6)
        #expect(rig.board.outputs["b01.lock"] == false, "a resident outside the group: the grant's unlock time only")
        try rig.board.swipe(reader: "reader-b01", card: 6_553_702)
        rig.advance(600)
        #expect(rig.board.outputs["b01.lock"] == true, "the first manager's card: held open")
        #expect(try rig.b01Events() == ["released", "relocked", "released first_card"])
    }

    @Test func twoDifferentPeopleOpenAMultiCardDoor() throws {
        let rig = try Rig(b01Portal: "multi_card = 2\nmulti_card_seconds = 20")
        try rig.addSecondPerson()
        rig.advance(0.25)
        try rig.board.swipe(reader: "reader-b01", card: 6_553_701)
        #expect(rig.controller.lastDecision(at: "reader-b01")?.reason == .awaitingMoreCards)
        #expect(rig.board.outputs["b01.lock"] == false)
        rig.advance(21)
        try rig.board.swipe(reader: "reader-b01", card: 6_553_702)
        #expect(rig.board.outputs["b01.lock"] == false, "21 s later: the first card no longer counts")
        rig.advance(5)
        try rig.board.swipe(reader: "reader-b01", card: 6_553_701)
        #expect(rig.board.outputs["b01.lock"] == true)
        #expect(try rig.accessReasons() == [.awaitingMoreCards, .awaitingMoreCards, .granted])
    }
}

/// The same through the real accessd (real time: schedules that are on now, changed in the
/// roster while it runs).
@Suite("accessd with door-status plans and multi-card", .serialized, .timeLimit(.minutes(2)))
struct AccessdDoorPlanTests {
    @Test func accessdStartsANormallyOpenDoorOpenAndRelocksItWhenItsScheduleEnds() throws {
        let rig = try Rig(b01Door: "normally_open_schedule = \"lobby-hours\"")
        try rig.db.saveSchedule(try Schedule(name: "lobby-hours", specs: ["daily 00:00-24:00"]), isNew: true, operator: "t")
        let process = try rig.startAccessd()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        #expect(rig.eventually(10) { (try? rig.b01LockThroughAccessd()) == .int(1) }, "started inside the schedule: open")
        _ = try rig.control([("op", "door"), ("portal", "b01-door"), ("command", "always-closed"), ("operator", "t")])
        #expect(try rig.b01LockThroughAccessd() == .int(0), "the operator's always-closed wins")
        _ = try rig.control([("op", "door"), ("portal", "b01-door"), ("command", "normal"), ("operator", "t")])
        #expect(try rig.b01LockThroughAccessd() == .int(1), "normal: the plan again")

        // The schedule ends (edited to a minute that is not now): accessd relocks the door.
        let hour = Fixtures.shanghai.localTime(at: Int64(Date().timeIntervalSince1970)).secondOfDay / 3600
        let off = hour == 3 ? "daily 05:00-05:01" : "daily 03:00-03:01"
        try rig.db.saveSchedule(try Schedule(name: "lobby-hours", specs: [off]), isNew: false, operator: "t")
        #expect(rig.eventually(10) { (try? rig.b01LockThroughAccessd()) == .int(0) })
        rig.stopAccessd(process)
        let door = try rig.accessdEvents().filter { $0.type == .door && $0.detail.contains { $0.0 == "plan" } }.compactMap(\.reason)
        #expect(door == [.released, .relocked], "at start, and at the schedule's end (the operator's commands log their own)")
    }

    @Test func accessdOpensAFirstCardDoorForTheFirstManager() throws {
        let rig = try Rig(b01Door: "normally_open_schedule = \"all-day\"\nfirst_card_group = \"managers\"")
        try rig.db.saveSchedule(try Schedule(name: "all-day", specs: ["daily 00:00-24:00"]), isNew: true, operator: "t")
        try rig.db.saveGroup(AccessGroup(name: "managers", portals: ["b01-door"]), isNew: true, operator: "t")
        try rig.addSecondPerson(groups: ["managers"])
        let process = try rig.startAccessd()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        #expect(try rig.b01LockThroughAccessd() == .int(0), "a first-card door starts locked, even inside its schedule")
        let resident = try rig.control([("op", "sim.swipe"), ("reader", "reader-b01"), ("card", 6_553_701)])
        #expect(resident["decision"]?["reason"] == .string("granted"))
        #expect(rig.eventually(10) { (try? rig.b01LockThroughAccessd()) == .int(0) }, "relocked after the unlock time")
        let manager = try rig.control([("op", "sim.swipe"), ("reader", "reader-b01"), ("card", 6_553_702)])
        #expect(manager["decision"]?["reason"] == .string("granted") && manager["decision"]?["person_id"] == .string("P2"))
        #expect(try rig.b01LockThroughAccessd() == .int(1))
        rig.stopAccessd(process)
        let plan = try rig.accessdEvents().first { $0.detail.contains { $0.0 == "plan" && $0.1 == .string("first_card") } }
        #expect(plan?.reason == .released)
        #expect(plan?.detail.contains { $0.0 == "first_card_person" && $0.1 == .string("P2") } == true)
    }

    @Test func accessdOpensAMultiCardDoorForTheSecondPerson() throws {
        let rig = try Rig(b01Portal: "multi_card = 2")
        try rig.addSecondPerson()
        let process = try rig.startAccessd()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let first = try rig.control([("op", "sim.swipe"), ("reader", "reader-b01"), ("card", 6_553_701)])
        #expect(first["decision"]?["reason"] == .string("awaiting_more_cards") && first["decision"]?["granted"] == .bool(false))
        #expect(try rig.b01LockThroughAccessd() == .int(0), "one card opens nothing")
        let second = try rig.control([("op", "sim.swipe"), ("reader", "reader-b01"), ("card", 6_553_702)])
        #expect(second["decision"]?["reason"] == .string("granted"))
        #expect(try rig.b01LockThroughAccessd() == .int(1))
        rig.stopAccessd(process)
        let access = try rig.accessdEvents().filter { $0.type == .access }
        #expect(access.map(\.reason) == [.awaitingMoreCards, .granted])
        #expect(access.map(\.personID) == ["P1", "P2"])
    }
}
