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
        Say.line("door at \(portal): \(command.rawValue) done; lock \(reply["released"] == .bool(true) ? "released" : "locked")")
    }
}

struct SimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Play the hardware of accessd's simulated board: swipe cards, read plates, set inputs, see outputs.",
        discussion: """
            Examples:
              accessctl sim swipe reader-b01 6553701
              accessctl sim plate lpr-lane-in 京A12345
              accessctl sim input fire.alarm 1
              accessctl sim outputs --json
            """,
        subcommands: [Swipe.self, Plate.self, Input.self, Outputs.self]
    )

    static func report(_ reply: JSON, site: Site) {
        if site.json { return Say.json(reply) }
        guard case .object? = reply["decision"], let d = reply["decision"] else { return Say.line("no decision (reader not bound to a portal)") }
        let granted = d["granted"] == .bool(true)
        let reason = d["reason"].flatMap { if case .string(let s) = $0 { return s } else { return nil } } ?? "?"
        let person = d["person_id"].flatMap { if case .string(let s) = $0 { return " person \(s)" } else { return nil } } ?? ""
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
}
