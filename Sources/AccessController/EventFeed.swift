import Synchronization

/// Tells readers of the event log (the HTTP long-poll, the MQTT publisher) that new events are
/// durable, without polling the database: the store worker publishes the last serial it committed.
public final class EventFeed: Sendable {
    private struct Waiter {
        let id: UInt64
        let after: Int64
        let continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var last: Int64
        var nextID: UInt64 = 0
        var waiters: [Waiter] = []
        /// Waits whose timeout or cancellation came before they started waiting.
        var expired: Set<UInt64> = []
    }

    private let state: Mutex<State>

    public init(lastSerial: Int64) { state = Mutex(State(last: lastSerial)) }

    /// The serial of the newest durable event.
    public var lastSerial: Int64 { state.withLock { $0.last } }

    /// Called once events up to `serial` are committed.
    public func publish(_ serial: Int64) {
        let ready: [Waiter] = state.withLock { s in
            guard serial > s.last else { return [] }
            s.last = serial
            let ready = s.waiters.filter { $0.after < serial }
            s.waiters.removeAll { $0.after < serial }
            return ready
        }
        for waiter in ready { waiter.continuation.resume() }
    }

    /// Returns once an event with a serial above `after` is durable, after `timeout`, or when the
    /// calling task is cancelled, whichever comes first.
    public func wait(after: Int64, timeout: Duration) async {
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled { self?.release(id) }
        }
        defer {
            timer.cancel()
            state.withLock { _ = $0.expired.remove(id) }
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s -> Bool in
                    if s.last > after || s.expired.contains(id) { return true }
                    s.waiters.append(Waiter(id: id, after: after, continuation: continuation))
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            release(id)
        }
    }

    private func release(_ id: UInt64) {
        let waiter: Waiter? = state.withLock { s in
            guard let i = s.waiters.firstIndex(where: { $0.id == id }) else {
                s.expired.insert(id)
                return nil
            }
            return s.waiters.remove(at: i)
        }
        waiter?.continuation.resume()
    }
}
