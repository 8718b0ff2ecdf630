/// How a site's readers guard against guessing, bounces and half-done card+PIN entries
/// (`[gate]` in the site description).
public struct GateSettings: Sendable, Equatable {
    /// Card and PIN: how long after the card its holder's PIN may come.
    public var pinAfterCardSeconds: Double
    /// The same credential at the same reader within this long of its decision is the same read
    /// (a card bouncing, a plate camera's burst): no second decision, event or visitor use. 0: off.
    public var repeatReadSeconds: Double
    /// Failed attempts (unknown credentials, wrong PINs) at one reader within
    /// `wrongAttemptWindowSeconds` that lock it. 0: never locked.
    public var wrongAttemptLimit: Int
    public var wrongAttemptWindowSeconds: Double
    /// How long a locked reader refuses everything.
    public var lockoutSeconds: Double

    public init(pinAfterCardSeconds: Double = 15, repeatReadSeconds: Double = 3, wrongAttemptLimit: Int = 5,
                wrongAttemptWindowSeconds: Double = 60, lockoutSeconds: Double = 180) {
        self.pinAfterCardSeconds = pinAfterCardSeconds
        self.repeatReadSeconds = repeatReadSeconds
        self.wrongAttemptLimit = wrongAttemptLimit
        self.wrongAttemptWindowSeconds = wrongAttemptWindowSeconds
        self.lockoutSeconds = lockoutSeconds
    }
}

/// One reader's guard: the wrong-attempt count that locks it (GB 50396: an alarm after at most 5
/// wrong attempts), the lockout, and the last read for repeat suppression. A value the site owns,
/// stepped with the monotonic time; no clock of its own.
public struct ReaderGuard: Sendable, Equatable {
    public enum Verdict: Sendable, Equatable {
        /// Decide it.
        case decide
        /// The same credential again within the repeat window: nothing happens.
        case repeatRead
        /// The reader is locked out: refused with `reader_locked`.
        case locked
    }

    public let settings: GateSettings
    /// When each failed attempt of the current window was made.
    private var failures: [MonotonicNanos] = []
    /// The reader refuses everything until then.
    public private(set) var lockedUntil: MonotonicNanos?
    private var lastRead: (credential: PresentedCredential, at: MonotonicNanos)?

    public init(settings: GateSettings) { self.settings = settings }

    public static func == (a: ReaderGuard, b: ReaderGuard) -> Bool {
        a.settings == b.settings && a.failures == b.failures && a.lockedUntil == b.lockedUntil
            && a.lastRead?.credential == b.lastRead?.credential && a.lastRead?.at == b.lastRead?.at
    }

    /// What to do with `credential` read at `now`. PINs are typed on purpose and never repeats.
    public mutating func admit(_ credential: PresentedCredential, at now: MonotonicNanos) -> Verdict {
        if let last = lastRead, last.credential == credential, credential.kind != .pin,
           now &- last.at < Self.nanos(settings.repeatReadSeconds) {
            return .repeatRead
        }
        lastRead = (credential, now)
        if let until = lockedUntil {
            if now < until { return .locked }
            lockedUntil = nil
        }
        return .decide
    }

    /// The outcome of a decided attempt; true when this failure locks the reader.
    public mutating func record(_ reason: Reason, at now: MonotonicNanos) -> Bool {
        switch reason {
        case .granted:
            // The count is of failures since the last success; an accepted card awaiting its PIN
            // is no success, or a stolen card would let its PIN be guessed for ever.
            failures.removeAll()
            return false
        case .unknownCredential, .wrongPin:
            guard settings.wrongAttemptLimit > 0 else { return false }
            let window = Self.nanos(settings.wrongAttemptWindowSeconds)
            failures.removeAll { now &- $0 >= window }
            failures.append(now)
            guard failures.count >= settings.wrongAttemptLimit else { return false }
            failures.removeAll()
            lockedUntil = now + Self.nanos(settings.lockoutSeconds)
            return true
        default:
            return false
        }
    }

    /// Failed attempts in the current window (for tests and status).
    public var failedAttempts: Int { failures.count }

    static func nanos(_ seconds: Double) -> UInt64 { UInt64(max(0, seconds) * 1e9) }
}
