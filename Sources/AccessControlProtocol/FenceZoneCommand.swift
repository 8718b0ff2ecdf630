/// What an operator may ask of a fence zone over the control socket; the raw values are the
/// wire's `command`.
public enum FenceZoneCommand: String, Sendable, CaseIterable {
    case arm, disarm, reset
}
