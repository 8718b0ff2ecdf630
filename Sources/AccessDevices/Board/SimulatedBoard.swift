import AccessConfig
import AccessCore
import AccessRuntime
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The board `accessd` drives when no hardware is present. Lines live in memory; a simulated
/// swipe is encoded as the reader's Wiegand frame and decoded by the same `EdgeProcessor` as on
/// real hardware, so the simulation exercises the real decoding path. `accessctl sim` reaches
/// these operations through the controller.
public final class SimulatedBoard: Board, @unchecked Sendable {
    public let map: BoardMap
    private let handler: @Sendable (BoardEvent) -> Void
    private let state: Mutex<State>

    struct State {
        var processor: EdgeProcessor
        var outputs: [String: Bool]
        var inputs: [String: Bool]
        var started = false
        var clock: UInt64 = 1_000_000_000
    }

    public init(map: BoardMap, handler: @escaping @Sendable (BoardEvent) -> Void) {
        self.map = map
        self.handler = handler
        var outputs: [String: Bool] = [:]
        for o in map.outputs { outputs[o.name] = o.safeActive }
        var inputs: [String: Bool] = [:]
        for i in map.inputs { inputs[i.name] = false }
        state = Mutex(State(processor: EdgeProcessor(map: map), outputs: outputs, inputs: inputs))
    }

    public func output(_ name: String) throws(DeviceError) -> any OutputLine {
        guard map.outputs.contains(where: { $0.name == name }) else { throw .unknownName(kind: "output", name: name) }
        return SimulatedOutput(name: name, board: self)
    }

    public func read(_ name: String) throws(DeviceError) -> Bool {
        guard let value = state.withLock({ $0.inputs[name] }) else { throw .unknownName(kind: "input", name: name) }
        return value
    }

    public func start() throws(DeviceError) {
        let events: [BoardEvent] = state.withLock { s in
            guard !s.started else { return [] }
            s.started = true
            return map.inputs.indices.map { s.processor.initial($0, active: s.inputs[map.inputs[$0].name] ?? false, at: s.clock) }
        }
        events.forEach(handler)
    }

    public func close() {
        state.withLock { s in
            for o in map.outputs { s.outputs[o.name] = o.safeActive }
            s.started = false
        }
    }

    /// Every output and its value (logical: true = the role is energised).
    public var outputs: [String: Bool] { state.withLock { $0.outputs } }

    fileprivate func set(_ name: String, _ active: Bool) {
        state.withLock { $0.outputs[name] = active }
    }

    /// Presents a card at `reader`: its frame in the reader's format (26-bit for auto readers),
    /// bit by bit at 1 ms spacing, through the real decoder.
    public func swipe(reader: String, card: UInt64) throws(DeviceError) {
        guard let r = map.readers.firstIndex(where: { $0.name == reader }) else { throw .unknownName(kind: "reader", name: reader) }
        let format = map.readers[r].format ?? .bits26
        guard let (bits, count) = WiegandDecoder.encode(cardNumber: card, format: format) else {
            throw .configuration(file: "sim", key: "card", problem: "\(card) does not fit a \(format.rawValue)-bit frame")
        }
        send(bits: bits, count: count, reader: r)
    }

    /// Presses keys on a reader's keypad (8-bit bursts).
    public func keys(reader: String, _ keys: [KeypadKey]) throws(DeviceError) {
        guard let r = map.readers.firstIndex(where: { $0.name == reader }) else { throw .unknownName(kind: "reader", name: reader) }
        for key in keys {
            let (bits, count) = WiegandDecoder.encode(key: key)
            send(bits: bits, count: count, reader: r)
        }
    }

    /// A QR reader's scan: `code` as the reader sends it (one line, LF-ended), cut by the same
    /// line assembler as the serial driver's, so a code with a line break or a non-printable
    /// byte is garbled here as it would be at the gate.
    public func qr(reader: String, code: String) throws(DeviceError) {
        guard let qr = map.qrReaders.first(where: { $0.name == reader }) else { throw .unknownName(kind: "QR reader", name: reader) }
        guard state.withLock({ $0.started }) else { return }
        var assembler = QRLineAssembler(maxLength: qr.maxLength)
        for output in assembler.feed(Array(code.utf8) + [0x0A]) {
            switch output {
            case .code(let text): handler(.qr(reader: reader, code: text))
            case .garbled(let problem): handler(.garbledLine(reader: reader, problem: problem))
            }
        }
    }

    /// Sends raw bits (garbled frames in tests), then lets the reader's silence pass.
    public func send(bits: UInt64, count: Int, reader r: Int) {
        let events: [BoardEvent] = state.withLock { s in
            guard s.started else { return [] }
            var out: [BoardEvent] = []
            for i in 0..<count {
                s.clock += 1_000_000
                out += s.processor.readerBit(r, bit: UInt8((bits >> UInt64(count - 1 - i)) & 1), at: s.clock)
            }
            s.clock += map.readers[r].silenceNanos
            out += s.processor.due(now: s.clock) { _ in nil }
            return out
        }
        // The bits are played on a virtual clock; the frame's last edge is, for the controller,
        // now: its swipe → relay latency then measures decoding, the decision and the relay.
        let delivered = monotonicNanos()
        events.map { event -> BoardEvent in
            switch event {
            case .card(let reader, let frame, _): return .card(reader: reader, frame: frame, lastEdgeNanos: delivered)
            case .key(let reader, let key, _): return .key(reader: reader, key: key, lastEdgeNanos: delivered)
            default: return event
            }
        }.forEach(handler)
    }

    /// Sets an input's logical level (door contact opened, fire panel asserted …) and reports it
    /// once its debounce time has passed.
    public func setInput(_ name: String, active: Bool) throws(DeviceError) {
        guard let i = map.inputs.firstIndex(where: { $0.name == name }) else { throw .unknownName(kind: "input", name: name) }
        let events: [BoardEvent] = state.withLock { s in
            s.inputs[name] = active
            guard s.started else { return [] }
            s.clock += 1_000_000
            s.processor.inputEdge(i, at: s.clock)
            s.clock += map.inputs[i].debounceNanos
            let levels = s.inputs
            return s.processor.due(now: s.clock) { levels[map.inputs[$0].name] }
        }
        events.forEach(handler)
    }
}

/// An output line of the simulated board.
struct SimulatedOutput: OutputLine {
    let name: String
    let board: SimulatedBoard

    func set(_ active: Bool) throws(DeviceError) { board.set(name, active) }
}
