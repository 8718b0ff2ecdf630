import AccessConfig
import AccessCore
import AccessRuntime
import AccessStore
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// accessd's member of the fleet: on a thread of its own, it follows the community's roster
/// stream into the controller's database, hands every applied change set to the controller's
/// in-memory roster, and tells the fleet what it has applied. It also takes the community's
/// visitor-pass secret, and counts the visitor-pass uses spent at the other controllers' gates
/// (their granted entries in the events stream). The gate never waits on it: a partitioned
/// controller goes on deciding from its replica and says so (`state`).
///
/// Visitor-pass uses across the fleet: a use spent at one gate is counted at every other within
/// about a second while they are connected. A gate cut off from the cluster still decides, on
/// the uses it has seen, so a pass with `r` uses left may be used up to `r` times on each side
/// of a partition: at most (k − 1) × r uses too many with k controllers cut off from each
/// other. Once they are joined again every gate counts every use.
public final class FleetClient: Sendable {
    /// What `accessctl status`, `/healthz` and the metrics say of the fleet.
    public struct State: Sendable, Equatable {
        public var connected = false
        /// The community sequence applied here.
        public var applied: UInt64 = 0
        public var digest = ""
        /// The stream's last sequence when last seen; `lag` is how far behind this controller is.
        public var streamLast: UInt64 = 0
        public var lag: UInt64 { streamLast > applied ? streamLast - applied : 0 }
        /// Set while a change set cannot be read: the controller decides on its last good roster.
        public var stuck: String?
        public var lastError: String?
        public var changeSetsApplied = 0
    }

    let fleet: SiteConfig.Fleet
    let controllerID: String
    let databasePath: String
    let pinKeyFile: String?
    let logger: Logger
    let hooks: Hooks
    private let stopSignal = StopSignal()
    private let stateBox = Mutex(State())
    private let threadBox = Mutex<NamedThread?>(nil)

    public var state: State { stateBox.withLock { $0 } }

    /// What the controller does with what the fleet brings besides change sets.
    public struct Hooks: Sendable {
        /// Uses of visitor passes spent at other gates: run `commit` (it writes them and the
        /// events cursor to the database) and count them in memory, atomically with respect to
        /// a roster reload.
        public var passUses: @Sendable (_ passIDs: [String], _ commit: () throws -> Void) throws -> Void
        /// Change sets from the roster stream: run `commit` (it writes them to the database and
        /// returns what it applied) and apply them to the roster in memory, with the roster held
        /// from before the commit until they are there.
        public var changeRoster: @Sendable (_ commit: () throws -> [AccessDatabase.AppliedChangeSet]) throws -> Void
        /// The community's visitor-pass secret was written to the database: use it.
        public var passSecretChanged: @Sendable () -> Void
        /// The community's PIN key was written to the key file: hash typed PINs with it.
        public var pinKeyChanged: @Sendable (PinKey) -> Void

        public init(changeRoster: @escaping @Sendable (() throws -> [AccessDatabase.AppliedChangeSet]) throws -> Void = { commit in _ = try commit() },
                    passUses: @escaping @Sendable ([String], () throws -> Void) throws -> Void = { _, commit in try commit() },
                    passSecretChanged: @escaping @Sendable () -> Void = {}, pinKeyChanged: @escaping @Sendable (PinKey) -> Void = { _ in }) {
            self.changeRoster = changeRoster
            self.passUses = passUses
            self.passSecretChanged = passSecretChanged
            self.pinKeyChanged = pinKeyChanged
        }
    }

    /// `pinKeyFile`: where the community's PIN key is kept once taken from the fleet (nil: it is
    /// not taken, and format-1 change sets with PINs cannot be applied).
    public init(fleet: SiteConfig.Fleet, controllerID: String, databasePath: String, pinKeyFile: String? = nil, logger: Logger,
                hooks: Hooks = Hooks()) {
        self.fleet = fleet
        self.controllerID = controllerID
        self.databasePath = databasePath
        self.pinKeyFile = pinKeyFile
        self.logger = logger
        self.hooks = hooks
    }

    public func start() throws {
        let thread = try NamedThread.start(name: "fleet") { [self] in run() }
        threadBox.withLock { $0 = thread }
    }

    /// Stops following; returns once the thread has ended (within about a second).
    public func stop() {
        stopSignal.stop()
        let thread = threadBox.withLock { t -> NamedThread? in defer { t = nil }; return t }
        thread?.join()
    }

    /// Connection options from `[fleet]`.
    public static func options(_ fleet: SiteConfig.Fleet, name: String) -> FleetConnectionOptions {
        FleetConnectionOptions(servers: fleet.servers, name: name, user: fleet.user, passwordFile: fleet.passwordFile,
                               credsFile: fleet.credsFile, tlsCAFile: fleet.tlsCAFile)
    }

    private func run() {
        let names = FleetNames(community: fleet.community)
        var backoff: Duration = .milliseconds(250)
        while !stopSignal.isStopped {
            do {
                let db = try AccessDatabase(path: databasePath, create: false)
                if let pinKeyFile { db.pinKey = PinKey(bytes: try SecretFile.readKey(pinKeyFile, bytes: PinKey.byteCount)) }
                try db.setBusyTimeout(milliseconds: 5_000)
                stateBox.withLock { $0.applied = (try? db.fleetSequence()) ?? 0; $0.digest = (try? db.fleetDigest().hex) ?? "" }
                let connection = try NatsConnection(Self.options(fleet, name: "accessd " + controllerID))
                defer { connection.close() }
                stateBox.withLock { $0.connected = true; $0.lastError = nil }
                logger.info("fleet connected", metadata: ["community": "\(fleet.community)"])
                backoff = .milliseconds(250)
                try follow(connection, names, db)
            } catch {
                stateBox.withLock { $0.connected = false; $0.lastError = "\(error)" }
                logger.warning("fleet unavailable; deciding from the local roster", metadata: ["error": "\(error)"])
                stopSignal.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }

    private func follow(_ connection: NatsConnection, _ names: FleetNames, _ db: AccessDatabase) throws {
        let follower = RosterFollower(connection: connection, names: names, db: db)
        var status = try? KeyValueBucket.bind(names.statusBucket, on: connection)
        var nextReport = ContinuousClock.now
        var stuckAt: UInt64?
        var uses: StreamReader?
        var secretTaken = false
        var pinKeyTaken = pinKeyFile == nil
        defer { uses?.close() }
        while !stopSignal.isStopped {
            stateBox.withLock { $0.connected = connection.isConnected }
            if ContinuousClock.now >= nextReport {
                nextReport = ContinuousClock.now + .seconds(2)
                if status == nil { status = try? KeyValueBucket.bind(names.statusBucket, on: connection) }  // the office makes it
                report(status, connection, names)
                if !secretTaken { secretTaken = takeSecret(connection, names, db) }
                if !pinKeyTaken { pinKeyTaken = takePinKey(connection, names, db) }
                if uses == nil, (try? connection.streamInfo(names.eventsStream)) != nil {
                    uses = connection.read(stream: names.eventsStream, filter: names.accessEventsFilter,
                                           fromSequence: (try db.fleetEventsSequence()) + 1)
                }
            }
            if let reader = uses {
                do {
                    try countPassUses(reader, db)
                } catch let error as FleetError {
                    logger.warning("visitor-pass uses at other gates not read for now", metadata: ["error": "\(error)"])
                    reader.close()
                    uses = nil
                }
            }
            if stuckAt != nil {
                stopSignal.sleep(for: .seconds(1))  // an upgrade (restart) is what moves it on
                continue
            }
            do {
                // The first change set is waited for with nothing held (the event writer must
                // not wait on an idle follower, nor the roster on the network). What has arrived
                // behind it is applied in one transaction (one fsync) of up to 200 ms, so a
                // controller far behind catches up at the disk's pace, not one commit per change
                // set. The controller holds its roster from the first commit until the batch is
                // in memory.
                guard try follower.waitForNext(timeout: .milliseconds(uses == nil ? 500 : 100)) else { continue }
                var steps: [RosterFollower.Step] = []
                // A failure in the batch rolls the batch back; the first step is committed and
                // still goes to memory before the failure is handled.
                var batchFailure: Error?
                try hooks.changeRoster {
                    guard let first = try follower.next(timeout: .milliseconds(100)) else { return [] }
                    steps = [first]
                    if case .applied(let applied, _) = first, applied.replacedWhole {
                        // a snapshot goes alone
                    } else {
                        let batchEnd = ContinuousClock.now + .milliseconds(200)
                        var more: [RosterFollower.Step] = []
                        do {
                            try db.transaction {
                                while more.count < 1_000, ContinuousClock.now < batchEnd, let step = try follower.next(timeout: .milliseconds(1)) {
                                    more.append(step)
                                    if case .applied(let applied, _) = step, applied.replacedWhole { break }
                                }
                            }
                            steps += more
                        } catch {
                            batchFailure = error
                        }
                    }
                    return steps.compactMap { if case .applied(let applied, _) = $0 { applied } else { nil } }
                }
                var appliedCount = 0
                for step in steps {
                    switch step {
                    case .applied(let applied, let set):
                        appliedCount += 1
                        stateBox.withLock {
                            $0.applied = applied.sequence
                            $0.digest = applied.digest.hex
                            $0.changeSetsApplied += 1
                            $0.streamLast = max($0.streamLast, applied.sequence)
                        }
                        if steps.count == 1 {
                            logger.info("roster change set applied", metadata: [
                                "sequence": "\(applied.sequence)", "changes": "\(set.changes.count)", "by": "\(set.origin.user)@\(set.origin.host)",
                            ])
                        }
                    case .refused(let sequence, let id, let reason):
                        stateBox.withLock { $0.applied = sequence }
                        logger.error("roster change set refused: it does not fit the roster", metadata: ["sequence": "\(sequence)", "id": "\(id)", "reason": "\(reason)"])
                    case .dropped(let id, let reason):
                        logger.warning("incomplete roster change set dropped", metadata: ["id": "\(id)", "reason": "\(reason)"])
                    case .partial, .alreadyApplied:
                        continue
                    }
                }
                if appliedCount > 1 {
                    logger.info("roster change sets applied", metadata: ["count": "\(appliedCount)", "through": "\(state.applied)"])
                }
                if appliedCount > 0 { report(status, connection, names) }
                if let batchFailure { throw batchFailure }
            } catch let stuck as RosterFollower.Stuck {
                stuckAt = stuck.sequence
                stateBox.withLock { $0.stuck = stuck.description }
                logger.critical("roster stream stuck; deciding from the last good roster", metadata: ["problem": "\(stuck)"])
                report(status, connection, names)
            }
        }
    }

    /// Takes the community's visitor-pass secret into the database and the controller; true once
    /// done (or when it is already the one in use).
    private func takeSecret(_ connection: NatsConnection, _ names: FleetNames, _ db: AccessDatabase) -> Bool {
        do {
            guard let secret = try FleetSecrets.visitorPassSecret(on: connection, names: names) else { return false }
            if try db.passSecretHex() != secret.lowercased() {
                try db.setPassSecret(hex: secret)
                hooks.passSecretChanged()
                logger.notice("visitor passes are now checked with the community's secret")
            }
            return true
        } catch {
            logger.error("the community's visitor-pass secret cannot be taken; passes are checked with this controller's own",
                         metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Takes the community's PIN key into the key file, this connection and the controller; true
    /// once done (or when it is the key in use already). Until then PINs added at the office,
    /// hashed with the community's key, are not found here.
    private func takePinKey(_ connection: NatsConnection, _ names: FleetNames, _ db: AccessDatabase) -> Bool {
        guard let pinKeyFile else { return true }
        do {
            guard let hex = try FleetSecrets.pinKey(on: connection, names: names) else { return false }
            guard let key = Hex.decode(hex.lowercased()).flatMap(PinKey.init(bytes:)) else {
                throw FleetSyncError.conflict("the community's PIN key is not \(PinKey.byteCount) bytes of hex")
            }
            if db.pinKey != key {
                try SecretFile.write(key.bytes, to: pinKeyFile, replacing: true)
                db.pinKey = key
                hooks.pinKeyChanged(key)
                logger.notice("PINs are now checked with the community's PIN key")
            }
            return true
        } catch {
            logger.error("the community's PIN key cannot be taken; PINs are checked with this controller's own",
                         metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Counts the visitor-pass uses in the other controllers' access events that have arrived
    /// (a granted entry on a pass: what `Decision.consumesVisitorUse` means), a batch at a time.
    private func countPassUses(_ reader: StreamReader, _ db: AccessDatabase) throws {
        var passIDs: [String] = []
        var last: UInt64?
        for _ in 0..<256 {
            guard let message = try reader.next(timeout: .milliseconds(1)) else { break }
            last = message.sequence
            let tokens = message.subject.split(separator: ".")
            guard tokens.count == 5, tokens[3] != controllerID,
                  let event = JSON.parse(String(decoding: message.payload, as: UTF8.self)),
                  event["granted"] == .bool(true), event["direction"]?.stringValue != "out",
                  let pass = event["visitor_pass"]?.stringValue else { continue }
            passIDs.append(pass)
        }
        guard let last else { return }
        try hooks.passUses(passIDs) { try db.recordFleetPassUses(passIDs, through: last) }
        if !passIDs.isEmpty {
            logger.info("visitor-pass uses at other gates counted", metadata: ["uses": "\(passIDs.count)", "through": "\(last)"])
        }
    }

    /// Puts this controller's line in the status bucket (best effort: the gate does not care).
    private func report(_ bucket: KeyValueBucket?, _ connection: NatsConnection, _ names: FleetNames) {
        if let last = try? connection.streamInfo(names.rosterStream).lastSequence {
            stateBox.withLock { $0.streamLast = last }
        }
        guard let bucket else { return }
        let s = state
        let line = ControllerStatus(id: controllerID, applied: s.applied, digest: s.digest, stuck: s.stuck,
                                    time: AccessDatabase.nowMicros() / 1_000_000)
        _ = try? bucket.put(controllerID, Array(line.json().rendered().utf8))
    }
}

/// One controller's line in the community's status bucket.
public struct ControllerStatus: Sendable, Equatable {
    public var id: String
    public var applied: UInt64
    public var digest: String
    public var stuck: String?
    /// When it was written (Unix seconds).
    public var time: Int64

    public init(id: String, applied: UInt64, digest: String, stuck: String?, time: Int64) {
        self.id = id
        self.applied = applied
        self.digest = digest
        self.stuck = stuck
        self.time = time
    }

    public func json() -> JSON {
        .object([("id", .string(id)), ("applied", .int(Int64(applied))), ("digest", .string(digest)),
                 ("stuck", .string(stuck)), ("time", .int(time))])
    }

    public init?(json: JSON) {
        guard let id = json["id"]?.stringValue, let applied = json["applied"]?.intValue, let time = json["time"]?.intValue else { return nil }
        self.init(id: id, applied: UInt64(max(0, applied)), digest: json["digest"]?.stringValue ?? "", stuck: json["stuck"]?.stringValue, time: time)
    }
}
