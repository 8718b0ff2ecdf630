// accessd: the controller service. Composition root only: configuration, logging, board,
// controller, and one ServiceGroup that stops everything in order on SIGTERM/SIGINT.
import AccessAnalytics
import AccessConfig
import AccessControlProtocol
import AccessController
import AccessCore
import AccessDevices
import AccessFleet
import AccessUpstream
import Glibc
import Logging
import ServiceLifecycle
import UnixSignals

// Logs: journald's native fields under systemd, JSON lines to a file or pipe, text on a terminal
// (LogOutput); level from ACCESSD_LOG_LEVEL (default info). They name portals, devices and reasons,
// never card numbers, plates, PINs or people.
LogOutput.bootstrap(identifier: "accessd")
let logger = Logger(label: "accessd")

var configPath: String?
var checkOnly = false
var rest = Array(CommandLine.arguments.dropFirst())[...]
while let argument = rest.popFirst() {
    switch argument {
    case "--config" where !rest.isEmpty: configPath = rest.popFirst()
    case "--check-config": checkOnly = true
    default: configPath = nil; rest = []
    }
}
guard let configPath else {
    StandardError.write("usage: accessd --config PATH [--check-config]\n")
    exit(64)
}

// --check-config: the site, the board map, the device maps and every line they name, without
// touching a line or the database; exit 0, or 1 with every problem as FILE:LINE: key: problem.
if checkOnly {
    let (config, errors) = SiteConfig.check(path: configPath)
    if errors.isEmpty, let config {
        print("\(configPath): ok (\(config.portals.count) portals, \(config.doors.count) doors, board \(config.board?.map ?? "-"))")
        exit(0)
    }
    for error in errors { StandardError.write("\(error)\n") }
    StandardError.write("\(configPath): \(errors.count) problem\(errors.count == 1 ? "" : "s")\n")
    exit(1)
}


// A parent may hand down a blocked signal mask (Foundation's Process does): the service group
// must see SIGTERM and SIGINT.
var signals = sigset_t()
sigemptyset(&signals)
sigaddset(&signals, SIGTERM)
sigaddset(&signals, SIGINT)
pthread_sigmask(SIG_UNBLOCK, &signals, nil)
signal(SIGPIPE, SIG_IGN)

do {
    let config = try SiteConfig.load(path: configPath)
    // A secret others may read is refused before anything starts (the PIN key, the database
    // with the visitor-pass secret, TLS keys, MQTT and fleet credentials).
    let exposed = config.secretFileProblems()
    if !exposed.isEmpty {
        for problem in exposed { StandardError.write("\(problem)\n") }
        throw exposed[0]
    }
    guard let boardConfig = config.board else {
        throw ConfigError(file: config.source, line: nil, key: "board", problem: "accessd needs a [board] table (map, simulated)")
    }
    let map = try BoardMap.load(path: boardConfig.map)
    let controller = try Controller(config: config, logger: Logger(label: "accessd.controller"))
    let board: any Board = boardConfig.simulated
        ? SimulatedBoard(map: map) { controller.handle($0) }
        : try GPIOBoard(map: map, consumer: "accessd") { controller.handle($0) }
    try controller.attach(board: board)
    // The fleet: the community roster followed on a thread of its own, each change set applied
    // to the roster in memory as it lands; the gate never waits on the network.
    // Its events are shipped to the community's events stream on another thread, woken as they
    // become durable.
    var fleetClient: FleetClient?
    var fleetEvents: FleetEventPublisher?
    var fleetWake: Task<Void, Never>?
    if let fleet = config.fleet {
        let hooks = FleetClient.Hooks(changeRoster: { try controller.changeRoster($0) },
                                      passUses: { try controller.recordFleetPassUses($0, commit: $1) },
                                      passSecretChanged: { controller.passSecretChanged() },
                                      pinKeyChanged: { controller.usePinKey($0) })
        let client = FleetClient(fleet: fleet, controllerID: config.controller.id, databasePath: config.databasePath,
                                 pinKeyFile: config.pinKeyPath, logger: Logger(label: "accessd.fleet"), hooks: hooks)
        let events = FleetEventPublisher(fleet: fleet, controllerID: config.controller.id, databasePath: config.databasePath)
        controller.setFleetProbe {
            let s = client.state
            let e = events.state
            return ControlStatus.Fleet(community: fleet.community, connected: s.connected, applied: Int(s.applied), lag: Int(s.lag), stuck: s.stuck,
                                       eventsAcked: Int(e.ackedSerial), eventsBacklog: Int(e.backlog))
        }
        try client.start()
        try events.start()
        fleetWake = Task {
            var seen = controller.feed.lastSerial
            while !Task.isCancelled {
                await controller.feed.wait(after: seen, timeout: .seconds(1))
                let last = controller.feed.lastSerial
                if last > seen { seen = last; events.wake() }
            }
        }
        fleetClient = client
        fleetEvents = events
        logger.info("fleet", metadata: ["community": "\(fleet.community)", "servers": "\(fleet.servers.joined(separator: ","))"])
    }
    // Stopped in reverse order: the upstream API goes first, the controller (doors to safe state) last.
    var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
        .init(service: ControllerService(controller: controller, logger: logger), serviceName: "controller"),
    ]
    // Upstream failures (a port taken, a CA file missing) are logged by the group and leave the
    // doors running: the controller never depends on the platform.
    if let mqtt = config.mqtt {
        // First in the list, so it stops last: the controller's final events still go out.
        services.insert(.init(service: MQTTPublisherService(config: mqtt, controllerID: config.controller.id,
                                                            databasePath: config.databasePath, feed: controller.feed,
                                                            logger: Logger(label: "accessd.mqtt")),
                              failureTerminationBehavior: .ignore, serviceName: "mqtt"), at: 0)
        logger.info("MQTT push", metadata: ["broker": "\(mqtt.host):\(mqtt.port)", "prefix": "\(mqtt.topicPrefix)"])
    }
    // 以房管人 analytics: follows the durable log, raises indicator events through the controller and
    // serves the API's summaries; it stops (writing its snapshot) before the controller does.
    let analytics = config.analytics.enabled
        ? try AnalyticsService(controller: controller, logger: Logger(label: "accessd.analytics")) : nil
    if let analytics {
        services.append(.init(service: analytics, failureTerminationBehavior: .ignore, serviceName: "analytics"))
    }
    if let http = config.http {
        let api = try UpstreamAPI(controller: controller, config: http, logger: Logger(label: "accessd.api"), analytics: analytics)
        services.append(.init(service: try api.application(), failureTerminationBehavior: .ignore, serviceName: "http"))
        logger.info("upstream HTTP API", metadata: ["listen": "\(http.listen)", "tls": "\(http.tlsCertificate != nil)"])
    }
    let group = ServiceGroup(configuration: ServiceGroupConfiguration(
        services: services,
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger
    ))
    try await group.run()
    // The controller has stopped: its last events are durable; ship them (up to 1 s), then leave.
    fleetWake?.cancel()
    fleetEvents?.stop()
    fleetClient?.stop()
    exit(0)
} catch {
    logger.error("\(error)")
    exit(1)
}

/// stderr without Foundation: one write.
enum StandardError {
    static func write(_ text: String) {
        var bytes = Array(text.utf8)
        _ = Glibc.write(2, &bytes, bytes.count)
    }
}
