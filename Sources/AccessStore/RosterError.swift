/// A roster change that was refused. Nothing was changed.
public enum RosterError: Error, Equatable, Sendable, CustomStringConvertible {
    case notFound(kind: String, id: String)
    case alreadyExists(kind: String, id: String)
    case invalid(field: String, value: String, problem: String)
    /// A credential already belongs to someone else.
    case owned(kind: String, value: String, owner: String)
    case inUse(kind: String, id: String, by: String)

    public var description: String {
        switch self {
        case .notFound(let kind, let id): return "no \(kind) \"\(id)\""
        case .alreadyExists(let kind, let id): return "\(kind) \"\(id)\" already exists"
        case .invalid(let field, let value, let problem): return "\(field): \"\(value)\" \(problem)"
        case .owned(let kind, let value, let owner): return "\(kind) \(value) already belongs to \(owner)"
        case .inUse(let kind, let id, let by): return "\(kind) \"\(id)\" is still used by \(by)"
        }
    }
}
