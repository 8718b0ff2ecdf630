// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "CommunityAccess",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "accessd", targets: ["accessd"]),
        .executable(name: "accessctl", targets: ["accessctl"]),
        .executable(name: "access-gpio-probe", targets: ["access-gpio-probe"]),
        .library(name: "AccessCore", targets: ["AccessCore"]),
        .library(name: "AccessStore", targets: ["AccessStore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        // traits: [] keeps full Foundation and ICU out (swift-stack-notes.md).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.5.0", traits: []),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        // C libraries as thin system-library targets, imported only by the file that needs them.
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CQRencode", providers: [.apt(["libqrencode-dev"])]),
        .systemLibrary(name: "CGPIOD", providers: [.apt(["libgpiod-dev"])]),
        .systemLibrary(name: "CModbus", providers: [.apt(["libmodbus-dev"])]),
        .systemLibrary(name: "CMosquitto", providers: [.apt(["libmosquitto-dev"])]),
        .systemLibrary(name: "CGlibcExtras"),
        .systemLibrary(name: "CNats", pkgConfig: "libnats", providers: [.apt(["libnats-dev"])]),

        // Threads, executor, monitor, clocks, the errno helper and the file reader: the one copy
        // every module uses.
        .target(
            name: "AccessRuntime",
            dependencies: ["CGlibcExtras", .product(name: "SystemPackage", package: "swift-system")]
        ),
        // The domain and every decision: pure, clock injected; its one read is a zone from tzdata.
        .target(
            name: "AccessCore",
            // AccessRuntime's file reader: the zone database is read once, when a zone is loaded.
            dependencies: ["AccessRuntime", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // SQLite: roster, event log, audit log, migrations; builds the in-memory index.
        .target(name: "AccessStore", dependencies: ["AccessCore", "AccessRuntime", "CSQLite"]),
        // Devices by role (locks, contacts, readers, barriers, fence hosts, relay boards), the
        // libgpiod and libmodbus drivers behind them, and the simulated board. Board and device
        // maps are config values (AccessConfig); the drivers never read TOML.
        .target(
            name: "AccessDevices",
            dependencies: ["AccessCore", "AccessConfig", "AccessRuntime", "CGPIOD", "CModbus"]
        ),
        // The control socket's typed requests and replies, their JSON wire format, and the
        // client side: shared by accessd and accessctl, so accessctl never links the controller.
        .target(name: "AccessControlProtocol", dependencies: ["AccessCore"]),
        // The controller: board events → decisions → relays and durable events; control socket.
        .target(
            name: "AccessController",
            dependencies: [
                "AccessCore", "AccessStore", "AccessDevices", "AccessConfig", "AccessControlProtocol", "AccessRuntime",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // 以房管人 analytics: the incremental engine (one rule per indicator kind) and the service
        // in accessd that follows the durable log and raises indicator events.
        .target(
            name: "AccessAnalytics",
            dependencies: [
                "AccessCore", "AccessStore", "AccessConfig", "AccessController", "AccessRuntime", "AccessFleet",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The upstream platform's side: the HTTP API (Hummingbird) and MQTT push (libmosquitto),
        // both reading the durable event log by cursor.
        .target(
            name: "AccessUpstream",
            dependencies: [
                "AccessCore", "AccessStore", "AccessConfig", "AccessController", "AccessAnalytics", "AccessRuntime", "CMosquitto",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The one TOML reader and what it reads: the site description shared by accessd and
        // accessctl, board maps and Modbus device maps.
        .target(
            name: "AccessConfig",
            dependencies: ["AccessCore", "AccessRuntime", .product(name: "TOMLKit", package: "TOMLKit")]
        ),
        // accessctl's command tree, a library so tests can run it in-process.
        .target(
            name: "AccessCtlKit",
            dependencies: [
                "AccessCore", "AccessStore", "AccessConfig", "AccessControlProtocol", "AccessFleet", "AccessRuntime", "CQRencode",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "accessctl", dependencies: ["AccessCtlKit"]),
        .executableTarget(
            name: "accessd",
            dependencies: [
                "AccessController", "AccessAnalytics", "AccessUpstream", "AccessFleet", "AccessControlProtocol",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // Runs the real GPIO driver in the hardware-in-the-loop guest (Hardware/hil/).
        .executableTarget(name: "access-gpio-probe", dependencies: ["AccessDevices", "AccessConfig", "AccessRuntime"]),

        // The fleet's transport: a blocking, thread-safe Swift API over libnats (JetStream streams,
        // ordered reading from a sequence, key-value buckets), for dedicated threads.
        .target(
            name: "AccessFleet",
            dependencies: ["CNats", "AccessRuntime", "AccessCore", "AccessStore", "AccessConfig", .product(name: "Logging", package: "swift-log")]
        ),

        // Fakes and builders for tests; never linked into a product.
        .target(name: "AccessTestSupport", dependencies: ["AccessCore", "AccessStore", "AccessDevices", "AccessRuntime", "CGlibcExtras"]),

        .testTarget(name: "AccessRuntimeTests", dependencies: ["AccessRuntime"]),
        .testTarget(name: "AccessCoreTests", dependencies: ["AccessCore", "AccessTestSupport"]),
        .testTarget(name: "AccessStoreTests", dependencies: ["AccessStore", "AccessTestSupport"]),
        .testTarget(name: "AccessDevicesTests", dependencies: ["AccessDevices", "AccessConfig", "AccessTestSupport"]),
        .testTarget(name: "AccessControlProtocolTests", dependencies: ["AccessControlProtocol"]),
        .testTarget(
            name: "AccessFleetTests",
            dependencies: ["AccessFleet", "AccessRuntime", "AccessTestSupport", "AccessCtlKit", "AccessControlProtocol", "AccessCore", "AccessStore"]
        ),
        .testTarget(
            name: "AccessControllerTests",
            dependencies: ["AccessController", "AccessControlProtocol", "AccessRuntime", "AccessTestSupport",
                           .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "AccessAnalyticsTests", dependencies: ["AccessAnalytics", "AccessTestSupport"]),
        .testTarget(name: "AccessUpstreamTests", dependencies: ["AccessUpstream", "AccessAnalytics", "AccessRuntime", "AccessTestSupport"]),
        .testTarget(
            name: "AccessCtlTests",
            dependencies: ["AccessCtlKit", "AccessConfig", "AccessStore", "AccessControlProtocol", "AccessTestSupport"]
        ),

        .executableTarget(
            name: "AccessBenchmarks",
            dependencies: [
                "AccessCore", "AccessStore", "AccessDevices", "AccessConfig", "AccessController", "AccessAnalytics",
                "AccessRuntime", "AccessTestSupport",
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/AccessBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// Foundation's members are visible only in files that import it (none in Sources does): a use of
// corelibs Foundation (`range(of:)`, `String(format:)`…) would link ICU's 34 MB of data into every
// statically linked program; Scripts/package.sh checks the link for it.
for target in package.targets where target.type == .regular || target.type == .executable {
    target.swiftSettings = (target.swiftSettings ?? []) + [.enableUpcomingFeature("MemberImportVisibility")]
}
