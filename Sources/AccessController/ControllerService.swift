import AccessConfig
import AccessCore
import Logging
import ServiceLifecycle

/// The controller and its control socket as one service of accessd's `ServiceGroup`: started
/// together, and on graceful shutdown stopped in order (socket closed, doors to their safe state,
/// every event written) before the process exits.
public struct ControllerService: Service {
    let controller: Controller
    let logger: Logger

    public init(controller: Controller, logger: Logger) {
        self.controller = controller
        self.logger = logger
    }

    public func run() async throws {
        let config = controller.config
        try controller.start()
        var server: ControlServer?
        do {
            if let socket = config.controlSocket {
                server = try ControlServer(path: socket, group: config.controlSocketGroup) { [controller] in
                    controller.handleControl($0, caller: $1)
                }
            }
        } catch {
            controller.stop()
            throw error
        }
        SystemdNotifier.notify("READY=1\nSTATUS=running \(config.controller.id)")
        logger.info("running", metadata: [
            "controller": "\(config.controller.id)", "portals": "\(config.portals.count)", "doors": "\(config.doors.count)",
            "board": "\(config.board?.simulated == true ? "simulated" : config.board?.map ?? "none")",
            "control_socket": "\(config.controlSocket ?? "none")",
        ])
        // Until SIGTERM/SIGINT (graceful shutdown) or cancellation.
        try? await gracefulShutdown()
        SystemdNotifier.notify("STOPPING=1")
        logger.info("stopping")
        server?.stop()
        controller.stop()
        let counters = controller.counters
        logger.info("stopped: doors in their safe state, events written", metadata: [
            "decisions": "\(counters.decisions)", "granted": "\(counters.granted)",
            "garbled_frames": "\(counters.garbled)", "gpio_overruns": "\(counters.overruns)",
            "store_failures": "\(controller.storeFailures)",
        ])
    }
}
