import AccessDevices
import CMalloc

#if canImport(Glibc)
import Glibc
#endif

/// A mutex and condition variable at fixed addresses (pthread objects must not move, so they
/// are allocated rather than stored inline in a Swift class).
final class Monitor: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    init() {
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

    func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits (the lock held by the caller inside `locked`) until signalled or `deadline`
    /// (CLOCK_MONOTONIC nanoseconds) passes.
    func wait(until deadline: UInt64? = nil) {
        guard let deadline else {
            pthread_cond_wait(condition, mutex)
            return
        }
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        pthread_cond_timedwait(condition, mutex, &ts)
    }

    func broadcast() { pthread_cond_broadcast(condition) }
}

/// Starts a detached-from-Swift-concurrency thread running `body` (blocking work stays off the
/// cooperative pool), named for `top -H` (at most 15 bytes). Returns the handle to join.
func startThread(name: String, _ body: @escaping @Sendable () -> Void) throws -> pthread_t {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let label = String(decoding: name.utf8.prefix(15), as: UTF8.self)
    let box = Unmanaged.passRetained(Box {
        // The thread names itself: /proc/thread-self/comm is what `top -H` shows.
        let fd = open("/proc/thread-self/comm", O_WRONLY)
        if fd >= 0 {
            _ = label.withCString { write(fd, $0, strlen($0)) }
            close(fd)
        }
        body()
    })
    var handle = pthread_t()
    let rc = pthread_create(&handle, nil, { raw in
        guard let raw else { return nil }
        Unmanaged<Box>.fromOpaque(raw).takeRetainedValue().body()
        return nil
    }, box.toOpaque())
    guard rc == 0 else {
        box.release()
        throw ThreadError(code: rc)
    }
    return handle
}

struct ThreadError: Error, CustomStringConvertible {
    var code: Int32
    var description: String { "cannot start a thread: \(String(cString: strerror(code))) (errno \(code))" }
}

func monotonicNow() -> UInt64 { monotonicNanos() }

/// Hands memory that `free` kept back to the system (glibc `malloc_trim`). Loading a roster
/// allocates and frees tens of megabytes of rows and temporary tables; glibc keeps freed chunks
/// inside its arenas, so without this the resident size stays at the load's peak.
public func releaseFreedHeap() {
    _ = malloc_trim(0)
}

/// Microseconds since 1970 on CLOCK_REALTIME: the wall clock, which may be unset or jump.
public func wallClockMicros() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
}
