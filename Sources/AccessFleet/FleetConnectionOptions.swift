/// How to reach and log in to the fleet's NATS servers: a plain `Sendable` value with defaults.
/// Credentials are never logged or put into errors.
public struct FleetConnectionOptions: Sendable {
    /// `nats://host:port` or `tls://host:port` URLs; the client tries them and the ones the
    /// cluster announces.
    public var servers: [String]
    /// The connection's name, shown by the servers' monitoring (`/connz`): the controller id.
    public var name: String?
    /// A user name, with `password` or `passwordFile`.
    public var user: String?
    /// The password itself (prefer `passwordFile`).
    public var password: String?
    /// A file whose first line is the password (read when connecting).
    public var passwordFile: String?
    /// A `.creds` file (user JWT and nkey seed), instead of user and password.
    public var credsFile: String?
    /// CA certificates (PEM) to trust; setting it makes the connection use TLS.
    public var tlsCAFile: String?
    /// A client certificate and key (PEM), for servers that verify clients.
    public var tlsCertificateFile: String?
    public var tlsKeyFile: String?
    /// The name the server's certificate must carry, when it is not the host of the URL.
    public var tlsExpectedHostname: String?
    /// How long one connection attempt (TCP, TLS, CONNECT) may take.
    public var connectTimeout: Duration
    /// How long JetStream API requests (stream info, consumer create, message get) may take.
    public var requestTimeout: Duration
    /// The first wait between reconnection attempts; it doubles after each failed round up to
    /// `maxReconnectWait`. The client reconnects for ever.
    public var reconnectWait: Duration
    public var maxReconnectWait: Duration
    /// How often the client pings a quiet server, and how many unanswered pings close the
    /// connection (then it reconnects): together, how long a dead server goes unnoticed.
    public var pingInterval: Duration
    public var maxPingsOut: Int
    /// Called on libnats's callback thread when the connection is lost, comes back or closes.
    /// Keep it short; it must not call back into the connection synchronously for long.
    public var onEvent: (@Sendable (FleetConnectionEvent) -> Void)?

    public init(servers: [String], name: String? = nil, user: String? = nil, password: String? = nil,
                passwordFile: String? = nil, credsFile: String? = nil, tlsCAFile: String? = nil,
                tlsCertificateFile: String? = nil, tlsKeyFile: String? = nil, tlsExpectedHostname: String? = nil,
                connectTimeout: Duration = .seconds(2), requestTimeout: Duration = .seconds(5),
                reconnectWait: Duration = .milliseconds(100), maxReconnectWait: Duration = .seconds(5),
                pingInterval: Duration = .seconds(10), maxPingsOut: Int = 2,
                onEvent: (@Sendable (FleetConnectionEvent) -> Void)? = nil) {
        self.servers = servers
        self.name = name
        self.user = user
        self.password = password
        self.passwordFile = passwordFile
        self.credsFile = credsFile
        self.tlsCAFile = tlsCAFile
        self.tlsCertificateFile = tlsCertificateFile
        self.tlsKeyFile = tlsKeyFile
        self.tlsExpectedHostname = tlsExpectedHostname
        self.connectTimeout = connectTimeout
        self.requestTimeout = requestTimeout
        self.reconnectWait = reconnectWait
        self.maxReconnectWait = maxReconnectWait
        self.pingInterval = pingInterval
        self.maxPingsOut = maxPingsOut
        self.onEvent = onEvent
    }
}

/// The connection's state as libnats reports it.
public enum FleetConnectionStatus: String, Sendable, Equatable {
    case connecting, connected, reconnecting, disconnected, draining, closed
}

/// What happened to a connection (delivered to `FleetConnectionOptions.onEvent`).
public enum FleetConnectionEvent: Sendable, Equatable {
    /// The link to the server was lost; the client is reconnecting.
    case disconnected
    /// Connected again, to `url`.
    case reconnected(url: String)
    /// Closed for good (after `close()`, or when the server refused the credentials again).
    case closed
    /// The server reported an error without closing the connection (a permissions violation).
    case serverError(String)
}

/// Counters and state for a "partitioned" display and for readers that must notice a reconnect.
public struct FleetConnectionHealth: Sendable, Equatable {
    public var status: FleetConnectionStatus
    /// The URL connected to, when connected.
    public var connectedURL: String?
    /// Disconnections and successful reconnections since the start.
    public var disconnects: Int
    public var reconnects: Int
    /// CLOCK_MONOTONIC nanoseconds of the last disconnection, or nil.
    public var lastDisconnectNanos: UInt64?
}
