import AccessCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A JSON-lines file named by an environment variable, appended to by every process the test
/// scripts start; unset, appending does nothing.
final class SampleFile: Sendable {
    private let descriptor: Int32?
    private let lock = Mutex(())

    init(environment name: String) {
        guard let path = getenv(name) else { descriptor = nil; return }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        descriptor = fd >= 0 ? fd : nil
    }

    var isOpen: Bool { descriptor != nil }

    /// One write per call: O_APPEND keeps lines from several processes whole.
    func append(_ text: String) {
        guard let fd = descriptor else { return }
        lock.withLock { _ in
            _ = text.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
        }
    }
}

/// With `ACCESS_EVENT_SAMPLES=FILE` set (the test scripts set it), every event made durable is
/// also appended to FILE as a JSON line, as the API serves it, so the whole suite's events can be
/// checked against `API/event.schema.json` by a real validator.
enum EventSamples {
    private static let file = SampleFile(environment: "ACCESS_EVENT_SAMPLES")

    static func record(_ events: [AccessEvent]) {
        guard file.isOpen, !events.isEmpty else { return }
        var text = ""
        for event in events { text += event.json(controllerID: "samples").rendered() + "\n" }
        file.append(text)
    }
}

/// With `ACCESS_CHANGESET_SAMPLES=FILE` set, every change set applied to a database is appended
/// to FILE as a JSON line, for checking against `API/changeset.schema.json` (Scripts/test.sh).
enum ChangeSetSamples {
    private static let file = SampleFile(environment: "ACCESS_CHANGESET_SAMPLES")

    static func record(_ changeSet: ChangeSet) {
        guard file.isOpen else { return }
        file.append(changeSet.json().rendered() + "\n")
    }
}
