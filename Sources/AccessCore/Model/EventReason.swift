/// Why an event was logged: every reason an event can carry, in one vocabulary. The raw values
/// are the interface (the `reason` of the HTTP API, MQTT and the log); `API/event.schema.json`
/// lists the same values and a test holds the two together.
public enum EventReason: String, CaseIterable, Sendable, Codable {
    // Decisions (type `access`): the reasons of `accessctl check`.
    case granted
    case unknownCredential = "unknown_credential"
    case revoked, suspended, blacklisted
    case notYetValid = "not_yet_valid"
    case expired
    case noRight = "no_right"
    case outsideSchedule = "outside_schedule"
    case antiPassback = "anti_passback"
    case usesExhausted = "uses_exhausted"
    case portalLocked = "portal_locked"
    case clockUnset = "clock_unset"
    case pinRequired = "pin_required"
    case wrongPin = "wrong_pin"
    case pinTimeout = "pin_timeout"
    case readerLocked = "reader_locked"
    case interlock
    case awaitingMoreCards = "awaiting_more_cards"
    case parkingFull = "parking_full"

    // Doors (type `door`, alarms `alarm`).
    case released, relocked, opened, closed
    case heldOpen = "held_open"
    case heldOpenCleared = "held_open_cleared"
    case forcedOpen = "forced_open"
    case fireRelease = "fire_release"
    case fireReset = "fire_reset"
    case modeNormal = "mode_normal"
    case modeAlwaysOpen = "mode_always_open"
    case modeAlwaysClosed = "mode_always_closed"
    case alarmReset = "alarm_reset"
    case requestIgnored = "request_ignored"

    // Barrier lanes (type `barrier`, alarms `alarm`).
    case raised, lowered
    case vehicleOnLoop = "vehicle_on_loop"
    case vehiclePassed = "vehicle_passed"
    case closeHeld = "close_held"
    case reversed
    case faultCleared = "fault_cleared"
    case locked, unlocked
    case barrierFault = "barrier_fault"
    case barrierFireRaise = "barrier_fire_raise"

    // Fence zones (type `fence`, alarms `alarm`).
    case armed, disarmed
    case disarmRefused = "disarm_refused"
    case commRestored = "comm_restored"
    case fenceBroken = "fence_broken"
    case fenceShort = "fence_short"
    case fenceTouch = "fence_touch"
    case fenceTamper = "fence_tamper"
    case fencePower = "fence_power"
    case fenceCommFail = "fence_comm_fail"

    // Site linkage and the controller itself (types `system` and `alarm`).
    case started, stopped
    case fireAlarm = "fire_alarm"
    case fireAlarmCleared = "fire_alarm_cleared"
    case oneKeyCall = "one_key_call"
    case tamper
    /// A reader's own tamper switch: latched until `accessctl reader reset`.
    case readerTamper = "reader_tamper"
    case blacklistedCredential = "blacklisted_credential"
    /// A duress PIN was typed: the person is forced to open; silent at the gate.
    case duress
    case garbledFrame = "garbled_frame"
    case gpioOverrun = "gpio_overrun"
    case unboundReader = "unbound_reader"
    case deviceOnline = "device_online"
    case deviceOffline = "device_offline"
    case deviceCommandFailed = "device_command_failed"
    case relayFailed = "relay_failed"
    case clockSet = "clock_set"
    case clockJump = "clock_jump"
    case eventLogNearlyFull = "event_log_nearly_full"
    case eventLogPrunedUnacknowledged = "event_log_pruned_unacknowledged"

    // Operator commands (type `operator`): the command as the operator gave it.
    case open, close
    case alwaysOpen = "always-open"
    case alwaysClosed = "always-closed"
    case normal
    case resetAlarm = "reset-alarm"
    case fenceArm = "fence.arm"
    case fenceDisarm = "fence.disarm"
    case fenceReset = "fence.reset"
    case readerReset = "reader.reset"
    /// A person's anti-passback state cleared at every portal.
    case antiPassbackReset = "apb.reset"

    // 以房管人 analytics (alarms when an indicator fires, `system` when it ends).
    case indicatorAloneNotSeen = "indicator_alone_not_seen"
    case indicatorOutNotBack = "indicator_out_not_back"
    case indicatorCrowdedHouse = "indicator_crowded_house"
    case indicatorLateNight = "indicator_late_night"
    case indicatorCleared = "indicator_cleared"

    /// The reason that records a decision.
    public init(_ reason: Reason) {
        // Every decision reason is an event reason with the same raw value (a test checks it).
        self = EventReason(rawValue: reason.rawValue)!
    }

    public init(_ event: DoorEvent) {
        self = EventReason(rawValue: event.rawValue)!
    }

    /// A lane's event; its alarms carry the `barrier_` prefix, since a door has a `fire_reset` too.
    public init(_ event: BarrierLaneEvent) {
        self = EventReason(rawValue: event.isAlarm ? "barrier_\(event.rawValue)" : event.rawValue)!
    }

    public init(fenceAlarm kind: FenceAlarmKind) {
        self = EventReason(rawValue: "fence_\(kind.rawValue)")!
    }

    /// The operator event of a door or lane command.
    public init(_ command: DoorCommand) {
        self = EventReason(rawValue: command.rawValue)!
    }
}
