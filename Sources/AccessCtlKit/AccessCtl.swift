import AccessConfig
import AccessControlProtocol
import AccessCore
import AccessFleet
import AccessStore
import ArgumentParser

/// `accessctl`: the property staff's command line for the roster, visitors, doors and logs.
public struct AccessCtl: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "accessctl",
        abstract: "Keep a community's access roster, visitors and doors; ask why a credential is granted or denied.",
        discussion: """
            The database is found through --config (the accessd configuration) or --db. Every command \
            accepts --json. Changes are recorded in the audit log as the Unix user running accessctl \
            (--operator NAME adds a note beside it).

            Examples:
              accessctl --config Config/accessd-sim.toml import Config/sample-roster.csv
              accessctl --config Config/accessd-sim.toml person show P-0101
              accessctl --config Config/accessd-sim.toml card revoke 10023456 --lost
              accessctl --config Config/accessd-sim.toml check --portal gate-north-in --card 10023456
              accessctl --config Config/accessd-sim.toml visitor issue --house B01-U1-0301 --name 王芳 --hours 4
            """,
        subcommands: [
            HouseCommand.self, PersonCommand.self, CardCommand.self, PinCommand.self, PlateCommand.self,
            GroupCommand.self, ScheduleCommand.self, VisitorCommand.self, PortalCommand.self,
            ImportCommand.self, ExportCommand.self, CheckCommand.self, EventsCommand.self, AuditCommand.self,
            DoorControlCommand.self, FenceControlCommand.self, ReaderControlCommand.self, AntiPassbackCommand.self, TokenCommand.self, StatusCommand.self, MetricsCommand.self, SimCommand.self, DatabaseCommand.self, FleetCommand.self,
        ]
    )

    public init() {}

    /// Runs `accessctl` with `arguments` (without the program name), writing to `console`;
    /// returns the exit status. Errors are printed as one line on stderr.
    public static func run(_ arguments: [String], console: Console = .standard) -> Int32 {
        Console.$current.withValue(console) {
            do {
                var command = try parseAsRoot(hoistingGlobalOptions(arguments))
                try command.run()
                return 0
            } catch let error as ImportError {
                console.err(error.description + "\n")
                return 1
            } catch let error where error is RosterError || error is StoreError || error is ConfigError
                || error is CLIError || error is DecisionError || error is ScheduleError || error is ControlProtocolError
                || error is FleetError || error is FleetSyncError || error is ChangeSetError {
                console.err("accessctl: \(error)\n")
                return 1
            } catch {
                let message = fullMessage(for: error)
                let code = exitCode(for: error)
                if code == .success {
                    if !message.isEmpty { console.out(message + "\n") }
                } else {
                    console.err(message + "\n")
                }
                return code.rawValue
            }
        }
    }
}

extension AccessCtl {
    /// Options every leaf command takes, as they may also be written before the subcommand
    /// (`accessctl --config X person list`): moved after it, where the parser looks for them.
    static let globalOptionsWithValue: Set<String> = ["--config", "--db", "--operator"]
    static let globalFlags: Set<String> = ["--json"]

    static func hoistingGlobalOptions(_ arguments: [String]) -> [String] {
        var leading: [String] = []
        var index = 0
        while index < arguments.count, arguments[index].hasPrefix("--") {
            let argument = arguments[index]
            let name = String(argument.prefix { $0 != "=" })
            if globalFlags.contains(argument) || (globalOptionsWithValue.contains(name) && argument.contains("=")) {
                leading.append(argument)
                index += 1
            } else if globalOptionsWithValue.contains(argument), index + 1 < arguments.count {
                leading += [argument, arguments[index + 1]]
                index += 2
            } else {
                break
            }
        }
        guard !leading.isEmpty, index < arguments.count else { return arguments }
        return Array(arguments[index...]) + leading
    }
}

/// The shape of every leaf command: open the site, do the work.
protocol SiteCommand: ParsableCommand {
    var global: GlobalOptions { get }
    func run(site: Site) throws
}

extension SiteCommand {
    func run() throws { try run(site: Site.open(global)) }
}
