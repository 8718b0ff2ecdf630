import CGlibcExtras
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The longest thread name Linux keeps (16 bytes with the terminating NUL).
public let threadNameLimit = 15

/// `name` cut to `threadNameLimit` bytes, at a character boundary.
public func kernelThreadName(_ name: String) -> String {
    var out = ""
    var bytes = 0
    for character in name {
        let size = character.utf8.count
        if bytes + size > threadNameLimit { break }
        out.append(character)
        bytes += size
    }
    return out
}

/// A thread with a name, started outside Swift concurrency: blocking work (C libraries, SQLite,
/// poll) belongs on one of these, never on the cooperative pool. Join it to wait for its body.
public struct NamedThread: Sendable {
    /// The pthread handle, for the calls this type does not wrap.
    public let handle: pthread_t
    /// The name as the kernel holds it (at most 15 bytes).
    public let name: String

    /// Starts a thread named `name` (cut to 15 bytes; what `top -H`, `ps -L` and
    /// `/proc/PID/task/TID/comm` show) running `body`.
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) throws(SystemError) -> NamedThread {
        final class Start: @unchecked Sendable {
            let name: String
            let body: @Sendable () -> Void
            init(_ name: String, _ body: @escaping @Sendable () -> Void) {
                self.name = name
                self.body = body
            }
        }
        let short = kernelThreadName(name)
        let start = Unmanaged.passRetained(Start(short, body))
        var handle = pthread_t()
        let rc = pthread_create(&handle, nil, { raw in
            guard let raw else { return nil }
            let start = Unmanaged<Start>.fromOpaque(raw).takeRetainedValue()
            // Named from inside: the name is in place before the body runs.
            _ = pthread_setname_np(pthread_self(), start.name)
            start.body()
            return nil
        }, start.toOpaque())
        guard rc == 0 else {
            start.release()
            throw SystemError("start thread \(short)", errno: rc)
        }
        return NamedThread(handle: handle, name: short)
    }

    /// Waits until the thread's body has returned. Call it once, and not from the thread itself.
    public func join() {
        pthread_join(handle, nil)
    }

    /// Lets the thread's resources go when it ends; it can no longer be joined.
    public func detach() {
        pthread_detach(handle)
    }
}

/// A mutex and a condition variable on CLOCK_MONOTONIC, at fixed addresses (pthread objects must
/// not move, so they are allocated rather than stored inline).
public final class Monitor: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    public init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    /// Runs `body` with the lock held.
    public func locked<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits, with the lock held by the caller inside `locked`, until signalled or until
    /// `deadline` (`monotonicNanos()`) passes. Wakes may be spurious: callers re-check their
    /// condition.
    public func wait(until deadline: UInt64? = nil) {
        guard let deadline else {
            pthread_cond_wait(condition, mutex)
            return
        }
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        pthread_cond_timedwait(condition, mutex, &ts)
    }

    /// Wakes one waiter.
    public func signal() { pthread_cond_signal(condition) }

    /// Wakes every waiter.
    public func broadcast() { pthread_cond_broadcast(condition) }
}

/// The stop flag of a thread that loops and backs off: `stop()` ends a `sleep` at once, so a thread
/// waiting seconds before its next try still joins promptly (no polling of the flag).
public final class StopSignal: Sendable {
    private let monitor = Monitor()
    private let stopped = Atomic<Bool>(false)

    public init() {}

    /// Whether `stop()` has been called.
    public var isStopped: Bool { stopped.load(ordering: .acquiring) }

    /// Sets the flag and wakes every `sleep`.
    public func stop() {
        stopped.store(true, ordering: .releasing)
        monitor.locked { monitor.broadcast() }
    }

    /// Sleeps for `duration` on CLOCK_MONOTONIC; returns `false` if stopped before or during it.
    @discardableResult
    public func sleep(for duration: Duration) -> Bool {
        let deadline = monotonicNanos() + duration.nanoseconds
        return monitor.locked {
            // The flag is read under the lock that `stop` broadcasts under: no wake is lost.
            while !isStopped, monotonicNanos() < deadline { monitor.wait(until: deadline) }
            return !isStopped
        }
    }
}

/// A serial and task executor on one named thread: an actor whose `unownedExecutor` is one of
/// these runs its jobs there, in order, so its blocking C calls (libmodbus, SQLite) never hold a
/// cooperative-pool thread; as a task executor it keeps tasks running while the pool is busy.
public final class ThreadExecutor: SerialExecutor, TaskExecutor, @unchecked Sendable {
    private let monitor = Monitor()
    // Guarded by `monitor`.
    private var jobs: [UnownedJob] = []
    private var stopping = false
    /// The thread's name (cut to 15 bytes).
    public let name: String

    /// Starts the thread; it runs until `stop()`.
    public init(threadName name: String) throws(SystemError) {
        self.name = kernelThreadName(name)
        // The thread holds the executor until it ends, so jobs never outlive it.
        let thread = try NamedThread.start(name: name) { [self] in run() }
        thread.detach()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        monitor.locked {
            jobs.append(job)
            monitor.signal()
        }
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Lets the thread finish the queued jobs and end.
    public func stop() {
        monitor.locked {
            stopping = true
            monitor.signal()
        }
    }

    private func run() {
        var batch: [UnownedJob] = []
        while true {
            let done: Bool = monitor.locked {
                while jobs.isEmpty && !stopping { monitor.wait() }
                if jobs.isEmpty { return true }
                swap(&batch, &jobs)
                return false
            }
            if done { return }
            for job in batch {
                job.runSynchronously(isolatedTo: asUnownedSerialExecutor(), taskExecutor: asUnownedTaskExecutor())
            }
            batch.removeAll(keepingCapacity: true)
        }
    }
}
