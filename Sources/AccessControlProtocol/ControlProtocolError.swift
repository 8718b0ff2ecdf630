/// A control request or reply that cannot be carried, or a socket that cannot be reached.
public enum ControlProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The request (or a reply) does not have the shape its `op` needs.
    case malformed(String)
    /// accessd understood the request and refused it; its message.
    case refused(String)
    /// The socket could not be reached or written.
    case unreachable(String)
    /// accessd answered nothing within the timeout, or not one JSON object.
    case noReply(String)

    public var description: String {
        switch self {
        case .malformed(let s): return "malformed request: \(s)"
        case .refused(let s), .unreachable(let s), .noReply(let s): return s
        }
    }
}
