import AccessCore
import AccessDevices
import CGlibcExtras
import Glibc
import Synchronization

// Real peers for the Modbus tests: Hardware/sim/modbus_peers.py (pymodbus) over TCP on
// 127.0.0.1 or RTU on a socat pty pair. Children get stdin from a pipe and write to a log file;
// they are stopped with SIGKILL (a signal mask inherited from the test runner may block SIGTERM).

public struct PeerError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

public enum ModbusTestEnvironment {
    public static let repo: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)  // Sources/AccessTestSupport/ModbusPeers.swift
        return parts.joined(separator: "/")
    }()

    /// The venv's python, made by Hardware/sim/setup-python.sh when missing (quick when present).
    public static let python: Result<String, PeerError> = {
        let venv = getenv("ACCESS_PYENV").map { String(cString: $0) } ?? "\(repo)/.build-pyenv"
        let script = "\(repo)/Hardware/sim/setup-python.sh"
        let log = "/tmp/access-setup-python-\(getpid()).log"
        do {
            let child = try PeerProcess(["/bin/sh", script], log: log)
            let status = child.wait()
            guard status == 0 else {
                return .failure(PeerError(description: "\(script) failed (exit \(status)); see \(log), or run it by hand: sh \(script)"))
            }
        } catch {
            return .failure(PeerError(description: "could not run \(script): \(error); run it by hand: sh \(script)"))
        }
        return .success("\(venv)/bin/python")
    }()

    /// A TCP port on 127.0.0.1 that nothing listens on right now.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw PeerError(description: "socket: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw PeerError(description: "bind: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// A child process started with posix_spawn: stdout and stderr to `log`, stdin from a pipe.
public final class PeerProcess: @unchecked Sendable {
    public let pid: pid_t
    public let log: String
    private let input: Int32
    private let state = Mutex<(exited: Bool, status: Int32)>((false, 0))

    public init(_ argv: [String], log: String) throws {
        self.log = log
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw PeerError(description: "pipe: errno \(errno)") }
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)  // later children must not hold our end open
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[0], 0)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of the test process: a peer outliving a crashed test must not hold its
        // files, sockets or locks (a runner's flock once stayed held by orphaned nats-servers).
        posix_spawn_file_actions_addclosefrom_np(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))

        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
        var environment = ["PATH=\(path)", "PYTHONUNBUFFERED=1", "HOME=\(getenv("HOME").map { String(cString: $0) } ?? "/tmp")"]
        if let venv = getenv("ACCESS_PYENV") { environment.append("ACCESS_PYENV=\(String(cString: venv))") }
        var cArgs = argv.map { strdup($0) } + [nil]
        var cEnv = environment.map { strdup($0) } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var child = pid_t()
        let rc = posix_spawnp(&child, argv[0], &actions, &attributes, &cArgs, &cEnv)
        close(fds[0])
        guard rc == 0 else {
            close(fds[1])
            throw PeerError(description: "posix_spawn \(argv[0]): errno \(rc)")
        }
        pid = child
        input = fds[1]
    }

    deinit {
        kill()
        close(input)
    }

    /// SIGKILL and reap; safe to call twice.
    public func kill() {
        state.withLock { s in
            guard !s.exited else { return }
            Glibc.kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            s = (true, status)
        }
    }

    /// Waits for the child to end; returns its exit status.
    public func wait() -> Int32 {
        state.withLock { s in
            if !s.exited {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                s = (true, status)
            }
            return (s.status >> 8) & 0xff
        }
    }

    /// Whether it has ended, without waiting.
    public var hasExited: Bool {
        state.withLock { s in
            if s.exited { return true }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { s = (true, status) }
            return s.exited
        }
    }

    public func send(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(input, $0.baseAddress, $0.count) }
    }

    public var output: String { readTextFile(log) ?? "" }

    /// Polls the log until `match` finds something, the child dies, or `timeout` passes.
    public func waitForOutput<T>(timeout: Duration, _ match: (String) -> T?) async throws -> T {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let found = match(output) { return found }
            if hasExited { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        if let found = match(output) { return found }
        throw PeerError(description: "\(log): no expected output within \(timeout)\(hasExited ? " (the process ended)" : ""):\n\(output.suffix(2000))")
    }
}

/// modbus_peers.py serving some devices, e.g. `["barrier:1", "relay:3"]`.
public final class ModbusPeer: Sendable {
    public let child: PeerProcess
    public let port: Int
    public let serialDevice: String?
    private let sequence = Mutex(0)

    private init(child: PeerProcess, port: Int, serialDevice: String?) {
        self.child = child
        self.port = port
        self.serialDevice = serialDevice
    }

    /// Starts a TCP peer on `port` (a free one when nil) and waits until it serves.
    public static func tcp(_ devices: [String], port: Int? = nil, dir: TemporaryDirectory) async throws -> ModbusPeer {
        var lastError: Error = PeerError(description: "no attempt")
        for attempt in 0..<3 {  // a free port can be taken between asking and binding
            let p = try port ?? ModbusTestEnvironment.freePort()
            do {
                return try await start(["--tcp", String(p)], devices, port: p, serial: nil, log: dir.file("peer-\(p)-\(attempt).log"))
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    /// Starts an RTU peer on one end of a pty pair.
    public static func rtu(_ devices: [String], device: String, baud: Int = 115_200, dir: TemporaryDirectory) async throws -> ModbusPeer {
        try await start(["--rtu", device, "--baud", String(baud)], devices, port: 0, serial: device, log: dir.file("peer-rtu.log"))
    }

    private static func start(_ transport: [String], _ devices: [String], port: Int, serial: String?, log: String) async throws -> ModbusPeer {
        let python = try ModbusTestEnvironment.python.get()
        let script = "\(ModbusTestEnvironment.repo)/Hardware/sim/modbus_peers.py"
        let child = try PeerProcess([python, script] + transport + devices.flatMap { ["--device", $0] }, log: log)
        do {
            _ = try await child.waitForOutput(timeout: .seconds(20)) { $0.split(separator: "\n").contains("ready") ? true : nil }
        } catch {
            child.kill()
            throw error
        }
        return ModbusPeer(child: child, port: port, serialDevice: serial)
    }

    /// Runs a control command and returns what the peer answered after "ack N".
    @discardableResult
    public func command(_ text: String) async throws -> String {
        let n = sequence.withLock { $0 += 1; return $0 }
        child.send("\(n) \(text)")
        let line = try await child.waitForOutput(timeout: .seconds(10)) { output in
            output.split(separator: "\n").first { $0 == "ack \(n)" || $0.hasPrefix("ack \(n) ") || $0.hasPrefix("nak \(n) ") }
        }
        guard line.hasPrefix("ack") else { throw PeerError(description: "peer refused \"\(text)\": \(line)") }
        return String(line.dropFirst("ack \(n)".count)).trimmingPrefixSpaces()
    }

    public func kill() { child.kill() }
}

/// `socat -d -d pty,raw,echo=0 pty,raw,echo=0`: two linked serial devices.
public final class PtyPair: Sendable {
    public let child: PeerProcess
    public let a: String
    public let b: String

    public init(dir: TemporaryDirectory) async throws {
        let a = dir.file("ttyA")
        let b = dir.file("ttyB")
        child = try PeerProcess(["socat", "-d", "-d", "pty,raw,echo=0,link=\(a)", "pty,raw,echo=0,link=\(b)"], log: dir.file("socat.log"))
        do {
            _ = try await child.waitForOutput(timeout: .seconds(10)) { output in
                output.contains("starting data transfer loop") && access(a, F_OK) == 0 && access(b, F_OK) == 0 ? true : nil
            }
        } catch {
            child.kill()
            throw error
        }
        self.a = a
        self.b = b
    }

    /// Unplugs both ends: the links go first, then socat (SIGKILL, which would leave them). A link
    /// left behind points at a /dev/pts number the kernel soon hands to another pty (another
    /// test's), and a reader reopening its path would read that one.
    public func kill() {
        unlink(a)
        unlink(b)
        child.kill()
    }

    /// Writes `bytes` into the pty end at `path`, as the device on that end of the line would.
    public static func send(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_NOCTTY)
        guard fd >= 0 else { throw PeerError(description: "open \(path): errno \(errno)") }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw PeerError(description: "write \(path): \(written) of \(bytes.count) bytes") }
    }
}

/// Collects a bus's events as they come.
public final class BusEventLog: Sendable {
    private let events = Mutex<[BoardEvent]>([])

    public init(_ bus: ModbusBus) {
        let stream = bus.events
        Task { [weak self] in
            for await event in stream { self?.events.withLock { $0.append(event) } }
        }
    }

    public var all: [BoardEvent] { events.withLock { $0 } }

    /// The online/offline changes reported for one device, in order.
    public func changes(of name: String) -> [Bool] {
        all.compactMap { event in
            if case .device(name, let online) = event { return online }
            return nil
        }
    }

    /// Waits (bounded) until `name` has reported `expected`.
    public func wait(for name: String, _ expected: [Bool], timeout: Duration = .seconds(3)) async -> [Bool] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, changes(of: name) != expected {
            try? await Task.sleep(for: .milliseconds(5))
        }
        return changes(of: name)
    }
}

private extension String {
    func trimmingPrefixSpaces() -> String { String(drop { $0 == " " }) }
}
