import AccessConfig
// Re-exported while code outside this module still reaches `monotonicNanos` and the executor
// through `import AccessDevices`; such files should import AccessRuntime themselves.
import AccessRuntime

/// A board of GPIO lines by role: the real one (`GPIOBoard`, libgpiod) or the simulated one
/// (`SimulatedBoard`, in memory). Events reach the handler given at creation, on the board's
/// own thread or the caller's (simulated), in the order they happened.
public protocol Board: AnyObject, Sendable {
    var map: BoardMap { get }
    /// The output line named `name`, already at its safe value.
    func output(_ name: String) throws(DeviceError) -> any OutputLine
    /// An input's current logical level.
    func read(_ name: String) throws(DeviceError) -> Bool
    /// Reports every input's level, then every change.
    func start() throws(DeviceError)
    /// Returns outputs to their safe values and releases the lines.
    func close()
}

extension GPIOBoard: Board {}
