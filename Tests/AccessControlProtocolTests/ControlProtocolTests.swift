import AccessControlProtocol
import AccessCore
import Testing

@Suite("Control protocol")
struct ControlProtocolTests {
    /// Each request and the exact line accessctl has always sent for it.
    static let wire: [(ControlRequest, String)] = [
        (.status, #"{"op":"status"}"#),
        (.metrics, #"{"op":"metrics"}"#),
        (.door(portal: "b01-door", command: .alwaysClosed, operator: "zhang"),
         #"{"op":"door","portal":"b01-door","command":"always-closed","operator":"zhang"}"#),
        (.fence(portal: "fence-zone-3", command: .reset, operator: "guard"),
         #"{"op":"fence","portal":"fence-zone-3","command":"reset","operator":"guard"}"#),
        (.reader(reader: "reader-north-in", command: .reset, operator: "guard"),
         #"{"op":"reader","reader":"reader-north-in","command":"reset","operator":"guard"}"#),
        (.antiPassbackReset(person: "P0001", operator: "guard"), #"{"op":"apb.reset","person":"P0001","operator":"guard"}"#),
        (.simSwipe(reader: "reader-b01", card: 6_553_701), #"{"op":"sim.swipe","reader":"reader-b01","card":6553701}"#),
        (.simKeys(reader: "reader-b01", keys: [.digit(2), .digit(4), .star, .hash]), #"{"op":"sim.keys","reader":"reader-b01","keys":"24*#"}"#),
        (.simPlate(lane: "lpr-lane-in", plate: "京A12345"), #"{"op":"sim.plate","lane":"lpr-lane-in","plate":"京A12345"}"#),
        (.simQR(reader: "qr-north-in", code: "CA1.V1.1795420800.00ff"), #"{"op":"sim.qr","reader":"qr-north-in","code":"CA1.V1.1795420800.00ff"}"#),
        (.simInput(line: "fire.alarm", active: true), #"{"op":"sim.input","line":"fire.alarm","value":1}"#),
        (.simOutputs, #"{"op":"sim.outputs"}"#),
        (.simLoop(lane: "lane-in", occupied: false), #"{"op":"sim.loop","lane":"lane-in","value":0}"#),
        (.simFence(device: "fence-host-1", zone: 3, alarm: .broken, on: true),
         #"{"op":"sim.fence","device":"fence-host-1","zone":3,"alarm":"broken","value":1}"#),
        (.simDevice(device: "gate-lane-in", online: false), #"{"op":"sim.device","device":"gate-lane-in","online":0}"#),
    ]

    @Test func everyRequestKeepsItsWireFormatBothWays() throws {
        #expect(Set(Self.wire.map { $0.0.op }) == Set(ControlRequest.Op.allCases), "every op is in the table")
        for (request, line) in Self.wire {
            #expect(request.json.rendered() == line)
            let parsed = try #require(JSON.parse(line))
            #expect(try ControlRequest(json: parsed) == request)
        }
    }

    @Test(arguments: [
        (#"{"op":"reboot"}"#, #"malformed request: unknown op "reboot""#),
        (#"{"portal":"x"}"#, #"malformed request: "op" must be a non-empty string"#),
        (#"{"op":"door","portal":"p","command":"explode","operator":"o"}"#,
         "malformed request: command must be one of open, close, always-open, always-closed, normal, reset-alarm"),
        (#"{"op":"fence","portal":"p","command":"open","operator":"o"}"#, "malformed request: command must be one of arm, disarm, reset"),
        (#"{"op":"sim.swipe","reader":"r","card":0}"#, "malformed request: card must be positive"),
        (#"{"op":"sim.swipe","reader":"r","card":"1"}"#, #"malformed request: "card" must be an integer"#),
        (#"{"op":"sim.keys","reader":"r","keys":"12a"}"#, #"malformed request: keys are digits, * and #, not "a""#),
        (#"{"op":"sim.input","line":"l","value":2}"#, "malformed request: value must be 0 or 1"),
        (#"{"op":"sim.fence","device":"d","zone":1,"alarm":"comm_fail","value":1}"#,
         "malformed request: alarm must be one of broken, short, touch, tamper, power"),
        (#"{"op":"sim.device","device":"d","online":3}"#, "malformed request: online must be 0 or 1"),
    ])
    func aMalformedRequestIsRefusedNamingTheField(line: String, message: String) throws {
        let json = try #require(JSON.parse(line))
        #expect(throws: ControlProtocolError.self) { try ControlRequest(json: json) }
        do {
            _ = try ControlRequest(json: json)
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func repliesRoundTripForTheirOp() throws {
        let status = ControlStatus(
            controller: "xfl-north-1", decisions: 4, granted: 2, garbledFrames: 0, gpioOverruns: 0, eventStoreFailures: 1,
            swipeToRelay: .init(count: 1, p50: 12, p99: 31, max: 40),
            doors: [.init(id: "b01-door", mode: .alwaysClosed, released: false, fire: false)],
            lanes: [.init(portal: "lane-in", position: .closed, loopOccupied: true, locked: false)],
            fenceZones: [.init(portal: "fence-zone-3", armed: true, latched: ["broken"])])
        let cases: [(ControlReply, ControlRequest.Op)] = [
            (.status(status), .status),
            (.metrics(text: "access_roster_people 1\n"), .metrics),
            (.portal(PortalState(["released": true])), .door),
            (.portal(PortalState(armed: true, alarm: false)), .fence),
            (.decision(ControlDecision(granted: true, reason: .granted, personID: "P1", houseID: "H1", portal: "b01-door")), .simSwipe),
            (.decision(nil), .simKeys),
            (.outputs(["b01.lock": true, "siren": false]), .simOutputs),
            (.done, .simLoop),
        ]
        for (reply, op) in cases {
            let line = reply.json.rendered()
            #expect(try ControlReply(json: try #require(JSON.parse(line)), for: op) == reply, "\(line)")
        }
        #expect(ControlReply.status(status).json["swipe_to_relay_micros"]?["p99"] == .int(31))
        #expect(ControlReply.outputs(["b": true, "a": false]).json.rendered() == #"{"ok":true,"outputs":{"a":0,"b":1}}"#)
        #expect(ControlReply.portal(PortalState(armed: false, alarm: true)).json.rendered() == #"{"ok":true,"armed":false,"alarm":true}"#)
    }

    @Test func aRefusalIsThrownWithAccessdsMessage() throws {
        let json = ControlReply.failure("portal nope has no door, lane or fence zone")
        #expect(throws: ControlProtocolError.refused("portal nope has no door, lane or fence zone")) {
            try ControlReply(json: json, for: .door)
        }
    }

    @Test func aSocketNobodyListensOnIsReportedAsUnreachable() {
        #expect(throws: ControlProtocolError.self) { try ControlClient.send(.status, to: "/nonexistent/ctl.sock") }
        let long = "/" + String(repeating: "x", count: 200)
        #expect(throws: ControlProtocolError.self) { try ControlClient.send(.status, to: long) }
    }
}
