// The serial QR reader's driver: termios on the reader's tty, read on a thread of its own. The
// only file that speaks termios.
import AccessConfig
import AccessCore
import AccessRuntime
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A QR reader on a serial line (UART, USB serial or an RS-485 converter) that sends each code as
/// a line of ASCII. Its thread opens the port raw at the map's speed, waits in `poll` (so `stop`
/// is seen within `pollMillis`) and hands each complete line to the handler as `.qr`, or as
/// `.garbledLine` when it is no code. When the port fails (the reader unplugged, a USB adapter gone)
/// it says `.device(online: false)` once, then tries to open it again every `reopenMillis` until
/// it is back (`.device(online: true)`); a half-read line is dropped then.
public final class SerialQRReader: @unchecked Sendable {
    public let reader: BoardMap.QRReader
    private let device: String
    private let handler: @Sendable (BoardEvent) -> Void
    private let running = Atomic<Bool>(false)
    private let pollMillis: Int32 = 100
    private let reopenMillis: Int32 = 250
    // Set by `start`, read by `stop`, both from the owner's thread.
    private var thread: NamedThread?
    /// The last failure, for status and tests: what failed and with which errno.
    private let lastFailure = Mutex<DeviceError?>(nil)

    /// Throws when the map's reader names no device (a simulated reader has none).
    public init(reader: BoardMap.QRReader, handler: @escaping @Sendable (BoardEvent) -> Void) throws(DeviceError) {
        guard let device = reader.device else {
            throw .configuration(file: "board map", key: "qr_reader \(reader.name).device", problem: "no serial device given")
        }
        self.reader = reader
        self.device = device
        self.handler = handler
    }

    /// Starts the reader's thread. A port that cannot be opened yet is not an error: the thread
    /// reports the reader offline and keeps trying.
    public func start() throws(SystemError) {
        guard !running.exchange(true, ordering: .acquiringAndReleasing) else { return }
        thread = try NamedThread.start(name: "qr \(reader.name)") { [self] in run() }
    }

    /// Stops the thread and closes the port; returns once the thread has ended.
    public func stop() {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return }
        thread?.join()
        thread = nil
    }

    /// Why the port last failed, nil while it has not.
    public var failure: DeviceError? { lastFailure.withLock { $0 } }

    private func run() {
        var assembler = QRLineAssembler(maxLength: reader.maxLength)
        var online: Bool?
        while running.load(ordering: .acquiring) {
            let fd: Int32
            do {
                fd = try Self.open(device, baud: reader.baud)
            } catch {
                lastFailure.withLock { $0 = error }
                if online != false {
                    online = false
                    handler(.device(name: reader.name, online: false))
                }
                _ = poll(nil, 0, reopenMillis)
                continue
            }
            if online != true {
                online = true
                handler(.device(name: reader.name, online: true))
            }
            assembler.reset()
            if let error = readLines(fd, &assembler) {
                lastFailure.withLock { $0 = error }
                online = false
                handler(.device(name: reader.name, online: false))
            }
            close(fd)
        }
    }

    /// Reads until the port fails (the error) or the reader is stopped (nil).
    private func readLines(_ fd: Int32, _ assembler: inout QRLineAssembler) -> DeviceError? {
        var buffer = [UInt8](repeating: 0, count: 512)
        var waiting = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while running.load(ordering: .acquiring) {
            let ready = poll(&waiting, 1, pollMillis)
            if ready < 0 {
                if errno == EINTR { continue }
                return .serial(operation: "poll", device: device, errno: errno)
            }
            if ready == 0 { continue }
            // Data first: a reader's last line may arrive with the hang-up.
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                for output in assembler.feed(buffer[0..<n]) {
                    switch output {
                    case .code(let code): handler(.qr(reader: reader.name, code: code))
                    case .garbled(let problem): handler(.garbledLine(reader: reader.name, problem: problem))
                    }
                }
                continue
            }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { continue }
            // A tty whose other end went away reads 0 or fails with EIO; either way it is gone.
            return .serial(operation: "read", device: device, errno: n < 0 ? errno : EIO)
        }
        return nil
    }

    /// Opens `path` as a raw 8N1 line at `baud`, non-blocking, without becoming its controlling
    /// terminal; bytes left in the driver's buffer from before are dropped.
    static func open(_ path: String, baud: Int) throws(DeviceError) -> Int32 {
        func fail(_ operation: String, _ error: SystemError) -> DeviceError {
            .serial(operation: operation, device: path, errno: error.errno)
        }
        let fd: Int32
        do {
            fd = try syscall("open \(path)") { Glibc.open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC) }
        } catch {
            throw fail("open", error)
        }
        do {
            var attributes = termios()
            _ = try syscall("tcgetattr") { tcgetattr(fd, &attributes) }
            cfmakeraw(&attributes)
            attributes.c_cflag |= tcflag_t(CLOCAL) | tcflag_t(CREAD)
            attributes.c_cflag &= ~(tcflag_t(CSTOPB) | tcflag_t(CRTSCTS))
            let speed = Self.speed(baud)
            _ = try syscall("cfsetspeed") { cfsetspeed(&attributes, speed) }
            _ = try syscall("tcsetattr") { tcsetattr(fd, TCSANOW, &attributes) }
            _ = try syscall("tcflush") { tcflush(fd, TCIFLUSH) }
        } catch {
            close(fd)
            throw fail(error.operation, error)
        }
        return fd
    }

    /// The termios constant for a speed the board map allows (`BoardMap.QRReader.bauds`).
    static func speed(_ baud: Int) -> speed_t {
        switch baud {
        case 1200: return speed_t(B1200)
        case 2400: return speed_t(B2400)
        case 4800: return speed_t(B4800)
        case 19200: return speed_t(B19200)
        case 38400: return speed_t(B38400)
        case 57600: return speed_t(B57600)
        case 115_200: return speed_t(B115200)
        default: return speed_t(B9600)
        }
    }
}
