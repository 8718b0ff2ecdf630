// The real GPIO driver, on libgpiod 1.6 (Debian 12's: the v1 API). The only file that imports
// CGPIOD, so a move to libgpiod 2 touches this file alone.
import AccessConfig
import AccessCore
import AccessRuntime
import CGPIOD
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A board's lines requested through the kernel's GPIO character device, by name from a
/// `BoardMap`. Outputs are requested first, already at their safe value, so nothing glitches at
/// start. Edges are read in batches on a dedicated thread (never Swift's cooperative pool) and
/// turned into `BoardEvent`s; `handler` sees them on that thread, before anything else, so the
/// swipe → relay path has no hop.
public final class GPIOBoard: @unchecked Sendable {
    public let map: BoardMap
    let consumer: String
    private var chips: [OpaquePointer] = []
    private var outputs: [String: GPIOOutputLine] = [:]
    /// Event lines: (line, what it is). Owned by the event thread once started.
    private var eventLines: [(line: OpaquePointer, name: String, source: Source)] = []
    private var inputLines: [OpaquePointer] = []
    private let handler: @Sendable (BoardEvent) -> Void
    private var wakePipe: (read: Int32, write: Int32) = (-1, -1)
    private var thread: NamedThread?
    private let stopping = Atomic<Bool>(false)
    /// Edges and overruns seen, for metrics and tests.
    public let edgeCount = Atomic<Int>(0)
    public let overrunCount = Atomic<Int>(0)

    enum Source {
        case reader(Int, bit: UInt8)
        case input(Int)
    }

    /// Requests every line of `map`. Throws, naming the line, when one is missing or busy; lines
    /// already requested are released (outputs at their safe value).
    public init(map: BoardMap, consumer: String = "accessd", handler: @escaping @Sendable (BoardEvent) -> Void) throws(DeviceError) {
        self.map = map
        self.consumer = consumer
        self.handler = handler
        do {
            try requestAll()
        } catch {
            releaseAll()
            throw error
        }
    }

    deinit { close() }

    private func find(_ name: String) throws(DeviceError) -> OpaquePointer {
        if let chipName = map.chip {
            if chips.isEmpty {
                do {
                    chips.append(try syscall("open chip \(chipName)") { gpiod_chip_open_lookup(chipName) })
                } catch {
                    throw .gpio(operation: error.operation, line: name, errno: error.errno)
                }
            }
            do {
                return try syscall("find line") { gpiod_chip_find_line(chips[0], name) }
            } catch where error.errno == ENOENT || error.errno == 0 {
                throw .lineNotFound(line: name, chip: chipName)
            } catch {
                throw .gpio(operation: error.operation, line: name, errno: error.errno)
            }
        }
        let line: OpaquePointer
        do {
            line = try syscall("find line") { gpiod_line_find(name) }
        } catch where error.errno == ENOENT || error.errno == 0 {
            throw .lineNotFound(line: name, chip: nil)
        } catch {
            throw .gpio(operation: error.operation, line: name, errno: error.errno)
        }
        // gpiod_line_find opened the line's chip for us; keep it to close at the end.
        if let chip = gpiod_line_get_chip(line) { chips.append(chip) }
        return line
    }

    private static func flags(activeLow: Bool, bias: BoardMap.Bias) -> Int32 {
        var flags = 0
        if activeLow { flags |= GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW }
        switch bias {
        case .asIs: break
        case .disable: flags |= GPIOD_LINE_REQUEST_FLAG_BIAS_DISABLE
        case .pullUp: flags |= GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP
        case .pullDown: flags |= GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN
        }
        return Int32(flags)
    }

    private func requestAll() throws(DeviceError) {
        // Outputs first, at their safe value: nothing else may run before they are safe.
        for output in map.outputs {
            let line = try find(output.name)
            let flags = Self.flags(activeLow: output.activeLow, bias: .asIs)
            _ = try gpio("request output", line: output.name) {
                gpiod_line_request_output_flags(line, consumer, flags, output.safeActive ? 1 : 0)
            }
            outputs[output.name] = GPIOOutputLine(name: output.name, line: line, safe: output.safeActive)
        }
        for (i, input) in map.inputs.enumerated() {
            let line = try find(input.name)
            _ = try gpio("request input edges", line: input.name) {
                gpiod_line_request_both_edges_events_flags(line, consumer, Self.flags(activeLow: input.activeLow, bias: input.bias))
            }
            eventLines.append((line, input.name, .input(i)))
            inputLines.append(line)
        }
        // Wiegand needs only falling edges: with both, the v1 interface re-reads the level to
        // tell rising from falling and can misreport fast pulses.
        for (r, reader) in map.readers.enumerated() {
            for (bit, name) in [(UInt8(0), reader.d0), (1, reader.d1)] {
                let line = try find(name)
                _ = try gpio("request falling edges", line: name) {
                    gpiod_line_request_falling_edge_events_flags(line, consumer, Self.flags(activeLow: false, bias: reader.bias))
                }
                eventLines.append((line, name, .reader(r, bit: bit)))
            }
        }
        var fds: [Int32] = [0, 0]
        _ = try gpio("pipe", line: "-") { pipe(&fds) }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        wakePipe = (fds[0], fds[1])
    }

    /// The output line named `name`.
    public func output(_ name: String) throws(DeviceError) -> any OutputLine {
        guard let line = outputs[name] else { throw .unknownName(kind: "output", name: name) }
        return line
    }

    /// An input's current logical level.
    public func read(_ name: String) throws(DeviceError) -> Bool {
        guard let i = map.inputs.firstIndex(where: { $0.name == name }) else { throw .unknownName(kind: "input", name: name) }
        return try gpio("get value", line: name) { gpiod_line_get_value(inputLines[i]) } == 1
    }

    /// Starts the event thread. Every input's level is reported first.
    public func start() throws(DeviceError) {
        guard thread == nil else { return }
        do {
            // The thread holds the board until close() stops and joins it.
            thread = try NamedThread.start(name: "gpio-events") { [self] in run() }
        } catch {
            throw .gpio(operation: "start event thread", line: "-", errno: error.errno)
        }
    }

    /// Stops the event thread, returns outputs to their safe values and releases every line.
    public func close() {
        if let thread {
            stopping.store(true, ordering: .releasing)
            var one: UInt8 = 1
            _ = write(wakePipe.write, &one, 1)
            thread.join()
            self.thread = nil
        }
        releaseAll()
    }

    private func releaseAll() {
        for output in outputs.values { output.release() }
        outputs.removeAll()
        for entry in eventLines { gpiod_line_release(entry.line) }
        eventLines.removeAll()
        inputLines.removeAll()
        for chip in chips { gpiod_chip_close(chip) }
        chips.removeAll()
        if wakePipe.read >= 0 { Glibc.close(wakePipe.read); Glibc.close(wakePipe.write) }
        wakePipe = (-1, -1)
    }

    /// Runs a libgpiod call through the runtime's errno helper (EINTR retried); a failure names
    /// the operation and the line.
    private func gpio<T: FixedWidthInteger>(_ operation: String, line: String, _ body: () -> T) throws(DeviceError) -> T {
        do {
            return try syscall(operation, body)
        } catch {
            throw .gpio(operation: operation, line: line, errno: error.errno)
        }
    }

    /// The event loop: poll every event fd, read batches, order edges by time, decode.
    private func run() {
        var processor = EdgeProcessor(map: map)
        let now = monotonicNanos()
        for (i, line) in inputLines.enumerated() {
            handler(processor.initial(i, active: gpiod_line_get_value(line) == 1, at: now))
        }
        var pollFDs = [pollfd(fd: wakePipe.read, events: Int16(POLLIN), revents: 0)]
        for entry in eventLines {
            pollFDs.append(pollfd(fd: gpiod_line_event_get_fd(entry.line), events: Int16(POLLIN), revents: 0))
        }
        // The kernel's v1 queue holds 16 events per line: a full batch means some may be lost.
        let batch = 16
        var buffer = [gpiod_line_event](repeating: gpiod_line_event(), count: batch)
        var edges: [(nanos: UInt64, entry: Int)] = []
        while !stopping.load(ordering: .acquiring) {
            var timeout: Int32 = -1
            if let deadline = processor.nextDeadline {
                let current = monotonicNanos()
                timeout = deadline <= current ? 0 : Int32(min((deadline - current + 999_999) / 1_000_000, 60_000))
            }
            do {
                _ = try syscall("poll GPIO events") { poll(&pollFDs, nfds_t(pollFDs.count), timeout) }
            } catch {
                handler(.device(name: "gpio", online: false))
                return
            }
            // Silence is judged at the time poll returned, not after the reads: if this thread is
            // held up in between, edges stamped meanwhile are still queued, and a frame whose next
            // bit is already waiting must not be declared over.
            let polledAt = monotonicNanos()
            edges.removeAll(keepingCapacity: true)
            for p in 1..<pollFDs.count where pollFDs[p].revents & Int16(POLLIN) != 0 {
                let entry = p - 1
                let n = gpiod_line_event_read_multiple(eventLines[entry].line, &buffer, UInt32(batch))
                guard n > 0 else { continue }
                for e in buffer[0..<Int(n)] {
                    edges.append((UInt64(e.ts.tv_sec) * 1_000_000_000 + UInt64(e.ts.tv_nsec), entry))
                }
                edgeCount.add(Int(n), ordering: .relaxed)
                if n == batch {
                    overrunCount.add(1, ordering: .relaxed)
                    let when = edges.last?.nanos ?? monotonicNanos()
                    switch eventLines[entry].source {
                    case .reader(let r, _):
                        for event in processor.readerOverrun(r, line: eventLines[entry].name, at: when) { handler(event) }
                    case .input:
                        handler(.overrun(line: eventLines[entry].name))
                    }
                }
            }
            // D0 and D1 are separate queues: merge them by timestamp to keep the bit order.
            edges.sort { $0.nanos < $1.nanos }
            for edge in edges {
                switch eventLines[edge.entry].source {
                case .reader(let r, let bit):
                    for event in processor.readerBit(r, bit: bit, at: edge.nanos) { handler(event) }
                case .input(let i):
                    processor.inputEdge(i, at: edge.nanos)
                }
            }
            let lines = inputLines
            for event in processor.due(now: polledAt, level: { i in
                let v = gpiod_line_get_value(lines[i])
                return v < 0 ? nil : v == 1
            }) {
                handler(event)
            }
        }
    }
}

/// One requested output line.
final class GPIOOutputLine: OutputLine, @unchecked Sendable {
    let name: String
    private let line: OpaquePointer
    private let safe: Bool
    private let lock = Mutex(())

    init(name: String, line: OpaquePointer, safe: Bool) {
        self.name = name
        self.line = line
        self.safe = safe
    }

    func set(_ active: Bool) throws(DeviceError) {
        do {
            _ = try lock.withLock { _ throws(SystemError) in try syscall("set value") { gpiod_line_set_value(line, active ? 1 : 0) } }
        } catch {
            throw .gpio(operation: "set value", line: name, errno: error.errno)
        }
    }

    /// Back to the safe value, then released (gpio-sim and most drivers keep the last value).
    func release() {
        lock.withLock { _ in
            _ = gpiod_line_set_value(line, safe ? 1 : 0)
            gpiod_line_release(line)
        }
    }
}
