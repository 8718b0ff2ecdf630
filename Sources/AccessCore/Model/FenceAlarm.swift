/// The alarm types a pulse-fence host reports per zone (GB/T 7946: break and short of conductors).
public enum FenceAlarm: String, Sendable, CaseIterable {
    case broken, short, touch, tamper, power
}
