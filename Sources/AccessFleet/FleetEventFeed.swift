import AccessConfig
import AccessCore
import Logging

/// Every controller's events, read from the community's events stream in stream order, for the
/// community-wide 以房管人 analytics. Use it from one thread (the analytics' own). While the
/// cluster cannot be reached it returns nothing and tries again every few seconds: the analytics
/// then wait, the gate does not.
public final class FleetEventFeed: @unchecked Sendable {
    let fleet: SiteConfig.Fleet
    let name: String
    let logger: Logger
    private var connection: NatsConnection?
    private var reader: StreamReader?
    private var nextAttempt = ContinuousClock.now
    private var lastProblem: String?

    public init(fleet: SiteConfig.Fleet, name: String, logger: Logger) {
        self.fleet = fleet
        self.name = name
        self.logger = logger
    }

    deinit {
        reader?.close()
        connection?.close()
    }

    public var isConnected: Bool { connection?.isConnected ?? false }

    /// Up to `limit` events stored after stream sequence `after`, in order, each with its
    /// `serial` replaced by its stream sequence (the community-wide position the analytics keep).
    /// Messages that are not events are skipped (their sequence still counts).
    public func page(after: Int64, limit: Int) -> [AccessEvent] {
        guard let reader = ensureReader(from: UInt64(max(0, after)) + 1) else { return [] }
        var events: [AccessEvent] = []
        do {
            while events.count < limit, let message = try reader.next(timeout: .milliseconds(events.isEmpty ? 20 : 1)) {
                guard let json = JSON.parse(String(decoding: message.payload, as: UTF8.self)), var event = AccessEvent(json: json) else { continue }
                event.serial = Int64(message.sequence)
                events.append(event)
            }
        } catch {
            problem("\(error)")
            reset()
        }
        return events
    }

    private func ensureReader(from sequence: UInt64) -> StreamReader? {
        if let reader, reader.nextSequence == sequence { return reader }
        reader?.close()
        reader = nil
        guard ContinuousClock.now >= nextAttempt else { return nil }
        nextAttempt = ContinuousClock.now + .seconds(3)
        do {
            if connection == nil { connection = try NatsConnection(FleetClient.options(fleet, name: name)) }
            let names = FleetNames(community: fleet.community)
            _ = try connection!.streamInfo(names.eventsStream)  // not there yet: the office has not made it
            let made = connection!.read(stream: names.eventsStream, fromSequence: sequence)
            reader = made
            if lastProblem != nil { logger.info("community events readable again") }
            lastProblem = nil
            return made
        } catch {
            problem("\(error)")
            reset()
            return nil
        }
    }

    private func problem(_ text: String) {
        if lastProblem == nil { logger.warning("community events not readable for now; analytics wait", metadata: ["error": "\(text)"]) }
        lastProblem = text
    }

    private func reset() {
        reader?.close()
        reader = nil
        connection?.close()
        connection = nil
    }
}

/// Makes each indicator change of the community raised once, by whichever controller claims it
/// first: every controller computes the same changes from the same stream, and the first to
/// create the change's key in the bucket `access_COMMUNITY_indicators` logs the event.
public final class IndicatorClaims: @unchecked Sendable {
    let fleet: SiteConfig.Fleet
    let name: String
    private var connection: NatsConnection?
    private var bucket: KeyValueBucket?

    public init(fleet: SiteConfig.Fleet, name: String) {
        self.fleet = fleet
        self.name = name
    }

    deinit { connection?.close() }

    /// True when this controller is the first to claim `change` (an indicator's key, when it
    /// began and whether it fired or cleared); false when another did. Throws while the cluster
    /// cannot be reached: the caller keeps the change and tries again.
    public func claim(_ change: String) throws -> Bool {
        do {
            if bucket == nil {
                if connection == nil { connection = try NatsConnection(FleetClient.options(fleet, name: name)) }
                bucket = try KeyValueBucket.bind(FleetNames(community: fleet.community).indicatorsBucket, on: connection!)
            }
            _ = try bucket!.create(Self.key(change), Array(change.utf8))
            return true
        } catch FleetError.revisionConflict {
            return false
        } catch {
            bucket = nil
            connection?.close()
            connection = nil
            throw error
        }
    }

    /// A key-value key may hold only letters, digits and `-_=.`: the change as hex.
    static func key(_ change: String) -> String { Hex.encode(change.utf8) }
}
