import AccessRuntime
import Foundation
import Glibc
import Synchronization

// A real JetStream cluster for the fleet tests: 1 or 3 `/usr/sbin/nats-server`s on free 127.0.0.1
// ports, each with its own data directory and config made from Config/fleet/*.template (the same
// files Scripts/nats-cluster.sh fills), optionally with TLS on the client ports. Nodes can be
// killed, stopped, restarted and paused; every process is stopped by its PID when the cluster is
// shut down or released. All waits poll with a deadline; the calls block (use them from tests or
// threads, not from code that must stay responsive).

/// The accounts and users a cluster is made with.
public struct NatsClusterUsers: Sendable {
    public var community: String
    public var controllers: [String]
    public var officePassword: String
    public var controllerPasswords: [String: String]
    public var systemPassword: String

    public init(community: String = "xfl", controllers: [String] = ["ctl-1", "ctl-2"]) {
        self.community = community
        self.controllers = controllers
        officePassword = randomPassword()
        systemPassword = randomPassword()
        var passwords: [String: String] = [:]
        for id in controllers { passwords[id] = randomPassword() }
        controllerPasswords = passwords
    }
}

private func randomPassword() -> String {
    let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
    return String((0..<24).map { _ in alphabet.randomElement()! })
}

public final class NatsCluster: @unchecked Sendable {
    public struct Node: Sendable {
        public let name: String
        public let clientPort: Int
        public let monitorPort: Int
        public let routePort: Int
        public let config: String
        public let storeDir: String
    }

    public let dir: TemporaryDirectory
    public let nodes: [Node]
    public let users: NatsClusterUsers
    /// The CA certificate clients trust, when the cluster uses TLS.
    public let caFile: String?
    public let serverBinary: String

    private let lock = Mutex<[Int: PeerProcess]>([:])
    private let starts = Mutex(0)

    /// Starts `nodeCount` servers (1 or 3 usually) and waits until JetStream has a meta leader.
    public init(nodes nodeCount: Int = 3, users: NatsClusterUsers = NatsClusterUsers(), tls: Bool = false,
                serverBinary: String = "/usr/sbin/nats-server", timeout: Duration = .seconds(30)) throws {
        guard access(serverBinary, X_OK) == 0 else {
            throw PeerError(description: "\(serverBinary) not found: Scripts/setup.sh --tests installs nats-server")
        }
        dir = TemporaryDirectory("access-nats")
        self.users = users
        self.serverBinary = serverBinary
        let templates = "\(ModbusTestEnvironment.repo)/Config/fleet"

        var tlsBlock = ""
        if tls {
            try Self.makeCertificates(in: dir)
            tlsBlock = "tls { cert_file: \"\(dir.file("server.pem"))\", key_file: \"\(dir.file("server.key"))\", timeout: 2 }"
            caFile = dir.file("ca.pem")
        } else {
            caFile = nil
        }

        var controllerUsers = ""
        for id in users.controllers {
            controllerUsers += try Self.fill("\(templates)/controller-user.conf.template", [
                "COMMUNITY": users.community, "CONTROLLER_ID": id, "CONTROLLER_PASSWORD": users.controllerPasswords[id] ?? "",
            ]) + "\n"
        }
        dir.write("accounts.conf", try Self.fill("\(templates)/accounts.conf.template", [
            "COMMUNITY": users.community, "COMMUNITY_ACCOUNT": "COMMUNITY_\(users.community)",
            "OFFICE_PASSWORD": users.officePassword, "SYS_PASSWORD": users.systemPassword,
            "CONTROLLER_USERS": controllerUsers,
        ]))

        var ports: [(Int, Int, Int)] = []
        var taken = Set<Int>()
        for _ in 0..<nodeCount {
            var three: [Int] = []
            while three.count < 3 {
                let p = try ModbusTestEnvironment.freePort()
                if taken.insert(p).inserted { three.append(p) }
            }
            ports.append((three[0], three[1], three[2]))
        }
        var made: [Node] = []
        for i in 0..<nodeCount {
            let name = "n\(i + 1)"
            var cluster = ""
            if nodeCount > 1 {
                let routes = ports.enumerated().filter { $0.offset != i }.map { "nats-route://127.0.0.1:\($0.element.2)" }
                cluster = "cluster { name: fleet, listen: 127.0.0.1:\(ports[i].2), routes: [ \(routes.joined(separator: ", ")) ] }"
            }
            let store = dir.file("data/\(name)")
            mkdir(dir.file("data"), 0o700)
            mkdir(store, 0o700)
            let config = dir.write("\(name).conf", try Self.fill("\(templates)/server.conf.template", [
                "SERVER_NAME": name, "HOST": "127.0.0.1", "CLIENT_PORT": String(ports[i].0),
                "MONITOR_PORT": String(ports[i].1), "STORE_DIR": store, "CLUSTER": cluster, "TLS": tlsBlock,
            ]))
            made.append(Node(name: name, clientPort: ports[i].0, monitorPort: ports[i].1, routePort: ports[i].2,
                             config: config, storeDir: store))
        }
        nodes = made
        for i in nodes.indices { try launch(i) }
        do {
            try waitForMetaLeader(timeout: timeout)
        } catch {
            shutdown()
            throw error
        }
    }

    deinit { shutdown() }

    // MARK: Addresses and credentials

    /// `nats://127.0.0.1:PORT` (or `tls://`) of every node.
    public var urls: [String] { nodes.map { url($0) } }

    public func url(node index: Int) -> String { url(nodes[index]) }

    private func url(_ node: Node) -> String { "\(caFile == nil ? "nats" : "tls")://127.0.0.1:\(node.clientPort)" }

    /// The index of the node called `name` (`n1` is 0).
    public func index(of name: String) -> Int? { nodes.firstIndex { $0.name == name } }

    /// Writes `password` to a file (mode 0600) and returns its path: what accessd's config names.
    public func passwordFile(for user: String) -> String {
        let password = user == "office" ? users.officePassword : (users.controllerPasswords[user] ?? "")
        let path = dir.write("\(user).password", password + "\n")
        chmod(path, 0o600)
        return path
    }

    // MARK: Node control

    /// SIGKILL: the node dies at once, as in a power cut.
    public func kill(node index: Int) {
        let child = lock.withLock { $0.removeValue(forKey: index) }
        if let child {
            Glibc.kill(child.pid, SIGCONT)
            child.kill()
        }
    }

    /// SIGTERM and wait (SIGKILL after `timeout`): a clean shutdown.
    public func stop(node index: Int, timeout: Duration = .seconds(10)) {
        let child = lock.withLock { $0.removeValue(forKey: index) }
        guard let child else { return }
        Glibc.kill(child.pid, SIGCONT)
        Glibc.kill(child.pid, SIGTERM)
        let deadline = monotonicNanos() + UInt64(timeout.components.seconds) * 1_000_000_000
        while !child.hasExited && monotonicNanos() < deadline { sleepMilliseconds(20) }
        child.kill()
    }

    /// Starts a stopped or killed node again on the same ports and data, and waits until it
    /// answers its health check.
    public func restart(node index: Int, timeout: Duration = .seconds(30)) throws {
        if isRunning(node: index) { stop(node: index) }
        try launch(index)
        let deadline = monotonicNanos() + UInt64(timeout.components.seconds) * 1_000_000_000
        while monotonicNanos() < deadline {
            if httpGet(port: nodes[index].monitorPort, path: "/healthz") != nil { return }
            if let child = lock.withLock({ $0[index] }), child.hasExited { break }
            sleepMilliseconds(50)
        }
        throw PeerError(description: "\(nodes[index].name) did not come back: \(log(node: index).suffix(2000))")
    }

    /// Starts every stopped or killed node together (a whole-cluster restart: no node is healthy
    /// alone, JetStream needs a quorum) and waits until each answers its health check.
    public func restartAll(timeout: Duration = .seconds(60)) throws {
        for index in nodes.indices where !isRunning(node: index) { try launch(index) }
        let deadline = monotonicNanos() + UInt64(timeout.components.seconds) * 1_000_000_000
        var waiting = Set(nodes.indices)
        while !waiting.isEmpty, monotonicNanos() < deadline {
            for index in waiting where httpGet(port: nodes[index].monitorPort, path: "/healthz") != nil { waiting.remove(index) }
            sleepMilliseconds(50)
        }
        guard let stuck = waiting.first else { return }
        throw PeerError(description: "\(nodes[stuck].name) did not come back: \(log(node: stuck).suffix(2000))")
    }

    /// SIGSTOP: the process stays, its sockets stay open, it answers nothing (a hung server or a
    /// one-way partition).
    public func pause(node index: Int) {
        if let child = lock.withLock({ $0[index] }) { Glibc.kill(child.pid, SIGSTOP) }
    }

    /// SIGCONT after `pause`.
    public func resume(node index: Int) {
        if let child = lock.withLock({ $0[index] }) { Glibc.kill(child.pid, SIGCONT) }
    }

    public func isRunning(node index: Int) -> Bool {
        guard let child = lock.withLock({ $0[index] }) else { return false }
        return !child.hasExited
    }

    public func pid(node index: Int) -> pid_t? { lock.withLock { $0[index]?.pid } }

    /// Stops every node (SIGKILL, by PID). Safe to call more than once.
    public func shutdown() {
        let children = lock.withLock { all -> [PeerProcess] in
            defer { all.removeAll() }
            return Array(all.values)
        }
        for child in children {
            Glibc.kill(child.pid, SIGCONT)
            child.kill()
        }
    }

    /// What the node wrote (its last start).
    public func log(node index: Int) -> String {
        let n = starts.withLock { $0 }
        for attempt in stride(from: n, through: 1, by: -1) {
            if let text = readTextFile(dir.file("\(nodes[index].name)-\(attempt).log")) { return text }
        }
        return ""
    }

    // MARK: Monitoring

    /// The JetStream meta leader as `node` sees it (`/jsz`), or nil.
    public func metaLeader(seenBy index: Int) -> String? {
        guard let body = httpGet(port: nodes[index].monitorPort, path: "/jsz") else { return nil }
        if nodes.count == 1 { return body.contains("\"config\"") ? nodes[0].name : nil }
        guard let meta = body.range(of: "\"meta_cluster\"") else { return nil }
        return jsonString(after: "\"leader\"", in: body[meta.upperBound...])
    }

    /// Waits until every running node names the same meta leader.
    public func waitForMetaLeader(timeout: Duration = .seconds(30)) throws {
        let deadline = monotonicNanos() + UInt64(timeout.components.seconds) * 1_000_000_000
        var seen: [String?] = []
        while monotonicNanos() < deadline {
            let running = nodes.indices.filter { isRunning(node: $0) }
            seen = running.map { metaLeader(seenBy: $0) }
            if let first = seen.first, let leader = first, !leader.isEmpty, seen.allSatisfy({ $0 == leader }) { return }
            for i in nodes.indices where lock.withLock({ $0[i] != nil }) && !isRunning(node: i) {
                throw PeerError(description: "\(nodes[i].name) ended: \(log(node: i).suffix(2000))")
            }
            sleepMilliseconds(50)
        }
        throw PeerError(description: "no JetStream meta leader within \(timeout) (seen: \(seen)): \(log(node: 0).suffix(2000))")
    }

    // MARK: Inside

    private func launch(_ index: Int) throws {
        let n = starts.withLock { s -> Int in
            s += 1
            return s
        }
        let child = try PeerProcess([serverBinary, "-c", nodes[index].config], log: dir.file("\(nodes[index].name)-\(n).log"))
        lock.withLock { $0[index] = child }
    }

    private static func fill(_ template: String, _ values: [String: String]) throws -> String {
        guard var text = readTextFile(template) else { throw PeerError(description: "cannot read \(template)") }
        for (key, value) in values { text = text.replacingAll("{{\(key)}}", with: value) }
        return text
    }

    private static func makeCertificates(in dir: TemporaryDirectory) throws {
        func openssl(_ args: [String]) throws {
            let run = try PeerProcess(["openssl"] + args, log: dir.file("openssl.log"))
            guard run.wait() == 0 else { throw PeerError(description: "openssl \(args.first ?? ""): \(run.output)") }
        }
        try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=fleet test CA",
                     "-keyout", dir.file("ca.key"), "-out", dir.file("ca.pem")])
        try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", dir.file("server.key"),
                     "-out", dir.file("server.csr")])
        dir.write("san.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        try openssl(["x509", "-req", "-in", dir.file("server.csr"), "-CA", dir.file("ca.pem"), "-CAkey", dir.file("ca.key"),
                     "-CAcreateserial", "-days", "1", "-extfile", dir.file("san.ext"), "-out", dir.file("server.pem")])
    }
}

private func sleepMilliseconds(_ milliseconds: Int) {
    var ts = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
    var rest = timespec()
    while nanosleep(&ts, &rest) == -1 && errno == EINTR { ts = rest }
}

extension String {
    fileprivate func replacingAll(_ target: String, with replacement: String) -> String {
        var out = ""
        var rest = self[...]
        while let range = rest.range(of: target) {
            out += rest[..<range.lowerBound]
            out += replacement
            rest = rest[range.upperBound...]
        }
        out += rest
        return out
    }
}

/// The string value after `key` in a JSON text (`"key": "value"`), without a JSON parser.
private func jsonString(after key: String, in text: Substring) -> String? {
    guard let k = text.range(of: key) else { return nil }
    var rest = text[k.upperBound...].drop { $0 == " " || $0 == ":" }
    guard rest.first == "\"" else { return nil }
    rest = rest.dropFirst()
    guard let end = rest.firstIndex(of: "\"") else { return nil }
    return String(rest[..<end])
}

/// `GET path` on 127.0.0.1:`port` (HTTP/1.0); the body when the status is 200, else nil.
public func httpGet(port: Int, path: String, timeoutMilliseconds: Int = 1000) -> String? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var tv = timeval(tv_sec: timeoutMilliseconds / 1000, tv_usec: (timeoutMilliseconds % 1000) * 1000)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    let connected = withUnsafePointer(to: &address) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
    guard connected else { return nil }
    let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
    guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else { return nil }
    var response: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16384)
    while true {
        let n = recv(fd, &chunk, chunk.count, 0)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        response += chunk[0..<n]
    }
    let text = String(decoding: response, as: UTF8.self)
    guard text.hasPrefix("HTTP/1.1 200") || text.hasPrefix("HTTP/1.0 200"), let split = text.range(of: "\r\n\r\n") else { return nil }
    return String(text[split.upperBound...])
}
