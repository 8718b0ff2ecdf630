/// A barrier whose controller is wired to the board's lines instead of a bus: relays that close
/// its OPEN, CLOSE (and STOP) terminals, and inputs for the vehicle loop, the infrared safety
/// beam and the arm's limit switches. Lines by name, as the board map declares them.
public struct BarrierContacts: Sendable, Equatable {
    /// Outputs (board roles `barrier-open`, `barrier-close`, `barrier-stop`).
    public var open: String
    public var close: String
    public var stop: String?
    /// Inputs: a vehicle on the loop or in the beam (roles `loop`, `infrared`); at least one.
    public var loop: String?
    public var infrared: String?
    /// The arm's limit switches (roles `barrier-raised`, `barrier-lowered`).
    public var raised: String
    public var lowered: String
    /// How long a relay holds a terminal closed: barrier controllers take a press, not a level.
    public var pulseNanos: UInt64

    public init(open: String, close: String, stop: String? = nil, loop: String?, infrared: String? = nil,
                raised: String, lowered: String, pulseMillis: Int = 500) {
        self.open = open
        self.close = close
        self.stop = stop
        self.loop = loop
        self.infrared = infrared
        self.raised = raised
        self.lowered = lowered
        pulseNanos = UInt64(pulseMillis) * 1_000_000
    }

    /// The input lines, loop and beam first.
    public var inputs: [String] { [loop, infrared, raised, lowered].compactMap { $0 } }
    public var outputs: [String] { [open, close, stop].compactMap { $0 } }
}

/// One relay's new level.
public struct ContactOutput: Sendable, Equatable {
    public var line: String
    public var on: Bool

    public init(_ line: String, on: Bool) {
        self.line = line
        self.on = on
    }
}

/// The dry-contact side of a lane as a value: the lane machine's commands become relay pulses,
/// and the lane's input lines become the machine's inputs (the same ones a Modbus gate's status
/// gives), so the decisions stay the machine's. One pulse at a time: a new command ends the one
/// running first, so OPEN and CLOSE are never pressed together, and an OPEN cuts a CLOSE short
/// when a vehicle comes under a lowering arm.
public struct DryContactBarrier: Sendable, Equatable {
    struct Pulse: Sendable, Equatable {
        var line: String
        var until: MonotonicNanos
    }

    public let contacts: BarrierContacts
    private var pulse: Pulse?
    private var levels: [String: Bool] = [:]
    /// The last command pressed: with neither limit switch made, the arm is on its way there.
    private var moving: BarrierCommand?

    public init(contacts: BarrierContacts) { self.contacts = contacts }

    /// When the running pulse ends.
    public var nextDeadline: MonotonicNanos? { pulse?.until }

    /// The line of the pulse now running, if any.
    public var pulsing: String? { pulse?.line }

    /// A vehicle on the loop or in the beam.
    public var vehiclePresent: Bool {
        [contacts.loop, contacts.infrared].compactMap { $0 }.contains { levels[$0] == true }
    }

    /// Where the arm is, from its limit switches and the last command.
    public var position: BarrierPosition {
        switch (levels[contacts.raised] == true, levels[contacts.lowered] == true) {
        case (true, false): return .open
        case (false, true): return .closed
        case (true, true): return .unknown  // both limits made: a wiring or switch fault
        case (false, false):
            switch moving {
            case .open?: return .opening
            case .close?: return .closing
            case .stop?: return .stopped
            default: return .unknown
            }
        }
    }

    /// A lane command as relay levels, in order. Lock and unlock have no terminal: the lane keeps
    /// its mode itself. CLOSE is never pressed while the loop or the beam sees a vehicle (the lane
    /// machine does not ask for it then; this holds at the relay even if it did).
    public mutating func send(_ command: BarrierCommand, at now: MonotonicNanos) -> [ContactOutput] {
        let line: String
        switch command {
        case .open: line = contacts.open
        case .close:
            guard !vehiclePresent else { return [] }
            line = contacts.close
        case .stop:
            guard let stop = contacts.stop else { return end() }
            line = stop
        case .lock, .unlock: return []
        }
        var out = end()
        moving = command
        pulse = Pulse(line: line, until: now + contacts.pulseNanos)
        out.append(ContactOutput(line, on: true))
        return out
    }

    /// Ends the pulse whose time is up.
    public mutating func tick(at now: MonotonicNanos) -> [ContactOutput] {
        guard let pulse, now >= pulse.until else { return [] }
        return end()
    }

    /// Ends the running pulse at once (a controlled stop).
    public mutating func end() -> [ContactOutput] {
        guard let running = pulse else { return [] }
        pulse = nil
        return [ContactOutput(running.line, on: false)]
    }

    /// An input line's level as the lane machine's input; nil when the line is not this lane's.
    public mutating func input(_ line: String, active: Bool) -> BarrierLaneStateMachine.Input? {
        guard contacts.inputs.contains(line) else { return nil }
        levels[line] = active
        if line == contacts.loop || line == contacts.infrared { return .loop(occupied: vehiclePresent) }
        return .position(position)
    }
}
