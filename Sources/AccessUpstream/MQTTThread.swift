import Glibc

/// Starts a detached thread (blocking work stays off the cooperative pool).
func startThread(name: String, _ body: @escaping @Sendable () -> Void) throws(MQTTError) {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        let name: String
        init(_ body: @escaping @Sendable () -> Void, name: String) {
            self.body = body
            self.name = name
        }
    }
    let box = Unmanaged.passRetained(Box(body, name: name))
    var handle = pthread_t()
    let rc = pthread_create(&handle, nil, { raw in
        guard let raw else { return nil }
        let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
        box.body()
        return nil
    }, box.toOpaque())
    guard rc == 0 else {
        box.release()
        throw .system("start the MQTT thread", errno: rc)
    }
    pthread_detach(handle)
}
