import AccessController
import AccessCore
import ArgumentParser

extension Site {
    /// Sends a request to the running accessd and returns its reply, or throws its error.
    func control(_ request: JSON) throws -> JSON {
        guard let socket = controlSocket else {
            throw CLIError("this command talks to accessd: give --config with a [control] socket")
        }
        let reply = try ControlClient.send(request, to: socket)
        guard reply["ok"] == .bool(true) else {
            if case .string(let message)? = reply["error"] { throw CLIError(message) }
            throw CLIError("accessd refused the request")
        }
        return reply
    }
}

extension DoorCommand: ExpressibleByArgument {}

struct DoorControlCommand: SiteCommand {
    static let configuration = CommandConfiguration(
        commandName: "door",
        abstract: "Command a door through the running accessd (recorded in the audit log with the operator).",
        discussion: """
            COMMAND: open (a momentary release), close, always-open, always-closed, normal, reset-alarm.
            Examples:
              accessctl door open gate-north-in
              accessctl door always-closed b01-door --operator zhang
              accessctl door reset-alarm gate-north-in
            """
    )
    @OptionGroup var global: GlobalOptions
    @Argument(help: "open, close, always-open, always-closed, normal or reset-alarm.") var command: DoorCommand
    @Argument(help: "The portal whose door to command.") var portal: String

    func run(site: Site) throws {
        let reply = try site.control(.object([("op", "door"), ("portal", .string(portal)), ("command", .string(command.rawValue)),
                                              ("operator", .string(site.operatorName))]))
        if site.json { return Say.json(reply) }
        let state: String
        if let released = reply["released"] {
            state = "lock \(released == .bool(true) ? "released" : "locked")"
        } else if let locked = reply["locked"] {
            state = "barrier \(locked == .bool(true) ? "locked in place" : "in normal operation")"
        } else {
            state = "fence zone \(reply["armed"] == .bool(true) ? "armed" : "disarmed")"
        }
        Say.line("\(portal): \(command.rawValue) done; \(state)")
    }
}

struct StatusCommand: SiteCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "The running accessd: decisions, garbled frames, swipe → relay latency, doors."
    )
    @OptionGroup var global: GlobalOptions

    func run(site: Site) throws {
        var reply = try site.control(.object([("op", "status")]))
        if site.json {
            if case .object(let fields) = reply { reply = .object(fields.filter { $0.0 != "ok" }) }
            return Say.json(reply)
        }
        func int(_ v: JSON?) -> Int64 { v?.intValue ?? 0 }
        let latency = reply["swipe_to_relay_micros"]
        Say.line("controller \(reply["controller"]?.stringValue ?? "?")")
        Say.line("decisions \(int(reply["decisions"])), granted \(int(reply["granted"])), garbled frames \(int(reply["garbled_frames"])), GPIO overruns \(int(reply["gpio_overruns"])), event-store retries \(int(reply["event_store_failures"]))")
        Say.line("swipe → relay over the last \(int(latency?["count"])) grants: p50 \(int(latency?["p50"])) µs, p99 \(int(latency?["p99"])) µs, max \(int(latency?["max"])) µs")
        if case .array(let doors)? = reply["doors"] {
            for door in doors {
                let id = door["id"]?.stringValue ?? "?"
                let mode = door["mode"]?.stringValue ?? "?"
                Say.line("door \(id): \(mode), \(door["released"] == .bool(true) ? "released" : "locked")\(door["fire"] == .bool(true) ? ", fire release latched" : "")")
            }
        }
        if case .array(let lanes)? = reply["lanes"] {
            for lane in lanes {
                Say.line("lane \(lane["portal"]?.stringValue ?? "?"): arm \(lane["position"]?.stringValue ?? "?")\(lane["loop_occupied"] == .bool(true) ? ", vehicle on loop" : "")\(lane["locked"] == .bool(true) ? ", locked" : "")")
            }
        }
        if case .array(let zones)? = reply["fence_zones"] {
            for zone in zones {
                var latched: [String] = []
                if case .array(let items)? = zone["latched"] { latched = items.compactMap(\.stringValue) }
                Say.line("fence \(zone["portal"]?.stringValue ?? "?"): \(zone["armed"] == .bool(true) ? "armed" : "disarmed")\(latched.isEmpty ? "" : ", ALARM " + latched.joined(separator: ", "))")
            }
        }
    }
}

struct MetricsCommand: SiteCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "The running accessd's metrics in the Prometheus text format."
    )
    @OptionGroup var global: GlobalOptions

    func run(site: Site) throws {
        let reply = try site.control(.object([("op", "metrics")]))
        guard let text = reply["text"]?.stringValue else { throw CLIError("accessd sent no metrics") }
        Console.current.out(text)
    }
}

struct SimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Play the hardware of accessd's simulated board: swipe cards, read plates, set inputs, see outputs.",
        discussion: """
            Examples:
              accessctl sim swipe reader-b01 6553701
              accessctl sim keys reader-b01 '246810#'   (a PIN on the reader's keypad)
              accessctl sim plate lpr-lane-in 京A12345
              accessctl sim input fire.alarm 1
              accessctl sim outputs --json
              accessctl sim loop lane-in 1            (a vehicle on the lane's loop)
              accessctl sim fence fence-host-1 3 broken 1
              accessctl sim device barrier-lane-in offline
            """,
        subcommands: [Swipe.self, Keys.self, Plate.self, Input.self, Outputs.self, Loop.self, Fence.self, Device.self]
    )

    static func report(_ reply: JSON, site: Site) {
        if site.json { return Say.json(reply) }
        guard case .object? = reply["decision"], let d = reply["decision"] else { return Say.line("no decision (reader not bound to a portal)") }
        let granted = d["granted"] == .bool(true)
        let reason = d["reason"]?.stringValue ?? "?"
        let person = d["person_id"]?.stringValue.map { " person \($0)" } ?? ""
        Say.line("\(granted ? "GRANTED" : "DENIED"): \(reason)\(person)")
    }

    struct Swipe: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Present a card at a reader (a Wiegand frame through the real decoder).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The reader name (see `accessctl portal list`).") var reader: String
        @Argument(help: "The card number.") var card: String

        func run(site: Site) throws {
            let number: UInt64
            do { number = try CredentialValue.card(card) } catch { throw ValidationError(error.description) }
            SimCommand.report(try site.control(.object([("op", "sim.swipe"), ("reader", .string(reader)), ("card", .int(Int64(clamping: number)))])), site: site)
        }
    }

    struct Keys: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Press keys on a reader's keypad (digits, * clears, # submits the PIN).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The reader name.") var reader: String
        @Argument(help: "Keys, e.g. '1234#'.") var keys: String

        func run(site: Site) throws {
            SimCommand.report(try site.control(.object([("op", "sim.keys"), ("reader", .string(reader)), ("keys", .string(keys))])), site: site)
        }
    }

    struct Plate: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Send a plate read to a barrier lane.")
        @OptionGroup var global: GlobalOptions
        @Argument var lane: String
        @Argument var plate: String

        func run(site: Site) throws {
            SimCommand.report(try site.control(.object([("op", "sim.plate"), ("lane", .string(lane)), ("plate", .string(plate))])), site: site)
        }
    }

    struct Input: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Set a named input line: 1 active (door open, button pressed, fire), 0 not.")
        @OptionGroup var global: GlobalOptions
        @Argument var line: String
        @Argument var value: Int

        func validate() throws { if value != 0 && value != 1 { throw ValidationError("the value is 0 or 1") } }

        func run(site: Site) throws {
            let reply = try site.control(.object([("op", "sim.input"), ("line", .string(line)), ("value", .int(Int64(value)))]))
            if site.json { return Say.json(reply) }
            Say.line("\(line) = \(value)")
        }
    }

    struct Outputs: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Every named output line and its value.")
        @OptionGroup var global: GlobalOptions

        func run(site: Site) throws {
            let reply = try site.control(.object([("op", "sim.outputs")]))
            if site.json { return Say.json(reply["outputs"] ?? .object([])) }
            if case .object(let pairs)? = reply["outputs"] {
                for (name, value) in pairs { Say.line("\(name) \(value.rendered())") }
            }
        }
    }

    struct Loop: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Put a vehicle on (1) or take it off (0) a barrier lane's loop (simulated gate).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The lane's portal or its camera's name.") var lane: String
        @Argument var value: Int

        func validate() throws { if value != 0 && value != 1 { throw ValidationError("the value is 0 or 1") } }

        func run(site: Site) throws {
            let reply = try site.control(.object([("op", "sim.loop"), ("lane", .string(lane)), ("value", .int(Int64(value)))]))
            if site.json { return Say.json(reply) }
            Say.line("loop of \(lane): \(value == 1 ? "vehicle present" : "clear")")
        }
    }

    struct Fence: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Raise (1) or clear (0) a fence alarm at a simulated host's zone.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The fence host device (from [[modbus.device]]).") var device: String
        @Argument(help: "The zone number, from 1.") var zone: Int
        @Argument(help: "broken, short, touch, tamper or power.") var alarm: String
        @Argument var value: Int

        func validate() throws { if value != 0 && value != 1 { throw ValidationError("the value is 0 or 1") } }

        func run(site: Site) throws {
            let reply = try site.control(.object([("op", "sim.fence"), ("device", .string(device)), ("zone", .int(Int64(zone))),
                                                  ("alarm", .string(alarm)), ("value", .int(Int64(value)))]))
            if site.json { return Say.json(reply) }
            Say.line("\(device) zone \(zone): \(alarm) \(value == 1 ? "on" : "off")")
        }
    }

    struct Device: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Make a simulated Modbus device stop (offline) or resume (online) answering.")
        @OptionGroup var global: GlobalOptions
        @Argument var device: String
        @Argument(help: "online or offline.") var state: String

        func validate() throws { if state != "online" && state != "offline" { throw ValidationError("the state is online or offline") } }

        func run(site: Site) throws {
            let reply = try site.control(.object([("op", "sim.device"), ("device", .string(device)), ("online", .int(state == "online" ? 1 : 0))]))
            if site.json { return Say.json(reply) }
            Say.line("\(device): \(state)")
        }
    }
}

extension FenceCommand: ExpressibleByArgument {}

struct FenceControlCommand: SiteCommand {
    static let configuration = CommandConfiguration(
        commandName: "fence",
        abstract: "Arm, disarm or reset a fence zone through the running accessd (recorded in the audit log).",
        discussion: """
            An emergency zone refuses disarm. Reset clears latched alarms whose cause is gone.
            Examples:
              accessctl fence disarm fence-zone-3 --operator zhang
              accessctl fence reset fence-zone-3
            """
    )
    @OptionGroup var global: GlobalOptions
    @Argument(help: "arm, disarm or reset.") var command: FenceCommand
    @Argument(help: "The fence zone's portal.") var portal: String

    func run(site: Site) throws {
        let reply = try site.control(.object([("op", "fence"), ("portal", .string(portal)), ("command", .string(command.rawValue)),
                                              ("operator", .string(site.operatorName))]))
        if site.json { return Say.json(reply) }
        let alarm = reply["pending"] == .bool(true) ? ", the host has not confirmed the reset yet"
            : reply["alarm"] == .bool(true) ? ", alarm still latched (its cause is still present)" : ", no alarm"
        Say.line("fence \(portal): \(command.rawValue) done; \(reply["armed"] == .bool(true) ? "armed" : "disarmed")\(alarm)")
    }
}
