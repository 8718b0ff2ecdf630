import AccessCore
import AccessTestSupport
import Testing

/// A site with one barrier lane on dry contacts, stepped by hand: relays `g.open`, `g.close`,
/// `g.stop`; inputs `g.loop`, `g.ir` (the beam), `g.up` and `g.down` (the limit switches).
struct ContactLaneRig {
    static let contacts = BarrierContacts(open: "g.open", close: "g.close", stop: "g.stop", loop: "g.loop", infrared: "g.ir",
                                          raised: "g.up", lowered: "g.down", pulseMillis: 500)
    var site: Site
    var now = SiteTime(mono: 1_000_000_000, wall: SiteRig.morning)

    init(closeDelaySeconds: Double = 1) {
        let portals = [Portal(id: "garage-out", kind: .barrier, direction: .out, fromArea: "community", toArea: "outside",
                              readers: ["lpr-garage"])]
        let rules = SiteRules(controllerID: "site-1", zone: SiteRig.zone, portals: portals)
        var b = RosterIndex.Builder(rules: rules)
        b.addHouse(id: "H1", building: "")
        b.addPerson(Person(id: "P1", houses: [HouseBinding(houseID: "H1", role: .owner)]))
        b.addCredential(Credential(kind: .plate, value: "京A12345", owner: .person("P1")))
        let lane = SiteLayout.Lane(portal: "garage-out", gate: .contacts(Self.contacts),
                                   config: BarrierLaneConfig(positionTimeoutSeconds: 8, closeDelaySeconds: closeDelaySeconds))
        site = Site(layout: SiteLayout(rules: rules, lanes: [lane], linkage: SiteLayout.Linkage(fire: ["fire"])), policy: AccessPolicy(rules: rules, roster: b.finish()),
                    clock: EventClock(lastLoggedMicros: 0, wall: now.wall, mono: now.mono))
        _ = site.step(.start(modes: [:]), at: now)
        // The board reports every input at start: the arm is down, the lane empty.
        for line in Self.contacts.inputs { _ = site.step(.input(line: line, active: line == "g.down"), at: now) }
    }

    mutating func step(_ input: SiteInput) -> [SiteEffect] { site.step(input, at: now) }

    mutating func wait(_ seconds: Double) -> [SiteEffect] {
        now = now.advanced(bySeconds: seconds)
        return step(.tick)
    }

    mutating func line(_ name: String, _ active: Bool) -> [SiteEffect] { step(.input(line: name, active: active)) }
}

extension Array where Element == SiteEffect {
    /// The relays driven, in order: `g.open+` closes the OPEN contact, `g.open-` lets it go.
    var relays: [String] {
        compactMap { if case .output(let line, let on) = $0 { return line + (on ? "+" : "-") } else { return nil } }
    }

    var laneReasons: [EventReason] {
        compactMap { if case .log(let e) = $0, e.type != .access { return e.reason } else { return nil } }
    }
}

@Suite("Barrier lanes on dry contacts")
struct DryContactLaneTests {
    /// One step of a script: what happens, and the relays it must drive.
    enum Step: Sendable, CustomStringConvertible {
        case plate, wait(Double), line(String, Bool), command(DoorCommand)

        var description: String {
            switch self {
            case .plate: return "plate"
            case .wait(let s): return "wait \(s)"
            case .line(let l, let v): return "\(l)=\(v ? 1 : 0)"
            case .command(let c): return c.rawValue
            }
        }
    }

    /// A car is let out: the OPEN pulse, its end, the arm up (limit switches), the car on the loop.
    static let raisedWithCarOnLoop: [(Step, [String])] = [
        (.plate, ["g.open+"]), (.wait(0.5), ["g.open-"]), (.line("g.down", false), []), (.line("g.up", true), []),
        (.line("g.loop", true), []),
    ]

    static let scripts: [(String, [(Step, [String])])] = [
        ("loop set: CLOSE is never pulsed, not even for an operator; loop cleared: CLOSE is pulsed after the delay",
         raisedWithCarOnLoop + [(.wait(30), []), (.command(.close), []), (.wait(30), []), (.line("g.loop", false), []),
                                (.wait(0.999), []), (.wait(0.001), ["g.close+"]), (.wait(0.5), ["g.close-"])]),
        ("a broken beam holds the CLOSE like the loop, with the loop clear",
         raisedWithCarOnLoop + [(.line("g.ir", true), []), (.line("g.loop", false), []), (.wait(30), []),
                                (.line("g.ir", false), []), (.wait(1), ["g.close+"])]),
        ("loop set during the CLOSE pulse: CLOSE is let go and OPEN pressed at once",
         raisedWithCarOnLoop + [(.line("g.loop", false), []), (.wait(1), ["g.close+"]), (.line("g.loop", true), ["g.close-", "g.open+"]),
                                (.wait(0.5), ["g.open-"])]),
        ("beam broken while the arm comes down after the pulse: OPEN is pressed",
         raisedWithCarOnLoop + [(.line("g.loop", false), []), (.wait(1), ["g.close+"]), (.wait(0.5), ["g.close-"]),
                                (.line("g.up", false), []), (.line("g.ir", true), ["g.open+"])]),
        ("a car back on the loop before the close delay ends cancels the close",
         raisedWithCarOnLoop + [(.line("g.loop", false), []), (.wait(0.5), []), (.line("g.loop", true), []), (.wait(30), []),
                                (.line("g.loop", false), []), (.wait(1), ["g.close+"])]),
        ("always-open presses OPEN once and never closes; normal leaves it for a grant's car",
         [(.command(.alwaysOpen), ["g.open+"]), (.wait(0.5), ["g.open-"]), (.line("g.loop", true), []), (.line("g.loop", false), []),
          (.wait(30), []), (.command(.normal), []), (.wait(30), [])]),
    ]

    @Test(arguments: scripts)
    func theLaneDrivesItsRelaysAsTheScriptSays(_ name: String, _ script: [(Step, [String])]) {
        var rig = ContactLaneRig()
        for (n, (step, expected)) in script.enumerated() {
            let effects: [SiteEffect]
            switch step {
            case .plate: effects = rig.step(.credential(reader: "lpr-garage", .plate("京A12345")))
            case .wait(let s): effects = rig.wait(s)
            case .line(let line, let active): effects = rig.line(line, active)
            case .command(let c): effects = rig.step(.portalCommand(portal: "garage-out", c, operator: "guard"))
            }
            #expect(effects.relays == expected, "\(name): step \(n) (\(step))")
        }
    }

    @Test func theLimitSwitchesAreTheArmsPositionAndTheirEvents() {
        var rig = ContactLaneRig()
        #expect(rig.site.lanes[0].machine.position == .closed)
        _ = rig.step(.credential(reader: "lpr-garage", .plate("京A12345")))
        _ = rig.wait(0.5)
        #expect(rig.line("g.down", false).laneReasons == [])
        #expect(rig.site.lanes[0].machine.position == .opening)
        #expect(rig.line("g.up", true).laneReasons == [.raised])
        #expect(rig.line("g.loop", true).laneReasons == [.vehicleOnLoop])
        #expect(rig.line("g.loop", false).laneReasons == [.vehiclePassed])
        let close = rig.wait(1)
        #expect(close.relays == ["g.close+"])
        _ = rig.wait(0.5)
        #expect(rig.line("g.up", false).laneReasons == [])
        #expect(rig.site.lanes[0].machine.position == .closing)
        #expect(rig.line("g.down", true).laneReasons == [.lowered])
        let reversed = ContactLaneRig.reversal()
        #expect(reversed.contains(.reversed), "\(reversed)")
    }

    @Test func noLimitSwitchNewsWithinTheTimeoutIsAFault() {
        var rig = ContactLaneRig()
        _ = rig.step(.credential(reader: "lpr-garage", .plate("京A12345")))
        _ = rig.wait(0.5)
        #expect(rig.wait(7.499).laneReasons == [])
        let fault = rig.wait(0.001)
        #expect(fault.laneReasons == [.barrierFault])
        #expect(fault.contains { if case .log(let e) = $0 { return e.type == .alarm && e.portal == "garage-out" } else { return false } })
        _ = rig.line("g.down", false)
        #expect(rig.line("g.up", true).laneReasons == [.faultCleared, .raised], "an arm that arrives late clears the fault")
    }

    @Test func aControlledStopLetsGoOfARunningPulse() {
        var rig = ContactLaneRig()
        #expect(rig.step(.credential(reader: "lpr-garage", .plate("京A12345"))).relays == ["g.open+"])
        #expect(rig.step(.stop).relays == ["g.open-"])
    }

    @Test func theFirePanelRaisesTheArmByItsOpenContactAndNothingClosesIt() {
        var rig = ContactLaneRig()
        let fire = rig.line("fire", true)
        #expect(fire.relays == ["g.open+"])
        #expect(fire.laneReasons == [.fireAlarm, .barrierFireRaise])
        _ = rig.wait(0.5)
        #expect(rig.step(.portalCommand(portal: "garage-out", .close, operator: "guard")).relays == [])
        _ = rig.line("g.loop", true)
        #expect(rig.line("g.loop", false).relays == [])
        #expect(rig.wait(30).relays == [])
    }

    @Test func randomLinesGrantsAndCommandsNeverPressCloseOnAVehicle() {
        var generator = SeededGenerator(seed: 13)
        var closes = 0
        var reversals = 0
        for _ in 0..<400 {
            var rig = ContactLaneRig(closeDelaySeconds: Double(Int.random(in: 0...2, using: &generator)))
            var levels: [String: Bool] = ["g.down": true]
            for _ in 0..<50 {
                let effects: [SiteEffect]
                switch Int.random(in: 0..<10, using: &generator) {
                case 0: effects = rig.step(.credential(reader: "lpr-garage", .plate("京A12345")))
                case 1: effects = rig.step(.portalCommand(portal: "garage-out", [.close, .open, .alwaysOpen, .normal, .alwaysClosed]
                            .randomElement(using: &generator)!, operator: "op"))
                case 2...4: effects = rig.wait(Double(Int.random(in: 1...3000, using: &generator)) / 1000)
                default:
                    let line = ["g.loop", "g.ir", "g.up", "g.down"].randomElement(using: &generator)!
                    levels[line] = !(levels[line] ?? false)
                    effects = rig.line(line, levels[line]!)
                }
                if effects.relays.contains("g.close+") {
                    closes += 1
                    #expect(levels["g.loop"] != true && levels["g.ir"] != true, "CLOSE pressed on a vehicle: \(effects.relays)")
                }
                if effects.laneReasons.contains(.reversed) { reversals += 1 }
                #expect(!(rig.site.lanes[0].contacts?.pulsing == "g.close" && (levels["g.loop"] == true || levels["g.ir"] == true)),
                        "CLOSE held down with a vehicle present")
            }
        }
        #expect(closes > 100 && reversals > 10, "the walk closed \(closes) times and reversed \(reversals) times")
    }
}

extension ContactLaneRig {
    /// A car that comes under the arm while CLOSE is pressed: the lane's events.
    static func reversal() -> [EventReason] {
        var rig = ContactLaneRig()
        _ = rig.step(.credential(reader: "lpr-garage", .plate("京A12345")))
        _ = rig.line("g.loop", true)
        _ = rig.line("g.loop", false)
        _ = rig.wait(1)
        return rig.line("g.loop", true).laneReasons
    }
}
