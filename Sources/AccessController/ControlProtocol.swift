import AccessCore
import AccessDevices

/// The requests the control socket accepts (one JSON object each, `op` naming it):
///
/// - `{"op":"status"}`
/// - `{"op":"door","portal":P,"command":open|close|always-open|always-closed|normal|reset-alarm,"operator":NAME}`
/// - `{"op":"sim.swipe","reader":R,"card":N}`, `{"op":"sim.plate","lane":L,"plate":P}`,
///   `{"op":"sim.input","line":L,"value":0|1}`, `{"op":"sim.outputs"}` (simulated board only)
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
            return [
                ("controller", .string(config.controller.id)),
                ("decisions", .int(Int64(c.decisions))), ("granted", .int(Int64(c.granted))),
                ("garbled_frames", .int(Int64(c.garbled))), ("gpio_overruns", .int(Int64(c.overruns))),
                ("doors", .array(doorStates.map { d in
                    .object([("id", .string(d.id)), ("mode", .string(d.mode.rawValue)), ("released", .bool(d.released)), ("fire", .bool(d.fire))])
                })),
            ]
        case "door":
            guard let command = DoorCommand(rawValue: try string("command")) else {
                throw ControlError.malformed("command must be one of \(DoorCommand.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let state = try door(portal: try string("portal"), command: command, operator: try string("operator"))
            return state.map { ($0.key, JSON.bool($0.value)) }
        case "sim.swipe":
            let reader = try string("reader")
            let card = try int("card")
            guard card > 0 else { throw ControlError.malformed("card must be positive") }
            try simulated().swipe(reader: reader, card: UInt64(card))
            return decisionJSON(lastDecision(at: reader))
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
