import AccessAnalytics
import AccessConfig
import AccessControlProtocol
import AccessController
import AccessCore
import AccessRuntime
import AccessStore
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import Synchronization

/// The upstream HTTP API (interfaces.md): events by cursor with long-poll, plate reads from
/// cameras, portal commands, `/healthz` and `/metrics`. Every route but `/healthz` needs a bearer
/// token made with `accessctl token add` holding the route's scope; tokens are checked against
/// stored hashes in constant time, and an address that keeps presenting wrong ones is refused for
/// a minute (429) while every other address is served as before.
public struct UpstreamAPI: Sendable {
    public let controller: Controller
    public let config: SiteConfig.HTTP
    let reader: LogReader
    let limiter: AuthLimiter
    let logger: Logger
    /// The wall clock tokens expire by.
    let clock: any RuntimeClock
    /// The 以房管人 analytics; nil: their routes answer 503.
    public let analytics: AnalyticsService?

    public init(controller: Controller, config: SiteConfig.HTTP, logger: Logger = Logger(label: "accessd.api"),
                analytics: AnalyticsService? = nil, clock: any RuntimeClock = SystemClock()) throws {
        self.controller = controller
        self.clock = clock
        self.config = config
        self.analytics = analytics
        self.reader = try LogReader(path: controller.config.databasePath)
        self.limiter = AuthLimiter(perMinute: config.authFailuresPerMinute)
        self.logger = logger
    }

    /// The server as a swift-service-lifecycle service; `onRunning` gets the bound port (tests
    /// listen on port 0).
    public func application(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) throws -> some ApplicationProtocol {
        let router = Router(context: APIContext.self)
        router.add(middleware: ErrorMiddleware())
        router.add(middleware: MethodNotAllowed())
        router.get("/healthz") { _, _ in try await health() }
        let api = router.group("/api/v1").add(middleware: BearerAuth(api: self))
        api.get("/events") { request, _ in try await events(request) }
        api.post("/plates") { request, _ in try await plate(request) }
        api.post("/portals/:portal/:command") { request, context in try await portalCommand(request, context) }
        api.get("/houses/:house/summary") { request, context in try await houseSummary(request, context) }
        api.get("/indicators") { request, _ in try await indicators(request) }
        router.group("/metrics").add(middleware: BearerAuth(api: self)).get { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(string: controller.metrics.render())))
        }
        let server: HTTPServerBuilder
        if let certificate = config.tlsCertificate, let key = config.tlsKey {
            let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
            var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain,
                                                               privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
            // TLS 1.0 and 1.1 are broken; a client that offers nothing newer is refused at the handshake.
            tls.minimumTLSVersion = .tlsv12
            server = try .tls(.http1(), tlsConfiguration: tls)
        } else {
            server = .http1()
        }
        return Application(
            router: router, server: server,
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: "accessd"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }

    // MARK: Routes

    func health() async throws -> Response {
        let last = controller.feed.lastSerial
        // The gate decides from its local replica whatever the fleet does: a partitioned
        // controller is still healthy, and says how far behind it is.
        return json(.ok, .object([("status", "ok"), ("controller", .string(controller.config.controller.id)), ("last_serial", .int(last)),
                                  ("fleet", controller.fleetStatus()?.json ?? .null)]))
    }

    func events(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        for (key, _) in query where !["after", "limit", "wait"].contains(String(key)) {
            throw APIError(.badRequest, "unknown parameter \"\(key)\" (known: after, limit, wait)")
        }
        let after = try Self.integer(query["after"].map(String.init), "after", default: 0, range: 0...Int64.max)
        let limit = Int(try Self.integer(query["limit"].map(String.init), "limit", default: 100, range: 1...1000))
        let wait = try Self.integer(query["wait"].map(String.init), "wait", default: 0, range: 0...30)
        var page = try await reader.page(after: after, limit: limit + 1)
        if page.isEmpty && wait > 0 {
            await controller.feed.wait(after: after, timeout: .seconds(wait))
            page = try await reader.page(after: after, limit: limit + 1)
        }
        let more = page.count > limit
        if more { page.removeLast() }
        let id = controller.config.controller.id
        return json(.ok, .object([
            ("events", .array(page.map { $0.json(controllerID: id) })),
            ("next_after", .int(page.last?.serial ?? after)),
            ("more", .bool(more)),
        ]))
    }

    func plate(_ request: Request) async throws -> Response {
        let body = try await Self.body(request, limit: config.maxBodyBytes)
        guard case .string(let lane)? = body["lane"], !lane.isEmpty else { throw APIError(.badRequest, "\"lane\" must be a non-empty string") }
        guard case .string(let plate)? = body["plate"], !plate.isEmpty else { throw APIError(.badRequest, "\"plate\" must be a non-empty string") }
        switch body["confidence"] {
        case nil, .null: break
        case .double(let c) where (0...1).contains(c): break
        case .int(let c) where (0...1).contains(c): break
        default: throw APIError(.badRequest, "\"confidence\" must be a number from 0 to 1")
        }
        guard case .object(let fields) = body else { throw APIError(.badRequest, "the body must be a JSON object") }
        for (key, _) in fields where !["lane", "plate", "confidence"].contains(key) {
            throw APIError(.badRequest, "unknown field \"\(key)\" (known: lane, plate, confidence)")
        }
        // Checked here: the controller logs reads from unbound readers, and a refused request leaves no trace.
        guard controller.config.portals.contains(where: { $0.readers.contains(lane) }),
              let decision = controller.plate(lane: lane, plate: plate) else {
            throw APIError(.notFound, "no portal has a lane named \(lane)")
        }
        return json(.ok, .object([
            ("granted", .bool(decision.granted)), ("reason", .string(decision.reason.rawValue)),
            ("person_id", .string(decision.personID)), ("house_id", .string(decision.houseID)), ("portal", .string(decision.portal)),
        ]))
    }

    func portalCommand(_ request: Request, _ context: APIContext) async throws -> Response {
        let portal = try context.parameters.require("portal")
        let raw = try context.parameters.require("command")
        let who = "api:\(context.tokenName ?? "?")"
        let state: [String: Bool]
        do {
            if let command = DoorCommand(rawValue: raw) {
                state = try controller.door(portal: portal, command: command, operator: who)
            } else if let command = FenceCommand(rawValue: raw) {
                state = try controller.fence(portal: portal, command: command, operator: who)
            } else {
                throw APIError(.badRequest, "command \"\(raw)\" is not one of \((DoorCommand.allCases.map(\.rawValue) + FenceCommand.allCases.map(\.rawValue)).joined(separator: ", "))")
            }
        } catch let error as ControlError {
            if case .refused = error { throw APIError(.conflict, error.description) }
            throw APIError(.notFound, error.description)
        }
        logger.info("portal command", metadata: ["portal": "\(portal)", "command": "\(raw)", "token": "\(context.tokenName ?? "?")"])
        return json(.ok, .object([("portal", .string(portal)), ("command", .string(raw)),
                                  ("state", .object(state.keys.sorted().map { ($0, JSON.bool(state[$0]!)) }))]))
    }

    func houseSummary(_ request: Request, _ context: APIContext) async throws -> Response {
        let analytics = try runningAnalytics()
        try Self.refuseParameters(request)
        let house = try context.parameters.require("house")
        do {
            guard let summary = try await analytics.summaryJSON(house: house) else { throw APIError(.notFound, "no house \(house)") }
            return json(.ok, summary)
        } catch let error as AnalyticsNotReady {
            throw APIError(.serviceUnavailable, error.description)
        }
    }

    func indicators(_ request: Request) async throws -> Response {
        let analytics = try runningAnalytics()
        try Self.refuseParameters(request)
        do {
            let zone = controller.config.controller.timeZone
            let active = try await analytics.indicators()
            return json(.ok, .object([("indicators", .array(active.map { $0.json(zone: zone) })),
                                      ("as_of_serial", .int(await analytics.appliedSerial))]))
        } catch let error as AnalyticsNotReady {
            throw APIError(.serviceUnavailable, error.description)
        }
    }

    func runningAnalytics() throws -> AnalyticsService {
        guard let analytics else { throw APIError(.serviceUnavailable, "the analytics do not run on this controller ([analytics] enabled = false)") }
        return analytics
    }

    // MARK: Helpers

    static func refuseParameters(_ request: Request) throws {
        for (key, _) in request.uri.queryParameters {
            throw APIError(.badRequest, "unknown parameter \"\(key)\" (this route takes none)")
        }
    }

    static func integer(_ text: String?, _ name: String, default fallback: Int64, range: ClosedRange<Int64>) throws -> Int64 {
        guard let text else { return fallback }
        guard let value = Int64(text), range.contains(value) else {
            throw APIError(.badRequest, "\(name)=\(text.prefix(40)) is not an integer in \(range.lowerBound)…\(range.upperBound)")
        }
        return value
    }

    /// The request's JSON object, refusing bodies over `limit` (413) and anything but an object (400).
    static func body(_ request: Request, limit: Int) async throws -> JSON {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch {
            throw APIError(.contentTooLarge, "the body is larger than \(limit) bytes")
        }
        guard let value = JSON.parse(String(decoding: buffer.readableBytesView, as: UTF8.self)) else { throw APIError(.badRequest, "the body is not valid JSON") }
        guard case .object = value else { throw APIError(.badRequest, "the body must be a JSON object") }
        return value
    }
}

func json(_ status: HTTPResponse.Status, _ value: JSON) -> Response {
    Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: value.rendered() + "\n")))
}

/// A refusal with its status and a message naming the problem.
struct APIError: Error {
    let status: HTTPResponse.Status
    let message: String
    /// Sent with the error response (`Allow` with a 405).
    let headers: HTTPFields
    /// Further fields of the error body (`required_scope` with a 403).
    let extra: [(String, JSON)]
    init(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:], extra: [(String, JSON)] = []) {
        self.status = status
        self.message = message
        self.headers = headers
        self.extra = extra
    }
}

/// Each request's context: the caller's address and, once checked, its token's name.
public struct APIContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let remote: String
    var tokenName: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remote = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }
}

/// Turns every error into `{"error": "..."}` with its status; nothing about tokens is echoed.
struct ErrorMiddleware: RouterMiddleware {
    func handle(_ request: Request, context: APIContext, next: (Request, APIContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            var response = json(error.status, .object([("error", .string(error.message))] + error.extra))
            for field in error.headers { response.headers.append(field) }
            if error.status == .unauthorized { response.headers[.wwwAuthenticate] = "Bearer" }
            return response
        } catch let error as HTTPResponseError {
            let status = error.status
            return json(status, .object([("error", .string(status.reasonPhrase))]))
        } catch {
            context.logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return json(.internalServerError, .object([("error", "internal error")]))
        }
    }
}

/// `Authorization: Bearer TOKEN`, checked against the stored hashes, then the token's expiry
/// and the scope the route needs (`APIRoutes`): a token without it gets 403 naming the scope.
struct BearerAuth: RouterMiddleware {
    let api: UpstreamAPI

    func handle(_ request: Request, context: APIContext, next: (Request, APIContext) async throws -> Response) async throws -> Response {
        if api.limiter.isBlocked(context.remote) {
            throw APIError(.tooManyRequests, "too many failed token checks from this address; try again in a minute")
        }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "), header.count > 7 else {
            api.limiter.fail(context.remote)
            throw APIError(.unauthorized, "a bearer token is required (accessctl token add NAME)")
        }
        let now = api.clock.wallMicros()
        guard let grant = try await api.reader.tokenGrant(for: String(header.dropFirst(7))) else {
            api.limiter.fail(context.remote)
            api.logger.notice("refused an API token", metadata: ["remote": "\(context.remote)"])
            throw APIError(.unauthorized, "the bearer token is not valid")
        }
        if grant.isExpired(atMicros: now) {
            api.limiter.fail(context.remote)
            api.logger.notice("refused an expired API token", metadata: ["remote": "\(context.remote)", "token": "\(grant.name)"])
            throw APIError(.unauthorized, "the bearer token has expired")
        }
        do {
            try await api.reader.recordUse(of: grant.name, atMicros: now)
        } catch {
            api.logger.warning("could not record a token's last use", metadata: ["token": "\(grant.name)", "error": "\(error)"])
        }
        if let scope = APIRoutes.scope(at: request.uri.path), !grant.scopes.contains(scope) {
            throw APIError(.forbidden, "this token lacks the scope \(scope.rawValue) (accessctl token add NAME --scope \(scope.rawValue))",
                           headers: [.wwwAuthenticate: "Bearer error=\"insufficient_scope\", scope=\"\(scope.rawValue)\""],
                           extra: [("required_scope", .string(scope.rawValue))])
        }
        var context = context
        context.tokenName = grant.name
        return try await next(request, context)
    }
}

/// Counts failed token checks per address over a minute.
final class AuthLimiter: Sendable {
    let perMinute: Int
    private let failures = Mutex<[String: (count: Int, since: ContinuousClock.Instant)]>([:])

    init(perMinute: Int) { self.perMinute = perMinute }

    func fail(_ address: String) {
        failures.withLock { f in
            let now = ContinuousClock.now
            if let entry = f[address], now - entry.since < .seconds(60) {
                f[address] = (entry.count + 1, entry.since)
            } else {
                f[address] = (1, now)
            }
            if f.count > 10_000 { f = f.filter { now - $0.value.since < .seconds(60) } }
        }
    }

    func isBlocked(_ address: String) -> Bool {
        failures.withLock { f in
            guard let entry = f[address] else { return false }
            return ContinuousClock.now - entry.since < .seconds(60) && entry.count >= perMinute
        }
    }
}

/// The API's own read connection to the database, on its own thread: SQLite calls block, and they
/// must not hold the cooperative pool's threads.
actor LogReader {
    private let thread: ThreadExecutor
    private let db: AccessDatabase
    private var tokens: [APITokenGrant] = []
    private var tokensVersion: Int64 = -1
    /// When each token's last use was last written: at most once a minute, each is a durable write.
    private var usesRecorded: [String: Int64] = [:]

    nonisolated var unownedExecutor: UnownedSerialExecutor { thread.asUnownedSerialExecutor() }

    init(path: String) throws {
        thread = try ThreadExecutor(threadName: "api-reader")
        db = try AccessDatabase(path: path, create: false)
        // Recording a token's use may meet the event writer's transaction: wait for it briefly.
        try db.setBusyTimeout(milliseconds: 1000)
    }

    deinit { thread.stop() }

    func page(after: Int64, limit: Int) throws -> [AccessEvent] {
        try db.events(EventQuery(after: after, limit: limit))
    }

    /// The live token `token` is, or nil. Tokens are reread when the database changed.
    func tokenGrant(for token: String) throws -> APITokenGrant? {
        let version = try db.dataVersion()
        if version != tokensVersion {
            tokens = try db.apiTokenGrants()
            tokensVersion = version
        }
        return APIToken.match(token, among: tokens)
    }

    /// Writes the token's last use when the stored one is a minute old or more.
    func recordUse(of name: String, atMicros now: Int64) throws {
        if let last = usesRecorded[name], now - last < 60_000_000 { return }
        usesRecorded[name] = now
        try db.recordAPITokenUse(name: name, atMicros: now)
    }
}
