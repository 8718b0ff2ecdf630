// Forwarders for the files of this module that still use the old names (threads and clocks now
// in AccessRuntime, device maps in AccessConfig); they go once those files call the new ones.
import AccessConfig
import AccessDevices
@_exported import AccessRuntime

#if canImport(Glibc)
import Glibc
#endif

typealias Monitor = AccessRuntime.Monitor

/// Starts a thread named after the calling file (`StoreWorker`, `ControlServer`); returns the
/// handle to `pthread_join`.
func startThread(file: String = #fileID, _ body: @escaping @Sendable () -> Void) throws -> pthread_t {
    let base = file.split(separator: "/").last.map { String($0.prefix { $0 != "." }) } ?? "accessd"
    return try NamedThread.start(name: base, body).handle
}

func monotonicNow() -> UInt64 { monotonicNanos() }

extension DeviceMap {
    /// `DeviceMap.load(path:)` with a driver's error type: the same `FILE:LINE: key: problem`
    /// text, as `DeviceError.configuration`.
    static func load(path: String) throws(DeviceError) -> DeviceMap {
        let text: String
        do {
            text = try FileReader.text(path)
        } catch {
            throw .configuration(file: path, key: "file", problem: "cannot be read: \(error.reason)")
        }
        do {
            return try DeviceMap.parse(text, file: path)
        } catch {
            throw .configuration(file: error.line.map { "\(path):\($0)" } ?? path, key: error.key, problem: error.problem)
        }
    }
}
