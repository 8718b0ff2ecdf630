/// Monotonic time in nanoseconds: timers never follow the wall clock.
public typealias MonotonicNanos = UInt64

/// How a door behaves (from the site configuration).
public struct DoorConfig: Sendable, Equatable {
    /// How long the lock stays released after a grant or the exit button (Hikvision: 1-255 s).
    public var unlockNanos: UInt64
    /// An open door raises `heldOpen` after this long (0: never).
    public var heldOpenNanos: UInt64
    /// Relock as soon as the door closes again, without waiting for the unlock time to run out.
    public var relockOnClose: Bool
    /// The door has a contact: opening and closing are known, forced-open can be detected.
    public var hasContact: Bool
    /// An escape-route door: released by the fire input (GB 50396: mandatory).
    public var escapeRoute: Bool
    /// The lock state when the controller stops: released for a fail-safe lock (what it does
    /// unpowered), locked for a fail-secure one.
    public var releasedWhenStopped: Bool

    public init(unlockSeconds: Int = 5, heldOpenSeconds: Int = 30, relockOnClose: Bool = true, hasContact: Bool = true,
                escapeRoute: Bool = true, releasedWhenStopped: Bool = false) {
        self.unlockNanos = UInt64(max(1, unlockSeconds)) * 1_000_000_000
        self.heldOpenNanos = UInt64(max(0, heldOpenSeconds)) * 1_000_000_000
        self.relockOnClose = relockOnClose
        self.hasContact = hasContact
        self.escapeRoute = escapeRoute
        self.releasedWhenStopped = releasedWhenStopped
    }
}

/// Operator commands for a door (interfaces.md: open, close, always-open, always-closed, normal, reset-alarm).
public enum DoorCommand: String, Sendable, CaseIterable {
    case open, close
    case alwaysOpen = "always-open"
    case alwaysClosed = "always-closed"
    case normal
    case resetAlarm = "reset-alarm"
}

/// What happened at a door, for the event log.
public enum DoorEvent: String, Sendable, CaseIterable {
    case released, relocked, opened, closed
    case heldOpen = "held_open", heldOpenCleared = "held_open_cleared"
    case forcedOpen = "forced_open"
    case fireRelease = "fire_release", fireReset = "fire_reset"
    case modeNormal = "mode_normal", modeAlwaysOpen = "mode_always_open", modeAlwaysClosed = "mode_always_closed"
    case alarmReset = "alarm_reset"
    /// A grant or exit request that the door did not act on (always-closed, fire).
    case requestIgnored = "request_ignored"

    /// Alarms go to the alarm topic as well as the event log.
    public var isAlarm: Bool { self == .heldOpen || self == .forcedOpen || self == .fireRelease }
}

/// What the controller must do.
public enum DoorAction: Sendable, Equatable {
    /// Drive the lock: true releases it (the `DoorLock` maps this to the relay per fail-safe/secure).
    case lock(released: Bool)
    case event(DoorEvent)
}

/// A door as a value: feed it inputs with the monotonic time, apply the actions it returns, and
/// call `tick` at `nextDeadline`. Modes and the fire latch are kept here; the decision (who may
/// pass) is made before, by `AccessPolicy`.
public struct DoorStateMachine: Sendable, Equatable {
    public enum Input: Sendable, Equatable {
        /// A credential was granted at one of the door's readers.
        case granted
        case exitButton
        case contact(open: Bool)
        case command(DoorCommand)
        /// The fire input asserted (latched until `reset-alarm` once it has cleared) or cleared.
        case fire(active: Bool)
        /// The door-status plan: held released (normally open) or not. In normal mode it holds
        /// the lock released; an operator's always-open or always-closed, and the fire latch,
        /// rule over it until they end, and it is followed again then.
        case plan(open: Bool)
        case tick
    }

    public let config: DoorConfig
    public private(set) var mode: PortalMode = .normal
    public private(set) var released = false
    public private(set) var doorOpen = false
    public private(set) var fireLatched = false
    /// The door-status plan holds the door open (it acts only in normal mode).
    public private(set) var planOpen = false
    private var fireActive = false
    private var releaseUntil: MonotonicNanos?
    private var openedAt: MonotonicNanos?
    private var heldOpenRaised = false
    /// The forced-open alarm is active (every forced opening is reported; this stays set until
    /// `reset-alarm`, for status and sirens).
    public private(set) var forcedOpenActive = false
    /// The contact has reported its level once: the board reports every input at start, and a
    /// door found open then is a state, not a forced opening.
    private var contactKnown = false

    public init(config: DoorConfig) { self.config = config }

    /// The lock is released whatever a grant or a timer says: the fire latch, always-open, or
    /// the door-status plan in normal mode. A grant then has nothing to open.
    public var heldReleased: Bool { fireLatched || mode == .alwaysOpen || (mode == .normal && planOpen) }

    /// The actions that begin normal running: the door locked. (Before this, the board has
    /// already put every line in its de-energised safe state.)
    public mutating func start() -> [DoorAction] {
        released = false
        return [.lock(released: false)]
    }

    /// The actions for a controlled stop.
    public func stop() -> [DoorAction] { [.lock(released: config.releasedWhenStopped)] }

    /// When `tick` must be called next, if a timer runs.
    public var nextDeadline: MonotonicNanos? {
        var deadlines: [MonotonicNanos] = []
        if let releaseUntil { deadlines.append(releaseUntil) }
        if let openedAt, config.heldOpenNanos > 0, !heldOpenRaised, mode == .normal, !fireLatched, !planOpen {
            deadlines.append(openedAt + config.heldOpenNanos)
        }
        return deadlines.min()
    }

    public mutating func handle(_ input: Input, at now: MonotonicNanos) -> [DoorAction] {
        var actions: [DoorAction] = []
        switch input {
        case .granted, .exitButton:
            if heldReleased { break }  // already released
            if mode == .alwaysClosed {
                actions.append(.event(.requestIgnored))
                break
            }
            releaseUntil = now + config.unlockNanos
            if !released { setReleased(true, &actions) }

        case .contact(let open):
            guard config.hasContact else { break }
            let firstReport = !contactKnown
            contactKnown = true
            guard open != doorOpen else { break }
            doorOpen = open
            if open {
                // Found open at start: the held-open timer runs from now.
                openedAt = now
                actions.append(.event(.opened))
                // Each forced opening is its own intrusion, reported even while an earlier one
                // awaits reset.
                if !firstReport && !released && !fireLatched && mode != .alwaysOpen {
                    forcedOpenActive = true
                    actions.append(.event(.forcedOpen))
                }
            } else {
                openedAt = nil
                actions.append(.event(.closed))
                if heldOpenRaised {
                    heldOpenRaised = false
                    actions.append(.event(.heldOpenCleared))
                }
                if config.relockOnClose, released, releaseUntil != nil, mode == .normal, !heldReleased {
                    releaseUntil = nil
                    setReleased(false, &actions)
                }
            }

        case .command(let command):
            apply(command, at: now, &actions)

        case .fire(let active):
            fireActive = active
            if active && config.escapeRoute && !fireLatched {
                fireLatched = true
                actions.append(.event(.fireRelease))
                if !released { setReleased(true, &actions) }
            }

        case .plan(let open):
            guard open != planOpen else { break }
            planOpen = open
            guard mode == .normal, !fireLatched else { break }  // followed once the mode or the latch ends
            if open {
                releaseUntil = nil
                if !released { setReleased(true, &actions) }
            } else {
                // A door left open at the plan's end is held open from now, not from its opening.
                if doorOpen { openedAt = now }
                if released && releaseUntil == nil { setReleased(false, &actions) }
            }

        case .tick:
            break
        }
        if let until = releaseUntil, now >= until, mode == .normal, !fireLatched {
            releaseUntil = nil
            if released && !planOpen { setReleased(false, &actions) }
        }
        if let openedAt, config.heldOpenNanos > 0, !heldOpenRaised, mode == .normal, !fireLatched, !planOpen,
           now >= openedAt + config.heldOpenNanos {
            heldOpenRaised = true
            actions.append(.event(.heldOpen))
        }
        return actions
    }

    private mutating func apply(_ command: DoorCommand, at now: MonotonicNanos, _ actions: inout [DoorAction]) {
        switch command {
        case .open:
            // A remote open is a momentary release, like a grant; the caller records the operator.
            actions += handle(.granted, at: now)
        case .close:
            // Held open by the plan: a lasting lock is always-closed, not a momentary close.
            guard !fireLatched, mode == .normal, !planOpen else { actions.append(.event(.requestIgnored)); return }
            releaseUntil = nil
            if released { setReleased(false, &actions) }
        case .alwaysOpen:
            mode = .alwaysOpen
            actions.append(.event(.modeAlwaysOpen))
            if !released { setReleased(true, &actions) }
        case .alwaysClosed:
            mode = .alwaysClosed
            releaseUntil = nil
            actions.append(.event(.modeAlwaysClosed))
            if released && !fireLatched { setReleased(false, &actions) }
        case .normal:
            mode = .normal
            actions.append(.event(.modeNormal))
            if released && !fireLatched && releaseUntil == nil && !planOpen { setReleased(false, &actions) }
            if !released && !fireLatched && planOpen { setReleased(true, &actions) }
        case .resetAlarm:
            forcedOpenActive = false
            if heldOpenRaised {
                heldOpenRaised = false
                // Still open: the held-open timer starts again from now.
                if doorOpen { openedAt = now }
            }
            actions.append(.event(.alarmReset))
            // The fire latch is released only once the fire input itself has cleared.
            if fireLatched && !fireActive {
                fireLatched = false
                actions.append(.event(.fireReset))
                let shouldRelease = mode == .alwaysOpen || releaseUntil != nil || (mode == .normal && planOpen)
                if released != shouldRelease { setReleased(shouldRelease, &actions) }
            }
        }
    }

    private mutating func setReleased(_ value: Bool, _ actions: inout [DoorAction]) {
        released = value
        actions.append(.lock(released: value))
        actions.append(.event(value ? .released : .relocked))
    }
}
