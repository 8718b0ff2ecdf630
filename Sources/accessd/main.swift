// accessd: the controller service. Composition root only: configuration, board, controller,
// control socket, and an orderly stop on SIGTERM/SIGINT with the doors in their safe state.
import AccessConfig
import AccessController
import AccessCore
import AccessDevices
import Glibc

func log(_ text: String) {
    // One line per message on stderr (journald adds the time); no credentials or personal data.
    let line = Array("accessd: \(text)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.count == 2, arguments[0] == "--config" else {
    log("usage: accessd --config PATH")
    exit(64)
}

// Signals are taken synchronously by the main thread; every thread started later inherits the mask.
var signals = sigset_t()
sigemptyset(&signals)
sigaddset(&signals, SIGTERM)
sigaddset(&signals, SIGINT)
pthread_sigmask(SIG_BLOCK, &signals, nil)
signal(SIGPIPE, SIG_IGN)

do {
    let config = try SiteConfig.load(path: arguments[1])
    guard let boardConfig = config.board else {
        throw ConfigError(file: config.source, line: nil, key: "board", problem: "accessd needs a [board] table (map, simulated)")
    }
    let map = try BoardMap.load(path: boardConfig.map)
    let controller = try Controller(config: config)
    let board: any Board = boardConfig.simulated
        ? SimulatedBoard(map: map) { controller.handle($0) }
        : try GPIOBoard(map: map, consumer: "accessd") { controller.handle($0) }
    try controller.attach(board: board)
    try controller.start()
    var server: ControlServer?
    if let socket = config.controlSocket {
        server = try ControlServer(path: socket) { controller.handleControl($0) }
    }
    SystemdNotifier.notify("READY=1\nSTATUS=running \(config.controller.id)")
    log("running \(config.controller.id): \(config.portals.count) portals, \(config.doors.count) doors, \(boardConfig.simulated ? "simulated board" : "GPIO board \(map.model)")\(config.controlSocket.map { ", control socket \($0)" } ?? "")")

    var received: Int32 = 0
    sigwait(&signals, &received)
    log("stopping on signal \(received)")
    SystemdNotifier.notify("STOPPING=1")
    server?.stop()
    controller.stop()
    log("stopped: doors in their safe state, events written")
    exit(0)
} catch {
    log("\(error)")
    exit(1)
}
