import AccessCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// With `ACCESS_EVENT_SAMPLES=FILE` set (the test scripts set it), every event made durable is
/// also appended to FILE as a JSON line, as the API serves it, so the whole suite's events can be
/// checked against `API/event.schema.json` by a real validator. Unset, this does nothing.
enum EventSamples {
    private static let descriptor: Int32? = {
        guard let path = getenv("ACCESS_EVENT_SAMPLES") else { return nil }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        return fd >= 0 ? fd : nil
    }()
    private static let lock = Mutex(())

    static func record(_ events: [AccessEvent]) {
        guard let fd = descriptor, !events.isEmpty else { return }
        var text = ""
        for event in events { text += event.json(controllerID: "samples").rendered() + "\n" }
        lock.withLock { _ in
            // One write per batch: O_APPEND keeps lines from several processes whole.
            _ = text.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
        }
    }
}

/// With `ACCESS_CHANGESET_SAMPLES=FILE` set, every change set applied to a database is appended
/// to FILE as a JSON line, for checking against `API/changeset.schema.json` (Scripts/test.sh).
enum ChangeSetSamples {
    private static let descriptor: Int32? = {
        guard let path = getenv("ACCESS_CHANGESET_SAMPLES") else { return nil }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        return fd >= 0 ? fd : nil
    }()

    static func record(_ changeSet: ChangeSet) {
        guard let fd = descriptor else { return }
        let text = changeSet.json().rendered() + "\n"
        _ = text.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
    }
}
