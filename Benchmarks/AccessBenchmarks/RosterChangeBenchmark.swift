// A fleet change set applied to the decision index in memory at 1,000,000 people and cards: one
// person's houses and status changed and a new card given (what `accessctl person edit` plus
// `card add` publish). The index is built as the store builds it (ids in order, found by binary
// search). After each change the new card is decided, so the benchmark cannot pass without the
// change having taken. The bar: ≤ 10 ms (this is the in-memory part; the SQLite commit of
// the change set, one fsync'd transaction, comes before it).
//
// Run: swift package --disable-sandbox benchmark --filter "Roster change.*"
import AccessCore
import AccessTestSupport
import Benchmark

func rosterChangeBenchmarks() {
    let rules = Fixtures.rules()
    Benchmark(
        "Roster change set applied in memory, one person, 1M credentials",
        configuration: .init(metrics: [.wallClock, .mallocCountTotal], timeUnits: .microseconds,
                             warmupIterations: 10, maxDuration: .seconds(10), maxIterations: 20_000)
    ) { (benchmark: Benchmark, held: HeldPolicy) in
        let at = Fixtures.at("2026-11-23T10:00")
        for _ in benchmark.scaledIterations {
            held.changes += 1
            let n = held.changes
            let id = "P" + SyntheticRoster.pad(n * 7 % 1_000_000, 7)
            let card = UInt64(50_000_000 + n)
            let delta: [RosterChange] = [
                .putPerson(Person(id: id, status: .active, houses: [HouseBinding(houseID: "H" + SyntheticRoster.pad(n % 1000, 6), role: n % 2 == 0 ? .owner : .family)])),
                .putCredential(Credential(kind: .card, value: String(card), owner: .person(id))),
            ]
            // In place, as the controller's site holds its only copy (a copy here would cost a full
            // copy of the index on the first change).
            let applied = held.policy.apply(delta)
            precondition(applied, "a person change needed a full rebuild")
            let decision = try? held.policy.decide(DecisionRequest(portal: "gate-in", credential: .card(card), at: at))
            precondition(decision?.granted == true, "the new card was not granted")
        }
    } setup: {
        var builder = RosterIndex.Builder(rules: rules, expectedPeople: 1_000_000, expectedCards: 1_000_000)
        for h in 0..<333_334 { builder.addHouse(id: "H" + SyntheticRoster.pad(h, 6), building: h % 2 == 0 ? "B01" : "B02") }
        for i in 0..<1_000_000 {
            let id = "P" + SyntheticRoster.pad(i, 7)
            builder.addPerson(id: id, status: .active, validFrom: nil, validUntil: nil,
                              houses: [HouseBinding(houseID: "H" + SyntheticRoster.pad(i / 3, 6), role: .owner)], groups: [])
            builder.addCredential(kind: .card, value: String(1_000_000 + i), owner: .person(id), status: .active)
        }
        return HeldPolicy(AccessPolicy(rules: rules, roster: builder.finish()))
    }
}

/// The policy kept across the benchmark's samples, changed in place.
final class HeldPolicy: @unchecked Sendable {
    var policy: AccessPolicy
    var changes = 0
    init(_ policy: AccessPolicy) { self.policy = policy }
}
