import AccessRuntime
import CNats
import Synchronization

/// Holds things given up by their owner and releases each only once `grace` has passed since,
/// at a later `retire` (nothing runs in the background). What is still held when the process
/// ends is never released, which costs a few kilobytes.
///
/// Used for libnats subscriptions: libnats 3.4.1 (Debian 12's libnats-dev) frees a subscription
/// on its last release while its read loop may still be delivering a message to it, having
/// taken the pointer from the connection's table just before the subscription left it; the loop
/// then writes to freed memory and the heap is corrupt (`malloc(): invalid size`, seen as an
/// accessd gone after a SIGSTOP and a reconnect; fixed upstream in 3.6.0, nats.c #638). Seconds
/// later nothing can be in flight for it: a reader's pull requests expire within its check
/// interval (1 s).
public final class DeferredRelease<Item>: Sendable {
    private struct Held: @unchecked Sendable {
        var item: Item
        var due: UInt64
    }

    private let grace: UInt64
    private let now: @Sendable () -> UInt64
    private let release: @Sendable (Item) -> Void
    private let held = Mutex<[Held]>([])

    /// `now`: monotonic nanoseconds (a test's hand-moved clock).
    public init(grace: Duration, now: @escaping @Sendable () -> UInt64 = { monotonicNanos() }, release: @escaping @Sendable (Item) -> Void) {
        self.grace = grace.nanoseconds
        self.now = now
        self.release = release
    }

    /// Takes `item`, to be released `grace` from now; releases what was retired at least `grace` ago.
    public func retire(_ item: Item) {
        let t = now()
        let due = held.withLock { held -> [Held] in
            let due = held.filter { $0.due <= t }
            held.removeAll { $0.due <= t }
            held.append(Held(item: item, due: t + grace))
            return due
        }
        // Outside the lock: releasing may take libnats' locks.
        for entry in due { release(entry.item) }
    }

    /// How many are held now.
    public var count: Int { held.withLock { $0.count } }
}

/// libnats subscriptions given up by readers, destroyed 10 s later (see `DeferredRelease`).
let retiredSubscriptions = DeferredRelease<SubscriptionHandle>(grace: .seconds(10)) { natsSubscription_Destroy($0.pointer) }

/// A subscription handed between threads: libnats locks it itself.
struct SubscriptionHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}
