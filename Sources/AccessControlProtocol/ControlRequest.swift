import AccessCore

/// A request to the running accessd over its control socket. On the wire it is one JSON object
/// on a line, `op` naming the case:
///
/// - `{"op":"status"}`, `{"op":"metrics"}`
/// - `{"op":"door","portal":P,"command":open|close|always-open|always-closed|normal|reset-alarm,"operator":NAME}`
///   (a door's or a barrier lane's portal; `reset-alarm` also for a fence zone)
/// - `{"op":"fence","portal":P,"command":arm|disarm|reset,"operator":NAME}`
/// - `{"op":"reader","reader":R,"command":reset,"operator":NAME}` (a reader's latched tamper alarm)
/// - `{"op":"apb.reset","person":P,"operator":NAME}` (a person's anti-passback state, every portal)
/// - `{"op":"sim.swipe","reader":R,"card":N}`, `{"op":"sim.keys","reader":R,"keys":"1234#"}`,
///   `{"op":"sim.qr","reader":R,"code":C}`, `{"op":"sim.plate","lane":L,"plate":P}`, `{"op":"sim.input","line":L,"value":0|1}`,
///   `{"op":"sim.outputs"}` (simulated board only);
///   `{"op":"sim.loop","lane":L,"value":0|1}` (or a dry-contact lane's loop input on the simulated board), `{"op":"sim.fence","device":D,"zone":N,"alarm":A,"value":0|1}`,
///   `{"op":"sim.device","device":D,"online":0|1}` (devices on a simulated Modbus line)
///
/// `operator` is only a note: accessd records a command as the Unix user the kernel says is
/// calling (`SO_PEERCRED`), with the note beside it when it names someone else.
public enum ControlRequest: Sendable, Equatable {
    /// Counters, latency and every door, lane and fence zone (`ControlStatus`).
    case status
    /// The Prometheus text.
    case metrics
    /// An operator's command to a door or barrier lane (or `reset-alarm` to a fence zone);
    /// `operator` is a note beside the caller's Unix user.
    case door(portal: String, command: DoorCommand, operator: String)
    /// An operator's command to a fence zone.
    case fence(portal: String, command: FenceCommand, operator: String)
    /// An operator's command to a reader (its tamper alarm reset).
    case reader(reader: String, command: ReaderCommand, operator: String)
    /// An operator clears a person's anti-passback state at every portal.
    case antiPassbackReset(person: String, operator: String)
    /// A card at a reader of the simulated board (a Wiegand frame through the real decoder).
    case simSwipe(reader: String, card: UInt64)
    /// Keys on a reader's keypad of the simulated board.
    case simKeys(reader: String, keys: [KeypadKey])
    /// A code scanned at a QR reader of the simulated board (one line through the real assembler).
    case simQR(reader: String, code: String)
    /// A plate camera's read at a lane (by its portal or camera name).
    case simPlate(lane: String, plate: String)
    /// A named input line of the simulated board.
    case simInput(line: String, active: Bool)
    /// Every output line of the simulated board.
    case simOutputs
    /// A vehicle on or off a lane's loop (simulated gate).
    case simLoop(lane: String, occupied: Bool)
    /// A fence alarm raised or cleared at a simulated host's zone.
    case simFence(device: String, zone: Int, alarm: FenceAlarmKind, on: Bool)
    /// A simulated Modbus device stops or resumes answering.
    case simDevice(device: String, online: Bool)

    /// The wire's `op` of each case.
    public enum Op: String, Sendable, CaseIterable {
        case status, metrics, door, fence, reader
        case antiPassbackReset = "apb.reset"
        case simSwipe = "sim.swipe"
        case simKeys = "sim.keys"
        case simQR = "sim.qr"
        case simPlate = "sim.plate"
        case simInput = "sim.input"
        case simOutputs = "sim.outputs"
        case simLoop = "sim.loop"
        case simFence = "sim.fence"
        case simDevice = "sim.device"
    }

    /// The alarms a simulated fence host can raise: the host's own, not the controller's `comm_fail`.
    public static let simulatedFenceAlarms = FenceAlarmKind.allCases.filter { $0 != .commFail }

    public var op: Op {
        switch self {
        case .status: .status
        case .metrics: .metrics
        case .door: .door
        case .fence: .fence
        case .reader: .reader
        case .antiPassbackReset: .antiPassbackReset
        case .simSwipe: .simSwipe
        case .simKeys: .simKeys
        case .simQR: .simQR
        case .simPlate: .simPlate
        case .simInput: .simInput
        case .simOutputs: .simOutputs
        case .simLoop: .simLoop
        case .simFence: .simFence
        case .simDevice: .simDevice
        }
    }

    /// The request as it goes on the wire.
    public var json: JSON {
        var fields: [(String, JSON)] = [("op", .string(op.rawValue))]
        switch self {
        case .status, .metrics, .simOutputs:
            break
        case .door(let portal, let command, let who):
            fields += [("portal", .string(portal)), ("command", .string(command.rawValue)), ("operator", .string(who))]
        case .fence(let portal, let command, let who):
            fields += [("portal", .string(portal)), ("command", .string(command.rawValue)), ("operator", .string(who))]
        case .reader(let reader, let command, let who):
            fields += [("reader", .string(reader)), ("command", .string(command.rawValue)), ("operator", .string(who))]
        case .antiPassbackReset(let person, let who):
            fields += [("person", .string(person)), ("operator", .string(who))]
        case .simSwipe(let reader, let card):
            fields += [("reader", .string(reader)), ("card", .int(Int64(clamping: card)))]
        case .simKeys(let reader, let keys):
            fields += [("reader", .string(reader)), ("keys", .string(Self.text(keys)))]
        case .simQR(let reader, let code):
            fields += [("reader", .string(reader)), ("code", .string(code))]
        case .simPlate(let lane, let plate):
            fields += [("lane", .string(lane)), ("plate", .string(plate))]
        case .simInput(let line, let active):
            fields += [("line", .string(line)), ("value", .int(active ? 1 : 0))]
        case .simLoop(let lane, let occupied):
            fields += [("lane", .string(lane)), ("value", .int(occupied ? 1 : 0))]
        case .simFence(let device, let zone, let alarm, let on):
            fields += [("device", .string(device)), ("zone", .int(zone)), ("alarm", .string(alarm.rawValue)), ("value", .int(on ? 1 : 0))]
        case .simDevice(let device, let online):
            fields += [("device", .string(device)), ("online", .int(online ? 1 : 0))]
        }
        return .object(fields)
    }

    /// Reads a request off the wire; the error names the first field that is missing or wrong.
    public init(json: JSON) throws(ControlProtocolError) {
        let fields = Fields(json)
        let name = try fields.string("op")
        guard let op = Op(rawValue: name) else { throw .malformed("unknown op \"\(name)\"") }
        switch op {
        case .status: self = .status
        case .metrics: self = .metrics
        case .simOutputs: self = .simOutputs
        case .door:
            let text = try fields.string("command")
            guard let command = DoorCommand(rawValue: text) else {
                throw .malformed("command must be one of \(DoorCommand.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            self = .door(portal: try fields.string("portal"), command: command, operator: try fields.string("operator"))
        case .fence:
            let text = try fields.string("command")
            guard let command = FenceCommand(rawValue: text) else {
                throw .malformed("command must be one of \(FenceCommand.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            self = .fence(portal: try fields.string("portal"), command: command, operator: try fields.string("operator"))
        case .reader:
            let text = try fields.string("command")
            guard let command = ReaderCommand(rawValue: text) else {
                throw .malformed("command must be one of \(ReaderCommand.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            self = .reader(reader: try fields.string("reader"), command: command, operator: try fields.string("operator"))
        case .antiPassbackReset:
            self = .antiPassbackReset(person: try fields.string("person"), operator: try fields.string("operator"))
        case .simSwipe:
            let reader = try fields.string("reader")
            let card = try fields.int("card")
            guard card > 0 else { throw .malformed("card must be positive") }
            self = .simSwipe(reader: reader, card: UInt64(card))
        case .simKeys:
            let reader = try fields.string("reader")
            self = .simKeys(reader: reader, keys: try Self.keys(try fields.string("keys")))
        case .simQR:
            self = .simQR(reader: try fields.string("reader"), code: try fields.string("code"))
        case .simPlate:
            self = .simPlate(lane: try fields.string("lane"), plate: try fields.string("plate"))
        case .simInput:
            let value = try fields.bit("value")
            self = .simInput(line: try fields.string("line"), active: value)
        case .simLoop:
            let lane = try fields.string("lane")
            self = .simLoop(lane: lane, occupied: try fields.bit("value"))
        case .simFence:
            let device = try fields.string("device")
            let on = try fields.bit("value")
            let text = try fields.string("alarm")
            guard let alarm = FenceAlarmKind(rawValue: text), Self.simulatedFenceAlarms.contains(alarm) else {
                throw .malformed("alarm must be one of \(Self.simulatedFenceAlarms.map(\.rawValue).joined(separator: ", "))")
            }
            let zone = try fields.int("zone")
            guard let small = Int(exactly: zone) else { throw .malformed("zone is out of range") }
            self = .simFence(device: device, zone: small, alarm: alarm, on: on)
        case .simDevice:
            let device = try fields.string("device")
            self = .simDevice(device: device, online: try fields.bit("online"))
        }
    }

    /// Keypad keys from their text: digits, `*` (clear) and `#` (submit).
    public static func keys(_ text: String) throws(ControlProtocolError) -> [KeypadKey] {
        var keys: [KeypadKey] = []
        for c in text {
            switch c {
            case "0"..."9": keys.append(.digit(UInt8(c.asciiValue! - UInt8(ascii: "0"))))
            case "*": keys.append(.star)
            case "#": keys.append(.hash)
            default: throw .malformed("keys are digits, * and #, not \"\(c)\"")
            }
        }
        return keys
    }

    static func text(_ keys: [KeypadKey]) -> String {
        String(keys.map { key -> Character in
            switch key {
            case .digit(let d): Character(Unicode.Scalar(UInt8(ascii: "0") + d))
            case .star: "*"
            case .hash: "#"
            }
        })
    }
}

/// Typed reads of a request's or reply's fields, each failure naming the field.
struct Fields {
    let json: JSON
    init(_ json: JSON) { self.json = json }

    func string(_ key: String) throws(ControlProtocolError) -> String {
        guard case .string(let v)? = json[key], !v.isEmpty else { throw .malformed("\"\(key)\" must be a non-empty string") }
        return v
    }

    func int(_ key: String) throws(ControlProtocolError) -> Int64 {
        guard case .int(let v)? = json[key] else { throw .malformed("\"\(key)\" must be an integer") }
        return v
    }

    func bit(_ key: String) throws(ControlProtocolError) -> Bool {
        let v = try int(key)
        guard v == 0 || v == 1 else { throw .malformed("\(key) must be 0 or 1") }
        return v == 1
    }

    func bool(_ key: String) throws(ControlProtocolError) -> Bool {
        guard case .bool(let v)? = json[key] else { throw .malformed("\"\(key)\" must be true or false") }
        return v
    }

    func optionalBool(_ key: String) -> Bool? {
        if case .bool(let v)? = json[key] { return v }
        return nil
    }
}
