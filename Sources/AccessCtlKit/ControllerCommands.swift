import AccessControlProtocol
import AccessCore
import ArgumentParser

extension Site {
    /// Sends a request to the running accessd and returns its reply, or throws its error.
    func control(_ request: ControlRequest) throws -> ControlReply {
        guard let socket = controlSocket else {
            throw CLIError("this command talks to accessd: give --config with a [control] socket")
        }
        return try ControlClient.send(request, to: socket)
    }
}

extension ControlReply {
    /// The portal's state, for `door` and `fence`.
    var portalState: PortalState {
        if case .portal(let state) = self { return state }
        return PortalState()
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
        let reply = try site.control(.door(portal: portal, command: command, operator: site.typedOperator))
        if site.json { return Say.json(reply.json) }
        let portalState = reply.portalState
        let state: String
        if let released = portalState.released {
            state = "lock \(released ? "released" : "locked")"
        } else if let locked = portalState.locked {
            state = "barrier \(locked ? "locked in place" : "in normal operation")"
        } else {
            state = "fence zone \(portalState.armed == true ? "armed" : "disarmed")"
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
        let reply = try site.control(.status)
        if site.json { return Say.json(.object(reply.fields)) }
        guard case .status(let status) = reply else { throw CLIError("accessd sent no status") }
        let latency = status.swipeToRelay
        Say.line("controller \(status.controller)")
        Say.line("decisions \(status.decisions), granted \(status.granted), garbled frames \(status.garbledFrames), GPIO overruns \(status.gpioOverruns), event-store retries \(status.eventStoreFailures)")
        Say.line("swipe → relay over the last \(latency.count) grants: p50 \(latency.p50) µs, p99 \(latency.p99) µs, max \(latency.max) µs")
        for door in status.doors {
            Say.line("door \(door.id): \(door.mode.rawValue), \(door.released ? "released" : "locked")\(door.fire ? ", fire release latched" : "")")
        }
        for lane in status.lanes {
            Say.line("lane \(lane.portal): arm \(lane.position.rawValue)\(lane.loopOccupied ? ", vehicle on loop" : "")\(lane.locked ? ", locked" : "")")
        }
        for reader in status.readers where reader.tamper {
            Say.line("reader \(reader.reader)\(reader.portal.map { " (\($0))" } ?? ""): TAMPER alarm latched (accessctl reader reset \(reader.reader))")
        }
        for p in status.parking {
            Say.line("parking \(p.key): \(p.inside) inside\(p.spaces.map { " of \($0) space\($0 == 1 ? "" : "s")" } ?? ", no limit")")
        }
        for zone in status.fenceZones {
            Say.line("fence \(zone.portal): \(zone.armed ? "armed" : "disarmed")\(zone.latched.isEmpty ? "" : ", ALARM " + zone.latched.joined(separator: ", "))")
        }
        if let fleet = status.fleet {
            let link = fleet.connected ? "connected" : "PARTITIONED (deciding from the local roster)"
            Say.line("fleet \(fleet.community): \(link), applied sequence \(fleet.applied), \(fleet.lag) behind\(fleet.stuck.map { ", STUCK: " + $0 } ?? ""); events shipped through serial \(fleet.eventsAcked), \(fleet.eventsBacklog) waiting")
        }
    }
}

struct MetricsCommand: SiteCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "The running accessd's metrics in the Prometheus text format.",
        discussion: """
            With --json, every sample as an object, in the text's order (a histogram's buckets, sum \
            and count are samples of their own): {"samples":[{"name":"access_roster_people","labels":{},"value":1}]}
            """
    )
    @OptionGroup var global: GlobalOptions

    func run(site: Site) throws {
        guard case .metrics(let text) = try site.control(.metrics) else { throw CLIError("accessd sent no metrics") }
        if site.json { return Say.json(PrometheusText.samplesJSON(text)) }
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
              accessctl sim qr qr-north-in "$(accessctl visitor show V… --json | jq -r .qr)"
              accessctl sim input fire.alarm 1
              accessctl sim outputs --json
              accessctl sim loop lane-in 1            (a vehicle on the lane's loop)
              accessctl sim fence fence-host-1 3 broken 1
              accessctl sim device barrier-lane-in offline
            """,
        subcommands: [Swipe.self, Keys.self, QR.self, Plate.self, Input.self, Outputs.self, Loop.self, Fence.self, Device.self]
    )

    static func report(_ reply: ControlReply, site: Site) {
        if site.json { return Say.json(reply.json) }
        guard case .decision(let d?) = reply else {
            return Say.line("no decision (the same read again within seconds, a garbled read, or a reader bound to no portal)")
        }
        let person = d.personID.map { " person \($0)" } ?? ""
        Say.line("\(d.granted ? "GRANTED" : "DENIED"): \(d.reason.rawValue)\(person)")
    }

    struct Swipe: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Present a card at a reader (a Wiegand frame through the real decoder).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The reader name (see `accessctl portal list`).") var reader: String
        @Argument(help: "The card number.") var card: String

        func run(site: Site) throws {
            let number: UInt64
            do { number = try CredentialValue.card(card) } catch { throw ValidationError(error.description) }
            SimCommand.report(try site.control(.simSwipe(reader: reader, card: number)), site: site)
        }
    }

    struct Keys: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Press keys on a reader's keypad (digits, * clears, # submits the PIN).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The reader name.") var reader: String
        @Argument(help: "Keys, e.g. '1234#'.") var keys: String

        func run(site: Site) throws {
            let presses: [KeypadKey]
            do { presses = try ControlRequest.keys(keys) } catch { throw ValidationError(error.description) }
            SimCommand.report(try site.control(.simKeys(reader: reader, keys: presses)), site: site)
        }
    }

    struct QR: SiteCommand {
        static let configuration = CommandConfiguration(
            commandName: "qr", abstract: "Scan a QR code at a QR reader (a visitor pass's or a resident's code).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The QR reader's name (e.g. qr-north-in).") var reader: String
        @Argument(help: "The text the code carries.") var code: String

        func run(site: Site) throws {
            SimCommand.report(try site.control(.simQR(reader: reader, code: code)), site: site)
        }
    }

    struct Plate: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Send a plate read to a barrier lane.")
        @OptionGroup var global: GlobalOptions
        @Argument var lane: String
        @Argument var plate: String

        func run(site: Site) throws {
            SimCommand.report(try site.control(.simPlate(lane: lane, plate: plate)), site: site)
        }
    }

    struct Input: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Set a named input line: 1 active (door open, button pressed, fire), 0 not.")
        @OptionGroup var global: GlobalOptions
        @Argument var line: String
        @Argument var value: Int

        func validate() throws { if value != 0 && value != 1 { throw ValidationError("the value is 0 or 1") } }

        func run(site: Site) throws {
            let reply = try site.control(.simInput(line: line, active: value == 1))
            if site.json { return Say.json(reply.json) }
            Say.line("\(line) = \(value)")
        }
    }

    struct Outputs: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Every named output line and its value.")
        @OptionGroup var global: GlobalOptions

        func run(site: Site) throws {
            guard case .outputs(let outputs) = try site.control(.simOutputs) else { throw CLIError("accessd sent no outputs") }
            if site.json { return Say.json(.object(outputs.keys.sorted().map { ($0, JSON.int(outputs[$0] == true ? 1 : 0)) })) }
            for name in outputs.keys.sorted() { Say.line("\(name) \(outputs[name] == true ? 1 : 0)") }
        }
    }

    struct Loop: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Put a vehicle on (1) or take it off (0) a barrier lane's loop (a simulated Modbus gate, or a dry-contact lane's loop input).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The lane's portal or its camera's name.") var lane: String
        @Argument var value: Int

        func validate() throws { if value != 0 && value != 1 { throw ValidationError("the value is 0 or 1") } }

        func run(site: Site) throws {
            let reply = try site.control(.simLoop(lane: lane, occupied: value == 1))
            if site.json { return Say.json(reply.json) }
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
            guard let kind = FenceAlarmKind(rawValue: alarm), ControlRequest.simulatedFenceAlarms.contains(kind) else {
                throw CLIError("malformed request: alarm must be one of \(ControlRequest.simulatedFenceAlarms.map(\.rawValue).joined(separator: ", "))")
            }
            let reply = try site.control(.simFence(device: device, zone: zone, alarm: kind, on: value == 1))
            if site.json { return Say.json(reply.json) }
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
            let reply = try site.control(.simDevice(device: device, online: state == "online"))
            if site.json { return Say.json(reply.json) }
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
        let reply = try site.control(.fence(portal: portal, command: command, operator: site.typedOperator))
        if site.json { return Say.json(reply.json) }
        let state = reply.portalState
        let alarm = state.pending == true ? ", the host has not confirmed the reset yet"
            : state.alarm == true ? ", alarm still latched (its cause is still present)" : ", no alarm"
        Say.line("fence \(portal): \(command.rawValue) done; \(state.armed == true ? "armed" : "disarmed")\(alarm)")
    }
}

extension ReaderCommand: ExpressibleByArgument {}

struct ReaderControlCommand: SiteCommand {
    static let configuration = CommandConfiguration(
        commandName: "reader",
        abstract: "Reset a reader's latched tamper alarm through the running accessd (recorded in the audit log).",
        discussion: """
            A reader's tamper switch (its `tamper` line in the board map) latches the alarm \
            `reader_tamper`; reset clears it once the switch is back (cover on, reader on the wall).
            Example:
              accessctl reader reset reader-north-in --operator zhang
            """
    )
    @OptionGroup var global: GlobalOptions
    @Argument(help: "reset.") var command: ReaderCommand
    @Argument(help: "The reader's name (from the board map).") var reader: String

    func run(site: Site) throws {
        let reply = try site.control(.reader(reader: reader, command: command, operator: site.typedOperator))
        if site.json { return Say.json(reply.json) }
        let latched = reply.portalState.alarm == true
        Say.line("reader \(reader): \(command.rawValue) done; \(latched ? "tamper alarm still latched (the switch is still open)" : "no alarm")")
    }
}

struct AntiPassbackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apb",
        abstract: "Anti-passback: clear a person's recorded location through the running accessd.",
        subcommands: [Reset.self]
    )

    struct Reset: SiteCommand {
        static let configuration = CommandConfiguration(
            abstract: "Forget where a person (and their plates) was last seen, at every portal (recorded in the audit log).",
            discussion: """
                For someone refused with anti_passback after, say, tailgating out: their next passage \
                is judged as a first one.
                Example:
                  accessctl apb reset P0001 --operator zhang
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The person's id.") var person: String

        func run(site: Site) throws {
            let reply = try site.control(.antiPassbackReset(person: person, operator: site.typedOperator))
            if site.json { return Say.json(reply.json) }
            guard case .antiPassbackReset(let cleared) = reply else { throw CLIError("accessd sent no answer to the reset") }
            Say.line("anti-passback reset for \(person) at every portal\(cleared ? "" : " (nothing was recorded)")")
        }
    }
}
