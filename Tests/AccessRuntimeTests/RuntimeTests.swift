import AccessRuntime
import Glibc
import Synchronization
import Testing

@Suite("The syscall helper")
struct SyscallTests {
    @Test func eintrIsRetriedUntilTheCallAnswers() throws {
        var calls = 0
        let result = try syscall("read the pipe") { () -> Int32 in
            calls += 1
            if calls < 3 {
                errno = EINTR
                return -1
            }
            return 42
        }
        #expect(result == 42)
        #expect(calls == 3)
    }

    @Test func otherErrorsNameTheOperationAndErrno() {
        #expect(throws: SystemError("open /nonexistent/x", errno: ENOENT)) {
            try syscall("open /nonexistent/x") { open("/nonexistent/x", O_RDONLY) }
        }
        let error = SystemError("open /nonexistent/x", errno: ENOENT)
        #expect(error.description == "open /nonexistent/x: No such file or directory (errno 2)")
    }

    @Test func nullReturnsBecomeErrors() throws {
        #expect(throws: SystemError("fopen /nonexistent/y", errno: ENOENT)) {
            try syscall("fopen /nonexistent/y") { fopen("/nonexistent/y", "r") }
        }
        let file = try syscall("fopen /dev/null") { fopen("/dev/null", "r") }
        fclose(file)
    }

    @Test func returnedErrorNumbersAreChecked() {
        #expect(throws: SystemError("pthread_mutex_unlock", errno: EPERM)) {
            try checkReturnedError("pthread_mutex_unlock", EPERM)
        }
        #expect(throws: Never.self) { try checkReturnedError("nothing", 0) }
    }

    /// A real interrupted read: a signal whose handler is installed without SA_RESTART makes
    /// read(2) on an empty pipe fail with EINTR; the helper reads again and gets the byte.
    @Test func aRealSignalDuringABlockingReadIsRetried() throws {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        action.sa_flags = 0  // no SA_RESTART: the kernel returns EINTR
        sigemptyset(&action.sa_mask)
        var previous = sigaction()
        sigaction(SIGUSR2, &action, &previous)
        defer { sigaction(SIGUSR2, &previous, nil) }

        var fds: [Int32] = [0, 0]
        _ = try syscall("pipe") { pipe(&fds) }
        defer { close(fds[0]); close(fds[1]) }
        let started = Atomic<Bool>(false)
        let got = Mutex<Result<UInt8, SystemError>?>(nil)
        let readFD = fds[0]
        let reader = try NamedThread.start(name: "eintr-reader") {
            started.store(true, ordering: .releasing)
            var byte: UInt8 = 0
            let result = Result { () throws(SystemError) -> UInt8 in
                _ = try syscall("read the pipe") { read(readFD, &byte, 1) }
                return byte
            }
            got.withLock { $0 = result }
        }
        while !started.load(ordering: .acquiring) { usleep(1_000) }
        // Interrupt the blocked read several times, then give it something to read.
        for _ in 0..<5 {
            usleep(20_000)
            pthread_kill(reader.handle, SIGUSR2)
        }
        var byte: UInt8 = 7
        _ = write(fds[1], &byte, 1)
        reader.join()
        let result = try #require(got.withLock { $0 })
        #expect(try result.get() == 7)
    }
}

@Suite("The file reader")
struct FileReaderTests {
    static func temporaryFile(_ bytes: [UInt8]) throws -> String {
        var template = Array("/tmp/access-runtime-XXXXXX".utf8CString)
        let fd = try syscall("mkstemp") { mkstemp(&template) }
        defer { close(fd) }
        var written = 0
        while written < bytes.count {
            written += try bytes[written...].withUnsafeBytes { buffer in
                try syscall("write") { write(fd, buffer.baseAddress, buffer.count) }
            }
        }
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    @Test func readsAWholeFileLargerThanOneChunk() throws {
        let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let path = try Self.temporaryFile(bytes)
        defer { unlink(path) }
        #expect(try FileReader.bytes(path) == bytes)
    }

    @Test func readsTextAndEmptyFiles() throws {
        let path = try Self.temporaryFile(Array("门禁 = 1\n".utf8))
        defer { unlink(path) }
        #expect(try FileReader.text(path) == "门禁 = 1\n")
        let empty = try Self.temporaryFile([])
        defer { unlink(empty) }
        #expect(try FileReader.bytes(empty).isEmpty)
    }

    @Test func aMissingFileNamesPathStepAndErrno() {
        #expect(throws: FileError(path: "/nonexistent/site.toml", operation: "open", errno: ENOENT)) {
            try FileReader.text("/nonexistent/site.toml")
        }
        let error = FileError(path: "/nonexistent/site.toml", operation: "open", errno: ENOENT)
        #expect(error.description == "/nonexistent/site.toml: cannot open: No such file or directory (errno 2)")
        #expect(error.reason == "No such file or directory")
    }

    @Test func aDirectoryFailsAtRead() {
        #expect(throws: FileError(path: "/tmp", operation: "read", errno: EISDIR)) { try FileReader.bytes("/tmp") }
    }
}

@Suite("Threads, monitor and executor")
struct ThreadTests {
    /// Every thread's name in this process, as `top -H` and `ps -L` show them.
    static func threadNames() throws -> [String] {
        let dir = try #require(opendir("/proc/self/task"))
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let tid = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard tid.first?.isNumber == true else { continue }
            if let comm = try? FileReader.text("/proc/self/task/\(tid)/comm") {
                names.append(String(comm.dropLast()))  // the kernel ends it with a newline
            }
        }
        return names
    }

    @Test func aStartedThreadCarriesItsNameAndCanBeJoined() throws {
        let monitor = Monitor()
        let release = Mutex(false)
        let ran = Atomic<Bool>(false)
        let thread = try NamedThread.start(name: "rt-named-test") {
            ran.store(true, ordering: .releasing)
            monitor.locked { while !release.withLock({ $0 }) { monitor.wait() } }
        }
        #expect(thread.name == "rt-named-test")
        // The name is set by the thread itself before its body runs.
        while !ran.load(ordering: .acquiring) { usleep(1_000) }
        #expect(try Self.threadNames().contains("rt-named-test"))
        monitor.locked {
            release.withLock { $0 = true }
            monitor.broadcast()
        }
        thread.join()
        #expect(try !Self.threadNames().contains("rt-named-test"))
    }

    @Test func stopEndsALongSleepOnAnotherThread() throws {
        let signal = StopSignal()
        let sleeping = Atomic<Bool>(false)
        let sleptFully = Mutex<Bool?>(nil)
        let thread = try NamedThread.start(name: "rt-stop-test") {
            sleeping.store(true, ordering: .releasing)
            let full = signal.sleep(for: .seconds(60))  // a minute: only stop() ends it in time
            sleptFully.withLock { $0 = full }
        }
        while !sleeping.load(ordering: .acquiring) { usleep(1_000) }
        signal.stop()
        thread.join()
        #expect(sleptFully.withLock { $0 } == false)
        #expect(signal.isStopped)
        #expect(signal.sleep(for: .seconds(60)) == false, "a stopped signal does not sleep")
    }

    @Test func aSleepThatIsNotStoppedLastsItsTime() {
        let signal = StopSignal()
        let start = monotonicNanos()
        #expect(signal.sleep(for: .milliseconds(20)))
        #expect(monotonicNanos() - start >= 20_000_000)
        #expect(!signal.isStopped)
    }

    @Test func longNamesAreCutToFifteenBytesOnACharacterBoundary() {
        #expect(kernelThreadName("analytics-flush-extra") == "analytics-flush")
        #expect(kernelThreadName("门禁门禁门禁") == "门禁门禁门")  // 15 bytes: five 3-byte characters
        #expect(kernelThreadName("门禁门禁门禁x").utf8.count <= 15)
    }

    actor OnExecutor {
        let executor: ThreadExecutor
        nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
        init(_ executor: ThreadExecutor) { self.executor = executor }

        func threadName() throws -> String {
            String(try FileReader.text("/proc/thread-self/comm").dropLast())
        }
    }

    @Test func anActorOnTheExecutorRunsOnItsNamedThread() async throws {
        let executor = try ThreadExecutor(threadName: "rt-executor")
        defer { executor.stop() }
        let actor = OnExecutor(executor)
        #expect(try await actor.threadName() == "rt-executor")
        #expect(executor.name == "rt-executor")
    }
}

@Suite("Clocks")
struct ClockTests {
    @Test func theManualClockMovesOnlyWhenTold() {
        let clock = ManualClock(monotonicNanos: 5_000, wallMicros: 1_000_000)
        #expect(clock.monotonicNanos() == 5_000 && clock.wallMicros() == 1_000_000)
        clock.advance(by: .milliseconds(250))
        #expect(clock.monotonicNanos() == 250_005_000)
        #expect(clock.wallMicros() == 1_250_000)
        clock.setWall(micros: 42)  // a clock step: the monotonic clock stays
        #expect(clock.wallMicros() == 42 && clock.monotonicNanos() == 250_005_000)
        clock.advance(nanoseconds: 1_000)
        #expect(clock.wallMicros() == 43)
    }

    @Test func componentsTakeAnyClock() {
        func deadline(after nanos: UInt64, on clock: some RuntimeClock) -> UInt64 { clock.monotonicNanos() + nanos }
        let manual = ManualClock(monotonicNanos: 10)
        #expect(deadline(after: 5, on: manual) == 15)
        let system = SystemClock()
        let a = system.monotonicNanos()
        #expect(deadline(after: 0, on: system) >= a)
        #expect(system.wallMicros() > 1_577_836_800_000_000)  // after 2020
    }
}
