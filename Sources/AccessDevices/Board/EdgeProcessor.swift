import AccessConfig
import AccessCore

/// Turns raw edges into board events, as a value the driver thread owns: reader bits into Wiegand
/// frames and keys, input edges into debounced level changes. No I/O: the driver passes times and,
/// for debouncing, how to read a line's current level.
public struct EdgeProcessor: Sendable {
    public let map: BoardMap
    private var assemblers: [WiegandAssembler]
    /// Per input: the level last reported, and when a pending change may be confirmed.
    private var reported: [Bool?]
    private var confirmAt: [UInt64?]

    public init(map: BoardMap) {
        self.map = map
        assemblers = map.readers.map { WiegandAssembler(format: $0.format, silenceNanos: $0.silenceNanos) }
        reported = Array(repeating: nil, count: map.inputs.count)
        confirmAt = Array(repeating: nil, count: map.inputs.count)
    }

    /// A falling edge on reader `reader`'s D0 (`bit` 0) or D1 (`bit` 1).
    public mutating func readerBit(_ reader: Int, bit: UInt8, at nanos: UInt64) -> [BoardEvent] {
        let outputs = assemblers[reader].bit(bit, at: nanos)
        return outputs.map { event($0, reader: reader) }
    }

    /// The edge queue of a reader's line overflowed: the frame in progress is spoilt.
    public mutating func readerOverrun(_ reader: Int, line: String, at nanos: UInt64) -> [BoardEvent] {
        assemblers[reader].overrun(at: nanos)
        return [.overrun(line: line)]
    }

    /// An edge on input `index`: the level is read once it has been stable for the debounce time.
    public mutating func inputEdge(_ index: Int, at nanos: UInt64) {
        confirmAt[index] = nanos + map.inputs[index].debounceNanos
    }

    /// Reports an input's level at start, so that the controller knows every input's state.
    public mutating func initial(_ index: Int, active: Bool, at nanos: UInt64) -> BoardEvent {
        reported[index] = active
        return .input(line: map.inputs[index].name, active: active, monotonicNanos: nanos)
    }

    /// The earliest time `due` has work: a reader's silence or an input's debounce.
    public var nextDeadline: UInt64? {
        (assemblers.compactMap(\.deadline) + confirmAt.compactMap { $0 }).min()
    }

    /// Completes what is due at `now`. `level` reads an input's current (logical) level.
    public mutating func due(now nanos: UInt64, level: (Int) -> Bool?) -> [BoardEvent] {
        var out: [BoardEvent] = []
        for r in assemblers.indices {
            if let done = assemblers[r].silence(now: nanos) { out.append(event(done, reader: r)) }
        }
        for i in confirmAt.indices {
            guard let at = confirmAt[i], nanos >= at else { continue }
            confirmAt[i] = nil
            if let active = level(i), active != reported[i] {
                reported[i] = active
                out.append(.input(line: map.inputs[i].name, active: active, monotonicNanos: nanos))
            }
        }
        return out
    }

    private func event(_ output: WiegandOutput, reader: Int) -> BoardEvent {
        let name = map.readers[reader].name
        let nanos = assemblers[reader].lastEdge
        switch output {
        case .card(let frame): return .card(reader: name, frame: frame, lastEdgeNanos: nanos)
        case .key(let key): return .key(reader: name, key: key, lastEdgeNanos: nanos)
        case .garbled(let why): return .garbled(reader: name, reason: why)
        }
    }
}
