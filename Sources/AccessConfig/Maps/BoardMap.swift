import AccessCore
import TOMLKit

/// A board's GPIO lines by role, read from `Hardware/boards/*.toml`. Lines are found by name on
/// the chip (device-tree `gpio-line-names`, or gpio-sim's `name`), never by number.
public struct BoardMap: Sendable, Equatable {
    public enum Bias: String, Sendable, CaseIterable {
        case asIs = "as-is", disable, pullUp = "pull-up", pullDown = "pull-down"
    }

    /// What an output drives.
    public enum OutputRole: String, Sendable, CaseIterable {
        case lock, siren, light, relay
        /// A reader's LED and beeper control lines (a Wiegand reader's LED and BEEP wires).
        case led, beeper
        case barrierOpen = "barrier-open", barrierClose = "barrier-close", barrierStop = "barrier-stop"
    }

    /// What an input reports.
    public enum InputRole: String, Sendable, CaseIterable {
        case doorContact = "door-contact", exitButton = "exit-button", fire, call, tamper, loop, fence, generic
        /// A barrier lane's infrared safety beam (active: broken) and its arm's limit switches.
        case infrared, barrierRaised = "barrier-raised", barrierLowered = "barrier-lowered"
    }

    public struct Output: Sendable, Equatable {
        public var name: String
        public var role: OutputRole
        public var activeLow: Bool
        /// The value the line takes at start, at stop and before anything else runs.
        public var safeActive: Bool

        public init(name: String, role: OutputRole, activeLow: Bool = false, safeActive: Bool = false) {
            self.name = name
            self.role = role
            self.activeLow = activeLow
            self.safeActive = safeActive
        }
    }

    public struct Input: Sendable, Equatable {
        public var name: String
        public var role: InputRole
        public var activeLow: Bool
        public var bias: Bias
        /// A change is reported once the line has held its new level this long.
        public var debounceNanos: UInt64

        public init(name: String, role: InputRole, activeLow: Bool = false, bias: Bias = .asIs, debounceNanos: UInt64 = 20_000_000) {
            self.name = name
            self.role = role
            self.activeLow = activeLow
            self.bias = bias
            self.debounceNanos = debounceNanos
        }
    }

    public struct Reader: Sendable, Equatable {
        public var name: String
        public var d0: String
        public var d1: String
        public var bias: Bias
        /// nil: auto (26/34/37 and keypad bursts, frame end by silence).
        public var format: WiegandFormat?
        public var silenceNanos: UInt64
        /// The reader's LED and beeper: names of `[[output]]` lines (roles `led`, `beeper`).
        public var led: String?
        public var beeper: String?
        /// The reader's tamper switch: the name of an `[[input]]` line (role `tamper`).
        public var tamper: String?

        public init(name: String, d0: String, d1: String, bias: Bias = .asIs, format: WiegandFormat?, silenceNanos: UInt64 = 25_000_000,
                    led: String? = nil, beeper: String? = nil, tamper: String? = nil) {
            self.led = led
            self.beeper = beeper
            self.tamper = tamper
            self.name = name
            self.d0 = d0
            self.d1 = d1
            self.bias = bias
            self.format = format
            self.silenceNanos = silenceNanos
        }
    }

    /// A serial QR code reader (on a UART or an RS-485 converter): it sends each code it scans
    /// as one line of ASCII, ended by CR or LF.
    public struct QRReader: Sendable, Equatable {
        /// The serial speeds a QR reader is set to; the termios driver knows each of them.
        public static let bauds = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200]

        public var name: String
        /// The serial device (`/dev/ttyUSB0`, `/dev/ttyAMA1`). nil on the simulated board: codes
        /// come from `accessctl sim qr`.
        public var device: String?
        public var baud: Int
        /// The longest line taken as a code; a longer one is dropped whole as garbled.
        public var maxLength: Int

        public init(name: String, device: String? = nil, baud: Int = 9600, maxLength: Int = 512) {
            self.name = name
            self.device = device
            self.baud = baud
            self.maxLength = maxLength
        }
    }

    public var model: String
    /// Restricts the line search to one chip (name like `gpiochip0` or label); nil: every chip.
    public var chip: String?
    public var outputs: [Output]
    public var inputs: [Input]
    public var readers: [Reader]
    public var qrReaders: [QRReader]

    /// Every reader's name, Wiegand and QR: what a portal's `readers` may name.
    public var readerNames: Set<String> { Set(readers.map(\.name) + qrReaders.map(\.name)) }

    /// Every line name the map uses, in declaration order.
    public var lineNames: [String] { outputs.map(\.name) + inputs.map(\.name) + readers.flatMap { [$0.d0, $0.d1] } }

    public init(model: String, chip: String? = nil, outputs: [Output] = [], inputs: [Input] = [], readers: [Reader] = [],
                qrReaders: [QRReader] = []) {
        self.model = model
        self.chip = chip
        self.outputs = outputs
        self.inputs = inputs
        self.readers = readers
        self.qrReaders = qrReaders
    }

    /// The readers' LED, beeper and tamper lines, as the site drives and watches them.
    public var siteReaders: [SiteLayout.Reader] {
        readers.filter { $0.led != nil || $0.beeper != nil || $0.tamper != nil }
            .map { SiteLayout.Reader(name: $0.name, led: $0.led, beeper: $0.beeper, tamper: $0.tamper) }
    }

    /// Reads and validates a board map file.
    public static func load(path: String) throws(ConfigError) -> BoardMap {
        try parse(try TOMLReader.load(path: path))
    }

    /// Validates a board map's text; errors name `file`.
    public static func parse(_ text: String, file: String) throws(ConfigError) -> BoardMap {
        try parse(try TOMLReader(text: text, file: file))
    }

    static func parse(_ t: TOMLReader) throws(ConfigError) -> BoardMap {
        let root = t.root
        try t.allowOnly(root, "", ["board", "output", "input", "reader", "qr_reader"])
        let board = try t.requiredTable(root, "board")
        try t.allowOnly(board, "board", ["model", "chip", "doc"])
        var map = BoardMap(model: try t.string(board, "board.model", required: true, allowEmpty: true), chip: try t.optionalString(board, "board.chip"))

        for (i, item) in try t.tables(root, "output").enumerated() {
            let k = "output[\(i)]"
            try t.allowOnly(item, k, ["name", "role", "active_low", "safe", "doc"])
            let safe = try t.string(item, "\(k).safe", default: "inactive")
            guard safe == "inactive" || safe == "active" else { throw t.error("\(k).safe", "\"\(safe)\" is not inactive or active") }
            map.outputs.append(Output(name: try t.string(item, "\(k).name", required: true, allowEmpty: true),
                                      role: try t.enumeration(item, "\(k).role", default: nil),
                                      activeLow: try t.bool(item, "\(k).active_low", default: false),
                                      safeActive: safe == "active"))
        }
        for (i, item) in try t.tables(root, "input").enumerated() {
            let k = "input[\(i)]"
            try t.allowOnly(item, k, ["name", "role", "contact", "active_low", "bias", "debounce_ms", "doc"])
            // A dry contact between the line and ground, with a pull-up: a normally-closed contact
            // (door reed switch, tamper) is active when it opens and the line goes high; a
            // normally-open one (exit button, fire panel relay) when it closes and pulls the line low.
            var activeLow = try t.bool(item, "\(k).active_low", default: false)
            if let contact = try t.optionalString(item, "\(k).contact") {
                guard !t.has(item, "active_low") else { throw t.error("\(k).contact", "give contact or active_low, not both") }
                guard contact == "no" || contact == "nc" else { throw t.error("\(k).contact", "\"\(contact)\" is not no or nc") }
                activeLow = contact == "no"
            }
            map.inputs.append(Input(name: try t.string(item, "\(k).name", required: true, allowEmpty: true),
                                    role: try t.enumeration(item, "\(k).role", default: nil),
                                    activeLow: activeLow,
                                    bias: try t.enumeration(item, "\(k).bias", default: Bias.asIs),
                                    debounceNanos: UInt64(try t.int(item, "\(k).debounce_ms", default: 20, range: 0...10_000)) * 1_000_000))
        }
        for (i, item) in try t.tables(root, "reader").enumerated() {
            let k = "reader[\(i)]"
            try t.allowOnly(item, k, ["name", "d0", "d1", "bias", "format", "silence_ms", "led", "beeper", "tamper", "doc"])
            let format = try t.string(item, "\(k).format", default: "auto")
            guard format == "auto" || WiegandFormat(rawValue: format) != nil else {
                throw t.error("\(k).format", "\"\(format)\" is not one of auto, 26, 34, 37, raw")
            }
            map.readers.append(Reader(name: try t.string(item, "\(k).name", required: true, allowEmpty: true),
                                      d0: try t.string(item, "\(k).d0", required: true, allowEmpty: true),
                                      d1: try t.string(item, "\(k).d1", required: true, allowEmpty: true),
                                      bias: try t.enumeration(item, "\(k).bias", default: Bias.asIs),
                                      format: WiegandFormat(rawValue: format),
                                      silenceNanos: UInt64(try t.int(item, "\(k).silence_ms", default: 25, range: 5...1_000)) * 1_000_000,
                                      led: try t.optionalString(item, "\(k).led"), beeper: try t.optionalString(item, "\(k).beeper"),
                                      tamper: try t.optionalString(item, "\(k).tamper")))
        }
        for (i, item) in try t.tables(root, "qr_reader").enumerated() {
            let k = "qr_reader[\(i)]"
            try t.allowOnly(item, k, ["name", "device", "baud", "max_length", "doc"])
            let baud = try t.int(item, "\(k).baud", default: 9600, range: 1200...115_200)
            guard QRReader.bauds.contains(baud) else {
                throw t.error("\(k).baud", "\(baud) is not one of \(QRReader.bauds.map(String.init).joined(separator: ", "))")
            }
            let device = try t.optionalString(item, "\(k).device")
            if let device, !device.hasPrefix("/") { throw t.error("\(k).device", "\"\(device)\" is not an absolute path (/dev/ttyUSB0)") }
            map.qrReaders.append(QRReader(name: try t.string(item, "\(k).name", required: true),
                                          device: device, baud: baud,
                                          maxLength: try t.int(item, "\(k).max_length", default: 512, range: 16...4096)))
        }
        var seen: [String: String] = [:]
        let owners = map.outputs.enumerated().map { ("output[\($0.offset)].name", $0.element.name) }
            + map.inputs.enumerated().map { ("input[\($0.offset)].name", $0.element.name) }
            + map.readers.enumerated().flatMap { [("reader[\($0.offset)].d0", $0.element.d0), ("reader[\($0.offset)].d1", $0.element.d1)] }
        for (key, line) in owners {
            if line.isEmpty { throw t.error(key, "may not be empty") }
            if let other = seen[line] { throw t.error(key, "line \"\(line)\" is already used by \(other)") }
            seen[line] = key
        }
        // A reader's own lines are lines of the map with the role they play.
        var readerLines: [String: String] = [:]
        for (i, r) in map.readers.enumerated() {
            for (key, name, role) in [("led", r.led, OutputRole.led), ("beeper", r.beeper, OutputRole.beeper)] {
                guard let name else { continue }
                guard let output = map.outputs.first(where: { $0.name == name }) else {
                    throw t.error("reader[\(i)].\(key)", "no [[output]] named \"\(name)\"")
                }
                guard output.role == role else { throw t.error("reader[\(i)].\(key)", "output \"\(name)\" has role \(output.role.rawValue), not \(role.rawValue)") }
            }
            if let name = r.tamper {
                guard let input = map.inputs.first(where: { $0.name == name }) else {
                    throw t.error("reader[\(i)].tamper", "no [[input]] named \"\(name)\"")
                }
                guard input.role == .tamper else { throw t.error("reader[\(i)].tamper", "input \"\(name)\" has role \(input.role.rawValue), not tamper") }
            }
            for (key, name) in [("led", r.led), ("beeper", r.beeper), ("tamper", r.tamper)] {
                guard let name else { continue }
                if let other = readerLines[name] { throw t.error("reader[\(i)].\(key)", "line \"\(name)\" is already \(other)") }
                readerLines[name] = "reader[\(i)].\(key)"
            }
        }
        var readerNames = Set<String>()
        for (i, r) in map.readers.enumerated() where !readerNames.insert(r.name).inserted {
            throw t.error("reader[\(i)].name", "reader \"\(r.name)\" is declared twice")
        }
        for (i, r) in map.qrReaders.enumerated() where !readerNames.insert(r.name).inserted {
            throw t.error("qr_reader[\(i)].name", "reader \"\(r.name)\" is declared twice")
        }
        return map
    }
}
