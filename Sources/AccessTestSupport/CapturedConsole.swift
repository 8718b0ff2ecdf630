import Synchronization

/// Collects what a command writes, for tests that compare output.
public final class CapturedOutput: Sendable {
    private let out = Mutex("")
    private let err = Mutex("")

    public init() {}

    public var stdout: String { out.withLock { $0 } }
    public var stderr: String { err.withLock { $0 } }

    public func appendOut(_ s: String) { out.withLock { $0 += s } }
    public func appendErr(_ s: String) { err.withLock { $0 += s } }
}
