/// How a barrier lane behaves.
public struct BarrierLaneConfig: Sendable, Equatable {
    /// Position feedback must confirm a command within this time, or the lane reports a fault.
    public var positionTimeoutNanos: UInt64
    /// After the vehicle has cleared the loop, the arm lowers after this delay (0: at once).
    public var closeDelayNanos: UInt64
    /// Lower automatically once a vehicle has passed.
    public var autoClose: Bool

    public init(positionTimeoutSeconds: Double = 8, closeDelaySeconds: Double = 1, autoClose: Bool = true) {
        positionTimeoutNanos = UInt64(positionTimeoutSeconds * 1e9)
        closeDelayNanos = UInt64(closeDelaySeconds * 1e9)
        self.autoClose = autoClose
    }
}

/// What happened at a lane.
public enum BarrierLaneEvent: String, Sendable, CaseIterable {
    case raised, lowered, vehicleOnLoop = "vehicle_on_loop", vehiclePassed = "vehicle_passed"
    case closeHeld = "close_held"
    case reversed
    case fault, faultCleared = "fault_cleared"
    case locked, unlocked
    case fireRaise = "fire_raise", fireReset = "fire_reset"
    case requestIgnored = "request_ignored"

    public var isAlarm: Bool { self == .fault || self == .fireRaise }
}

public enum BarrierLaneAction: Sendable, Equatable {
    case send(BarrierCommand)
    case event(BarrierLaneEvent)
}

/// Commands a barrier gate accepts (over Modbus or dry contacts).
public enum BarrierCommand: String, Sendable, CaseIterable {
    case open, close, stop, lock, unlock
}

/// Where a barrier's arm is, from its position feedback.
public enum BarrierPosition: String, Sendable, CaseIterable {
    case unknown, opening, open, closing, closed, stopped
}

/// A barrier lane as a value. Its one safety rule: it never sends `close` while the loop (or
/// beam) sees a vehicle, and an arm found lowering onto a vehicle is raised again.
public struct BarrierLaneStateMachine: Sendable, Equatable {
    public enum Input: Sendable, Equatable {
        case granted
        case command(BarrierCommand)
        /// Position feedback from the gate.
        case position(BarrierPosition)
        /// The vehicle loop or beam.
        case loop(occupied: Bool)
        case deviceFault(Bool)
        case fire(active: Bool)
        case resetAlarm
        case tick
    }

    public let config: BarrierLaneConfig
    public private(set) var position: BarrierPosition = .unknown
    public private(set) var loopOccupied = false
    public private(set) var lockedMode = false
    public private(set) var fireLatched = false
    private var fireActive = false
    private var target: BarrierPosition?
    private var commandedAt: MonotonicNanos?
    private var vehicleSeen = false
    private var closeAt: MonotonicNanos?
    private var closeWanted = false
    private var faultRaised = false

    public init(config: BarrierLaneConfig) { self.config = config }

    public var nextDeadline: MonotonicNanos? {
        [closeAt, commandedAt.map { $0 + config.positionTimeoutNanos }].compactMap { $0 }.min()
    }

    public mutating func handle(_ input: Input, at now: MonotonicNanos) -> [BarrierLaneAction] {
        var actions: [BarrierLaneAction] = []
        switch input {
        case .granted:
            if lockedMode && !fireLatched { actions.append(.event(.requestIgnored)); break }
            open(at: now, &actions)
        case .command(let command):
            apply(command, at: now, &actions)
        case .position(let p):
            position = p
            if p == target {
                commandedAt = nil
                if faultRaised { faultRaised = false; actions.append(.event(.faultCleared)) }
                actions.append(.event(p == .open ? .raised : .lowered))
            }
            if p == .closing && loopOccupied && target != .open {
                // Lowering onto a vehicle: raise again at once (unless the loop already did).
                actions.append(.event(.reversed))
                open(at: now, &actions)
            }
        case .loop(let occupied):
            guard occupied != loopOccupied else { break }
            loopOccupied = occupied
            if occupied {
                actions.append(.event(.vehicleOnLoop))
                closeAt = nil
                if target == .open { vehicleSeen = true }
                if position == .closing || target == .closed {
                    actions.append(.event(.reversed))
                    open(at: now, &actions)
                }
            } else {
                actions.append(.event(.vehiclePassed))
                if closeWanted || (target == .open && vehicleSeen && config.autoClose && !lockedMode && !fireLatched) {
                    closeAt = now + config.closeDelayNanos
                }
            }
        case .deviceFault(let fault):
            if fault && !faultRaised { faultRaised = true; actions.append(.event(.fault)) }
            if !fault && faultRaised && commandedAt == nil { faultRaised = false; actions.append(.event(.faultCleared)) }
        case .fire(let active):
            fireActive = active
            if active && !fireLatched {
                fireLatched = true
                closeAt = nil
                closeWanted = false
                actions.append(.event(.fireRaise))
                open(at: now, &actions)
            }
        case .resetAlarm:
            if faultRaised && commandedAt == nil { faultRaised = false; actions.append(.event(.faultCleared)) }
            if fireLatched && !fireActive {
                fireLatched = false
                actions.append(.event(.fireReset))
            }
        case .tick:
            break
        }
        if let at = closeAt, now >= at {
            closeAt = nil
            close(at: now, &actions)
        }
        if let at = commandedAt, now >= at + config.positionTimeoutNanos {
            commandedAt = nil
            if !faultRaised { faultRaised = true; actions.append(.event(.fault)) }
        }
        return actions
    }

    private mutating func apply(_ command: BarrierCommand, at now: MonotonicNanos, _ actions: inout [BarrierLaneAction]) {
        switch command {
        case .open:
            open(at: now, &actions)
        case .close:
            if fireLatched { actions.append(.event(.requestIgnored)); return }
            close(at: now, &actions)
        case .stop:
            target = nil
            commandedAt = nil
            closeAt = nil
            actions.append(.send(.stop))
        case .lock:
            lockedMode = true
            actions.append(.send(.lock))
            actions.append(.event(.locked))
        case .unlock:
            if fireLatched { actions.append(.event(.requestIgnored)); return }
            lockedMode = false
            actions.append(.send(.unlock))
            actions.append(.event(.unlocked))
        }
    }

    private mutating func open(at now: MonotonicNanos, _ actions: inout [BarrierLaneAction]) {
        closeAt = nil
        closeWanted = false
        vehicleSeen = loopOccupied
        target = .open
        commandedAt = now
        actions.append(.send(.open))
    }

    /// The only place a close is sent: never with a vehicle on the loop.
    private mutating func close(at now: MonotonicNanos, _ actions: inout [BarrierLaneAction]) {
        guard !loopOccupied else {
            closeWanted = true
            actions.append(.event(.closeHeld))
            return
        }
        closeWanted = false
        target = .closed
        commandedAt = now
        vehicleSeen = false
        actions.append(.send(.close))
    }
}
