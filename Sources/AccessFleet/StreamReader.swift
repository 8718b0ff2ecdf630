// Reading a stream in order from a sequence, for a long-running applier. The reader pulls from an
// ephemeral consumer (no acknowledgements, in memory, one replica) that starts at the next sequence
// the caller has not seen. Whenever that consumer may have lost or reordered something (the
// connection came back, its consumer sequence jumped, the server forgot it, or it says it sent
// more than arrived) the reader drops it and makes a new one from the same next sequence. The
// caller therefore sees every matching message once, in stream order, across server restarts and
// leader changes.
import AccessRuntime
import CNats
import Glibc

/// How a `StreamReader` pulls.
public struct StreamReaderOptions: Sendable {
    /// Messages asked for at a time.
    public var batch: Int
    /// How long the server keeps a consumer nobody pulls from (it is deleted on close too).
    public var inactiveThreshold: Duration
    /// How often an idle reader asks whether its consumer still exists and has sent nothing that
    /// was lost; also the longest single pull.
    public var checkInterval: Duration
    /// The wait before trying again after a failed consumer creation (doubles up to 8×).
    public var retryWait: Duration

    public init(batch: Int = 256, inactiveThreshold: Duration = .seconds(60), checkInterval: Duration = .seconds(1),
                retryWait: Duration = .milliseconds(50)) {
        self.batch = batch
        self.inactiveThreshold = inactiveThreshold
        self.checkInterval = checkInterval
        self.retryWait = retryWait
    }
}

/// Counters for tests and status pages.
public struct StreamReaderStatistics: Sendable, Equatable {
    /// Consumers created (1 for a reader that never had to start again).
    public var consumersCreated: Int
    /// Why the reader started again, by reason.
    public var restartsAfterReconnect: Int
    public var restartsAfterGap: Int
    public var restartsAfterCheck: Int
    public var restartsAfterError: Int
}

/// Reads `stream` in order from a sequence. Use it from one thread at a time (`next` blocks);
/// `close()` may be called from another thread.
public final class StreamReader: @unchecked Sendable {
    public let connection: NatsConnection
    public let stream: String
    public let filter: String?
    public let options: StreamReaderOptions

    private let monitor = Monitor()
    // Guarded by `monitor`.
    private var subscription: OpaquePointer?
    private var buffered: [StreamMessage] = []
    private var bufferedIndex = 0
    private var nextSequenceValue: UInt64
    private var lastConsumerSequence: UInt64 = 0
    private var reconnectsAtCreation = 0
    private var lastCheck: UInt64 = 0
    private var failures = 0
    private var closed = false
    private var statistics = StreamReaderStatistics(consumersCreated: 0, restartsAfterReconnect: 0, restartsAfterGap: 0,
                                                    restartsAfterCheck: 0, restartsAfterError: 0)

    init(connection: NatsConnection, stream: String, filter: String?, fromSequence: UInt64, options: StreamReaderOptions) {
        self.connection = connection
        self.stream = stream
        self.filter = filter
        self.options = options
        nextSequenceValue = max(fromSequence, 1)
    }

    deinit {
        if let subscription { retiredSubscriptions.retire(SubscriptionHandle(pointer: subscription)) }
    }

    /// The sequence the next message will have at least: one past the last one returned.
    public var nextSequence: UInt64 { monitor.locked { nextSequenceValue } }

    public var stats: StreamReaderStatistics { monitor.locked { statistics } }

    /// The next message in order, or nil when none arrives within `timeout`.
    ///
    /// Throws what waiting cannot fix: `.notFound` (no such stream), `.notPermitted`,
    /// `.notConnected` once the connection is closed, `.invalidArgument`. Transient failures
    /// (no leader, a server restarting, a lost link) are retried until the timeout.
    public func next(timeout: Duration) throws(FleetError) -> StreamMessage? {
        let deadline = monotonicNanos() + timeout.nanoseconds
        return try monitor.locked { () throws(FleetError) -> StreamMessage? in
            guard try fill(until: deadline) else { return nil }
            let message = buffered[bufferedIndex]
            bufferedIndex += 1
            if bufferedIndex == buffered.count {
                buffered.removeAll(keepingCapacity: true)
                bufferedIndex = 0
            }
            nextSequenceValue = message.sequence + 1
            return message
        }
    }

    /// Waits up to `timeout` until a message is there for `next`, without taking it: true when
    /// one is. Lets a caller wait with nothing held, then read what arrived under its locks.
    public func waitForMessage(timeout: Duration) throws(FleetError) -> Bool {
        let deadline = monotonicNanos() + timeout.nanoseconds
        return try monitor.locked { () throws(FleetError) -> Bool in try fill(until: deadline) }
    }

    /// Stops reading and deletes the consumer. Safe to call more than once.
    public func close() {
        monitor.locked {
            closed = true
            monitor.broadcast()
            if let subscription {
                // Deletes the ephemeral consumer when the server answers; the inactivity
                // threshold removes it otherwise.
                natsSubscription_Unsubscribe(subscription)
                retiredSubscriptions.retire(SubscriptionHandle(pointer: subscription))
                self.subscription = nil
            }
        }
    }

    // MARK: Inside, with `monitor` held

    /// Pulls until a message is buffered (true) or `deadline` passes (false).
    private func fill(until deadline: UInt64) throws(FleetError) -> Bool {
        while bufferedIndex >= buffered.count {
            if closed {
                throw .notConnected(FleetFailure(operation: "read \(stream)", status: Int32(NATS_CONNECTION_CLOSED.rawValue),
                                                 statusText: "the reader is closed"))
            }
            if monotonicNanos() >= deadline { return false }
            try pull(until: deadline)
        }
        return true
    }

    /// One round: make a consumer if needed, pull once, fill `buffered`.
    private func pull(until deadline: UInt64) throws(FleetError) {
        if subscription != nil, connection.health.reconnects != reconnectsAtCreation {
            drop(\.restartsAfterReconnect)
        }
        if subscription == nil {
            do {
                try createConsumer()
                failures = 0
            } catch {
                switch error {
                case .notFound, .notPermitted, .invalidArgument, .authenticationFailed: throw error
                case .notConnected where connection.status == .closed: throw error
                default:
                    failures += 1
                    pause(until: deadline)
                    return
                }
            }
        }
        guard let subscription else { return }
        let now = monotonicNanos()
        let slice = min(deadline > now ? deadline - now : 0, options.checkInterval.nanoseconds)
        var list = natsMsgList()
        var code = jsErrCode(0)
        let status = natsSubscription_Fetch(&list, subscription, Int32(options.batch), max(Int64(slice / 1_000_000), 1), &code)
        defer { natsMsgList_Destroy(&list) }
        if status == NATS_OK || (status == NATS_TIMEOUT && list.Count > 0) {
            take(list)
            return
        }
        if status == NATS_TIMEOUT {
            if monotonicNanos() - lastCheck >= options.checkInterval.nanoseconds { verifyConsumer() }
            return
        }
        if status == NATS_CONNECTION_CLOSED, connection.status == .closed {
            throw fleetError("read \(stream)", status, jetStream: Int(code.rawValue))
        }
        // The consumer was deleted, a heartbeat was missed, the link dropped: start again.
        drop(\.restartsAfterError)
        failures += 1
        pause(until: deadline)
    }

    private func createConsumer() throws(FleetError) {
        let strings = CStringArena()
        var so = jsSubOptions()
        jsSubOptions_Init(&so)
        so.Stream = strings.dup(stream)
        so.Config.DeliverPolicy = js_DeliverByStartSequence
        so.Config.OptStartSeq = nextSequenceValue
        so.Config.AckPolicy = js_AckNone
        so.Config.FilterSubject = strings.dup(filter)
        so.Config.InactiveThreshold = Int64(options.inactiveThreshold.nanoseconds)
        so.Config.MemoryStorage = true
        so.Config.Replicas = 1
        so.Config.Description = strings.dup("accessd reader")
        var sub: OpaquePointer?
        var code = jsErrCode(0)
        let started = monotonicNanos()
        // The subject is only used to find the stream when none is given; the filter is in the
        // consumer's configuration.
        let subject = filter ?? ">"
        let status = js_PullSubscribe(&sub, connection.js, subject, nil, nil, &so, &code)
        guard status == NATS_OK, let sub else {
            throw connection.refine(fleetError("read \(stream) from #\(nextSequenceValue)", status, jetStream: Int(code.rawValue)),
                                    subject: "$JS.API.CONSUMER.CREATE.\(stream)", since: started)
        }
        subscription = sub
        lastConsumerSequence = 0
        reconnectsAtCreation = connection.health.reconnects
        lastCheck = monotonicNanos()
        statistics.consumersCreated += 1
    }

    /// Takes a fetched batch in order, stopping at a gap in the consumer's sequence (something
    /// was lost between server and client): the consumer is dropped and the next round starts
    /// again from the first sequence not taken.
    private func take(_ list: natsMsgList) {
        guard let messages = list.Msgs else { return }
        for i in 0..<Int(list.Count) {
            guard let msg = messages[i] else { continue }
            var meta: UnsafeMutablePointer<jsMsgMetaData>?
            guard natsMsg_GetMetaData(&meta, msg) == NATS_OK, let meta else {
                drop(\.restartsAfterError)
                return
            }
            let streamSequence = meta.pointee.Sequence.Stream
            let consumerSequence = meta.pointee.Sequence.Consumer
            let timestamp = meta.pointee.Timestamp
            jsMsgMetaData_Destroy(meta)
            guard consumerSequence == lastConsumerSequence + 1 else {
                drop(\.restartsAfterGap)
                return
            }
            lastConsumerSequence = consumerSequence
            let expected = buffered.last.map { $0.sequence + 1 } ?? nextSequenceValue
            // Never hand out a sequence twice or go back.
            guard streamSequence >= expected else { continue }
            buffered.append(StreamMessage(sequence: streamSequence,
                                          subject: natsMsg_GetSubject(msg).map { String(cString: $0) } ?? "",
                                          headers: readHeaders(msg), payload: readPayload(msg),
                                          timestampNanos: timestamp))
        }
    }

    /// Asks the server about the consumer: gone, or delivered more than arrived, means start again.
    private func verifyConsumer() {
        lastCheck = monotonicNanos()
        guard let subscription else { return }
        var info: UnsafeMutablePointer<jsConsumerInfo>?
        var code = jsErrCode(0)
        let status = natsSubscription_GetConsumerInfo(&info, subscription, nil, &code)
        guard status == NATS_OK, let info else {
            drop(\.restartsAfterCheck)
            return
        }
        let delivered = info.pointee.Delivered.Consumer
        jsConsumerInfo_Destroy(info)
        if delivered > lastConsumerSequence { drop(\.restartsAfterCheck) }
    }

    private func drop(_ reason: WritableKeyPath<StreamReaderStatistics, Int>) {
        guard let subscription else { return }
        // No unsubscribe request: the old consumer may sit on a server that is gone, and the
        // inactivity threshold removes it. Destroyed later, when nothing is in flight for it.
        retiredSubscriptions.retire(SubscriptionHandle(pointer: subscription))
        self.subscription = nil
        statistics[keyPath: reason] += 1
    }

    /// Waits a little before trying again (doubling with each failure), never past `deadline`.
    private func pause(until deadline: UInt64) {
        let base = options.retryWait.nanoseconds
        let wait = base << UInt64(min(failures, 4))
        let until = min(deadline, monotonicNanos() + wait)
        while monotonicNanos() < until, !closed {
            monitor.wait(until: until)  // nobody signals: a wait that lets close() in meanwhile
        }
    }
}
