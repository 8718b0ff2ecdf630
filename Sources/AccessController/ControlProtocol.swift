import AccessCore
import AccessDevices

/// The requests the control socket accepts (one JSON object each, `op` naming it):
///
/// - `{"op":"status"}`, `{"op":"metrics"}` (the Prometheus text as `"text"`)
/// - `{"op":"door","portal":P,"command":open|close|always-open|always-closed|normal|reset-alarm,"operator":NAME}`
///   (a door's or a barrier lane's portal; `reset-alarm` also for a fence zone)
/// - `{"op":"fence","portal":P,"command":arm|disarm|reset,"operator":NAME}`
/// - `{"op":"sim.swipe","reader":R,"card":N}`, `{"op":"sim.keys","reader":R,"keys":"1234#"}`, `{"op":"sim.plate","lane":L,"plate":P}`,
///   `{"op":"sim.input","line":L,"value":0|1}`, `{"op":"sim.outputs"}` (simulated board only);
///   `{"op":"sim.loop","lane":L,"value":0|1}`, `{"op":"sim.fence","device":D,"zone":N,"alarm":A,"value":0|1}`,
///   `{"op":"sim.device","device":D,"online":0|1}` (devices on a simulated Modbus line)
///
/// Replies carry `"ok": true` and the result, or `"ok": false` and `"error"`.
extension Controller {
    public func handleControl(_ request: JSON) -> JSON {
        do {
            return .object([("ok", true)] + (try perform(request)))
        } catch {
            return .object([("ok", false), ("error", .string("\(error)"))])
        }
    }

    private func perform(_ request: JSON) throws -> [(String, JSON)] {
        func string(_ key: String) throws -> String {
            guard case .string(let v)? = request[key], !v.isEmpty else { throw ControlError.malformed("\"\(key)\" must be a non-empty string") }
            return v
        }
        func int(_ key: String) throws -> Int64 {
            guard case .int(let v)? = request[key] else { throw ControlError.malformed("\"\(key)\" must be an integer") }
            return v
        }
        func simulated() throws -> SimulatedBoard {
            guard let board = attachedBoard as? SimulatedBoard else {
                throw ControlError.unknown("accessd is driving real hardware, not the simulated board")
            }
            return board
        }
        switch try string("op") {
        case "status":
            let c = counters
            let latency = metrics.swipeToRelay
            return [
                ("controller", .string(config.controller.id)),
                ("decisions", .int(Int64(c.decisions))), ("granted", .int(Int64(c.granted))),
                ("garbled_frames", .int(Int64(c.garbled))), ("gpio_overruns", .int(Int64(c.overruns))),
                ("event_store_failures", .int(Int64(storeFailures))),
                ("swipe_to_relay_micros", .object([
                    ("count", .int(Int64(latency.count))), ("p50", .int(Int64(latency.p50))),
                    ("p99", .int(Int64(latency.p99))), ("max", .int(Int64(latency.max))),
                ])),
                ("doors", .array(doorStates.map { d in
                    .object([("id", .string(d.id)), ("mode", .string(d.mode.rawValue)), ("released", .bool(d.released)), ("fire", .bool(d.fire))])
                })),
                ("lanes", .array(fieldStates.lanes.map { l in
                    .object([("portal", .string(l.portal)), ("position", .string(l.position)), ("loop_occupied", .bool(l.loop)), ("locked", .bool(l.locked))])
                })),
                ("fence_zones", .array(fieldStates.zones.map { z in
                    .object([("portal", .string(z.portal)), ("armed", .bool(z.armed)), ("latched", .strings(z.latched))])
                })),
            ]
        case "metrics":
            return [("text", .string(metrics.render()))]
        case "door":
            guard let command = DoorCommand(rawValue: try string("command")) else {
                throw ControlError.malformed("command must be one of \(DoorCommand.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let state = try door(portal: try string("portal"), command: command, operator: try string("operator"))
            return state.map { ($0.key, JSON.bool($0.value)) }
        case "fence":
            guard let command = FenceCommand(rawValue: try string("command")) else {
                throw ControlError.malformed("command must be one of \(FenceCommand.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let state = try fence(portal: try string("portal"), command: command, operator: try string("operator"))
            return state.map { ($0.key, JSON.bool($0.value)) }
        case "sim.loop":
            let lane = try string("lane")
            let value = try int("value")
            guard value == 0 || value == 1 else { throw ControlError.malformed("value must be 0 or 1") }
            // The lane's portal or any of its readers (the plate camera's name).
            let portal = config.portals.first { $0.id == lane || $0.readers.contains(lane) }?.id
            guard let device = config.barriers.first(where: { $0.portal == portal })?.device else {
                throw ControlError.unknown("no barrier lane \(lane)")
            }
            guard let gate = fieldDevices?.simulatedGates[device] else { throw ControlError.unknown("the gate of \(lane) is not simulated") }
            gate.setLoop(occupied: value == 1)
            return []
        case "sim.fence":
            let device = try string("device")
            let value = try int("value")
            guard value == 0 || value == 1 else { throw ControlError.malformed("value must be 0 or 1") }
            guard let alarm = FenceAlarm(rawValue: try string("alarm")) else {
                throw ControlError.malformed("alarm must be one of \(FenceAlarm.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let host = fieldDevices?.simulatedHosts[device] else { throw ControlError.unknown("no simulated fence host \(device)") }
            try host.setAlarm(alarm, zone: Int(try int("zone")), on: value == 1)
            return []
        case "sim.device":
            let device = try string("device")
            let online = try int("online")
            guard online == 0 || online == 1 else { throw ControlError.malformed("online must be 0 or 1") }
            if let gate = fieldDevices?.simulatedGates[device] {
                gate.setOffline(online == 0)
            } else if let host = fieldDevices?.simulatedHosts[device] {
                host.setOffline(online == 0)
            } else {
                throw ControlError.unknown("no simulated device \(device)")
            }
            return []
        case "sim.swipe":
            let reader = try string("reader")
            let card = try int("card")
            guard card > 0 else { throw ControlError.malformed("card must be positive") }
            try simulated().swipe(reader: reader, card: UInt64(card))
            return decisionJSON(lastDecision(at: reader))
        case "sim.keys":
            let reader = try string("reader")
            var keys: [KeypadKey] = []
            for c in try string("keys") {
                switch c {
                case "0"..."9": keys.append(.digit(UInt8(c.asciiValue! - UInt8(ascii: "0"))))
                case "*": keys.append(.star)
                case "#": keys.append(.hash)
                default: throw ControlError.malformed("keys are digits, * and #, not \"\(c)\"")
                }
            }
            try simulated().keys(reader: reader, keys)
            return decisionJSON(keys.last == .hash ? lastDecision(at: reader) : nil)
        case "sim.plate":
            let lane = try string("lane")
            guard let decision = plate(lane: lane, plate: try string("plate")) else {
                throw ControlError.unknown("no portal has a reader or lane named \(lane)")
            }
            return decisionJSON(decision)
        case "sim.input":
            let value = try int("value")
            guard value == 0 || value == 1 else { throw ControlError.malformed("value must be 0 or 1") }
            try simulated().setInput(try string("line"), active: value == 1)
            return []
        case "sim.outputs":
            let outputs = try simulated().outputs
            return [("outputs", .object(outputs.keys.sorted().map { ($0, JSON.int(outputs[$0] == true ? 1 : 0)) }))]
        case let other:
            throw ControlError.malformed("unknown op \"\(other)\"")
        }
    }

    private func decisionJSON(_ d: Decision?) -> [(String, JSON)] {
        guard let d else { return [("decision", .null)] }
        return [("decision", .object([
            ("granted", .bool(d.granted)), ("reason", .string(d.reason.rawValue)), ("person_id", .string(d.personID)),
            ("house_id", .string(d.houseID)), ("portal", .string(d.portal)),
        ]))]
    }
}
