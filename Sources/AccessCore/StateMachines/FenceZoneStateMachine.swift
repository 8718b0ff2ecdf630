/// Alarm kinds of a fence zone: the host's own (broken, short, touch, tamper, power) and the
/// controller's (comm-fail: the host stopped answering).
public enum FenceAlarmKind: String, Sendable, CaseIterable, Comparable {
    case broken, short, touch, tamper, power
    case commFail = "comm_fail"

    /// Tamper, power and communication faults alarm whether the zone is armed or not (GB 50394).
    public var alwaysActive: Bool { self == .tamper || self == .power || self == .commFail }

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

public enum FenceZoneEvent: Sendable, Equatable {
    case armed, disarmed
    case disarmRefused
    case alarm(FenceAlarmKind)
    case reset(cleared: [FenceAlarmKind], stillActive: [FenceAlarmKind])
    case commRestored
}

public enum FenceZoneAction: Sendable, Equatable {
    /// Tell the host to arm or disarm the zone.
    case armHost(Bool)
    /// Clear the host's own latch for the zone.
    case resetHost
    /// Sirens and lights linked to the zone: on while any alarm is latched.
    case linkage(on: Bool)
    case event(FenceZoneEvent)
}

/// One fence zone as a value. Alarms latch until an operator resets them (and only clear if the
/// cause is gone); emergency zones are armed always and refuse to be disarmed.
public struct FenceZoneStateMachine: Sendable, Equatable {
    public enum Input: Sendable, Equatable {
        case arm, disarm, reset
        /// The alarms the host reports for the zone now.
        case hostAlarms(Set<FenceAlarmKind>)
        case hostOnline(Bool)
    }

    public let zone: Int
    public let emergency: Bool
    public private(set) var armed: Bool
    public private(set) var latched: Set<FenceAlarmKind> = []
    private var active: Set<FenceAlarmKind> = []

    public init(zone: Int, emergency: Bool, armed: Bool = false) {
        self.zone = zone
        self.emergency = emergency
        self.armed = armed || emergency
    }

    /// The host commands that put the zone in its configured state at start.
    public func start() -> [FenceZoneAction] { [.armHost(armed)] }

    public mutating func handle(_ input: Input) -> [FenceZoneAction] {
        let sirenBefore = !latched.isEmpty
        var actions: [FenceZoneAction] = []
        switch input {
        case .arm:
            if !armed {
                armed = true
                actions += [.armHost(true), .event(.armed)]
            }
        case .disarm:
            if emergency {
                actions.append(.event(.disarmRefused))
            } else if armed {
                armed = false
                actions += [.armHost(false), .event(.disarmed)]
            }
        case .hostAlarms(let reported):
            let hostKinds = reported.subtracting([.commFail])
            for kind in hostKinds.subtracting(active).sorted() where armed || kind.alwaysActive {
                if latched.insert(kind).inserted { actions.append(.event(.alarm(kind))) }
            }
            active = active.intersection([.commFail]).union(hostKinds)
        case .hostOnline(let online):
            if !online && !active.contains(.commFail) {
                active.insert(.commFail)
                if latched.insert(.commFail).inserted { actions.append(.event(.alarm(.commFail))) }
            } else if online && active.contains(.commFail) {
                active.remove(.commFail)
                actions.append(.event(.commRestored))
            }
        case .reset:
            let stillActive = latched.intersection(active)
            let cleared = latched.subtracting(active)
            latched = stillActive
            actions += [.resetHost, .event(.reset(cleared: cleared.sorted(), stillActive: stillActive.sorted()))]
        }
        let sirenAfter = !latched.isEmpty
        if sirenAfter != sirenBefore { actions.append(.linkage(on: sirenAfter)) }
        return actions
    }
}
