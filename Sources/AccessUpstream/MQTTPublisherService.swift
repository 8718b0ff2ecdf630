import AccessConfig
import AccessController
import Logging
import ServiceLifecycle

/// accessd's MQTT service: runs the publisher until graceful shutdown (SIGTERM/SIGINT) or
/// cancellation, then stops it in order (`offline`, cursor written, DISCONNECT).
public struct MQTTPublisherService: Service {
    public let publisher: MQTTPublisher

    public init(config: SiteConfig.MQTT, controllerID: String, databasePath: String, feed: EventFeed, logger: Logger) {
        publisher = MQTTPublisher(config: config, controllerID: controllerID, databasePath: databasePath, feed: feed, logger: logger)
    }

    public func run() async throws {
        try publisher.start()
        try? await gracefulShutdown()
        await publisher.stop()
    }
}
