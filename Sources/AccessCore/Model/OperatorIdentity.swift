/// Who made a change: the user the kernel vouches for (the control socket's `SO_PEERCRED`, or the
/// uid `accessctl` runs as), and an optional note the operator typed (`--operator NAME`). The note
/// never replaces the user: it is recorded beside it.
///
/// Site commands carry one string for the operator, so the pair travels as `recorded`
/// (`alice`, or `alice (note: zhang)`) and the audit log splits it into its columns again.
public struct OperatorIdentity: Sendable, Equatable {
    /// The kernel's user name (`alice`, `root`, `uid:1234`), or a service's own name (`api:TOKEN`).
    public var user: String
    /// What the operator typed, when it says something the user name does not.
    public var note: String?

    /// `note` is dropped when it is empty or the user's own name.
    public init(user: String, note: String? = nil) {
        self.user = user
        let trimmed = note?.trimmingSpaces
        self.note = (trimmed?.isEmpty ?? true) || trimmed == user ? nil : trimmed
    }

    static let noteOpening = " (note: "

    /// The one-string form carried through site commands.
    public var recorded: String {
        guard let note else { return user }
        return user + Self.noteOpening + note + ")"
    }

    /// Splits `recorded` back into user and note; a string without a note is all user.
    public init(recorded: String) {
        guard recorded.hasSuffix(")"), let range = recorded.firstRange(of: Self.noteOpening) else {
            self.init(user: recorded)
            return
        }
        let note = recorded[range.upperBound...].dropLast()
        self.init(user: String(recorded[..<range.lowerBound]), note: String(note))
    }
}
