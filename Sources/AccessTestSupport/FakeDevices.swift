import AccessCore
import AccessDevices
import Synchronization

/// An output that records every value it is given.
public final class FakeOutputLine: OutputLine, Sendable {
    public let name: String
    private let history = Mutex<[Bool]>([])
    /// Makes the next `set` fail, to test error paths.
    public let failNext = Mutex<DeviceError?>(nil)

    public init(name: String) { self.name = name }

    public func set(_ active: Bool) throws(DeviceError) {
        if let error = failNext.withLock({ e -> DeviceError? in defer { e = nil }; return e }) { throw error }
        history.withLock { $0.append(active) }
    }

    public var values: [Bool] { history.withLock { $0 } }
    public var current: Bool? { values.last }
}
