import AccessCore

/// The indicators the controller raises.
public enum IndicatorKind: String, CaseIterable, Sendable, Codable {
    case aloneNotSeen = "alone_not_seen"
    case outNotBack = "out_not_back"
    case crowdedHouse = "crowded_house"
    case lateNight = "late_night"

    /// The reason of the `alarm` event raised when it fires.
    public var alarmReason: EventReason {
        switch self {
        case .aloneNotSeen: return .indicatorAloneNotSeen
        case .outNotBack: return .indicatorOutNotBack
        case .crowdedHouse: return .indicatorCrowdedHouse
        case .lateNight: return .indicatorLateNight
        }
    }
}
