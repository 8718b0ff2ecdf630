import Glibc
import Synchronization

/// State shared between the publisher's API (any thread or task) and its thread.
final class MQTTShared: Sendable {
    struct Control {
        var started = false
        var finished = false
        var stop = false
        var crash = false
        var drop = false
        var woken = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    let control = Mutex(Control())
    let status = Mutex(MQTTPublisherStatus())
    /// Written by `wake()`, polled by the thread beside the broker socket.
    let wakeRead: Int32
    let wakeWrite: Int32

    init() {
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            for fd in fds {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
        } else {
            fds = [-1, -1]  // then the thread wakes on its timer only
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    deinit {
        if wakeRead >= 0 { close(wakeRead) }
        if wakeWrite >= 0 { close(wakeWrite) }
    }

    /// Marks the publisher started; false if it was already.
    func begin() -> Bool {
        control.withLock { c in
            guard !c.started else { return false }
            c.started = true
            return true
        }
    }

    func wake() {
        control.withLock { $0.woken = true }
        poke()
    }

    func requestStop() {
        control.withLock { $0.stop = true }
        poke()
    }

    func requestCrash() {
        control.withLock { $0.crash = true }
        poke()
    }

    func requestDrop() {
        control.withLock { $0.drop = true }
        poke()
    }

    private func poke() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)  // EAGAIN: a wake-up is already pending
    }

    /// The thread's commands since the last call.
    func take() -> (stop: Bool, crash: Bool, drop: Bool, woken: Bool) {
        control.withLock { c in
            defer {
                c.drop = false
                c.woken = false
            }
            return (c.stop, c.crash, c.drop, c.woken)
        }
    }

    func drainWakePipe() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(wakeRead, &buffer, buffer.count) > 0 {}
    }

    /// The thread has ended (or never started).
    func finish() {
        let waiters = control.withLock { c -> [CheckedContinuation<Void, Never>] in
            c.finished = true
            defer { c.waiters = [] }
            return c.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func waitUntilFinished() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = control.withLock { c -> Bool in
                if c.finished || !c.started { return true }
                c.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }
}
