import AccessController
import AccessRuntime

/// Waits until the controller's writer has made everything submitted durable, on a thread of its
/// own: the wait blocks (and lasts while the disk refuses writes), and the engine's thread must
/// stay free to answer the API meanwhile.
actor DurabilityWaiter {
    private let thread: ThreadExecutor

    nonisolated var unownedExecutor: UnownedSerialExecutor { thread.asUnownedSerialExecutor() }

    init() throws { thread = try ThreadExecutor(threadName: "analytics-flush") }

    deinit { thread.stop() }

    func flush(_ controller: Controller) { controller.flush() }
}
