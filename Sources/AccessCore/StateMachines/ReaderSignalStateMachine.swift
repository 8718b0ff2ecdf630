/// What a reader's LED and beeper tell the person at it.
public enum ReaderSignal: Sendable, Equatable {
    /// Granted: the LED lights for `ledNanos` (the door's release time) with one short beep.
    case granted(ledNanos: UInt64)
    /// Refused: three short beeps, the LED off.
    case denied
    /// Card and PIN: the card was taken, type the PIN (one short beep).
    case prompt
}

/// The LED and beeper lines of one Wiegand reader as a value: a signal sets out a pattern of line
/// changes in time, `tick` plays those that are due. A new signal replaces the rest of the one
/// before, so the lines always tell the latest decision.
public struct ReaderSignalStateMachine: Sendable, Equatable {
    public enum Line: Sendable, Equatable { case led, beeper }

    /// A line to switch.
    public struct Action: Sendable, Equatable {
        public var line: Line
        public var on: Bool

        public init(_ line: Line, on: Bool) {
            self.line = line
            self.on = on
        }
    }

    struct Step: Sendable, Equatable {
        var at: MonotonicNanos
        var action: Action
    }

    /// One beep's length, and the pause between the beeps of a refusal.
    public static let beepNanos: UInt64 = 150_000_000
    public static let deniedBeeps = 3

    public private(set) var led = false
    public private(set) var beeper = false
    private var steps: [Step] = []

    public init() {}

    /// When `tick` must come next, while a pattern plays.
    public var nextDeadline: MonotonicNanos? { steps.first?.at }

    /// Starts `signal`'s pattern at `now`; the changes due at once.
    public mutating func signal(_ signal: ReaderSignal, at now: MonotonicNanos) -> [Action] {
        let beep = Self.beepNanos
        var pattern: [(UInt64, Action)]
        switch signal {
        case .granted(let ledNanos):
            pattern = [(0, Action(.led, on: true)), (0, Action(.beeper, on: true)), (beep, Action(.beeper, on: false)),
                       (max(ledNanos, beep), Action(.led, on: false))]
        case .denied:
            pattern = [(0, Action(.led, on: false))]
            for i in 0..<UInt64(Self.deniedBeeps) {
                pattern += [(2 * i * beep, Action(.beeper, on: true)), ((2 * i + 1) * beep, Action(.beeper, on: false))]
            }
        case .prompt:
            pattern = [(0, Action(.led, on: false)), (0, Action(.beeper, on: true)), (beep, Action(.beeper, on: false))]
        }
        steps = pattern.enumerated()
            .sorted { ($0.element.0, $0.offset) < ($1.element.0, $1.offset) }
            .map { Step(at: now + $0.element.0, action: $0.element.1) }
        return tick(at: now)
    }

    /// Plays the changes due by `now`; a line already in the state a step asks for is left alone.
    public mutating func tick(at now: MonotonicNanos) -> [Action] {
        var actions: [Action] = []
        while let step = steps.first, step.at <= now {
            steps.removeFirst()
            switch step.action.line {
            case .led:
                guard led != step.action.on else { continue }
                led = step.action.on
            case .beeper:
                guard beeper != step.action.on else { continue }
                beeper = step.action.on
            }
            actions.append(step.action)
        }
        return actions
    }
}
