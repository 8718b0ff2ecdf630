import AccessConfig
import AccessCore
import AccessFleet
import AccessRuntime
import AccessStore
import ArgumentParser
import Glibc

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The site description shared with accessd (TOML).", valueName: "path"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("The database, when no --config is given.", valueName: "path"))
    var db: String?

    @Flag(name: .long, help: "Print machine-readable JSON.")
    var json = false

    @Option(name: .customLong("operator"), help: ArgumentHelp("A note recorded beside your Unix user in the audit log (who you act for); it never replaces the user.", valueName: "name"))
    var operatorName: String?

    /// The configuration file to use: `--config`, else `$ACCESS_CONFIG`, else the system one if present.
    var configPath: String? {
        if let config { return config }
        if db != nil { return nil }
        if let env = getenv("ACCESS_CONFIG") { return String(cString: env) }
        return access("/etc/accessd/accessd.toml", R_OK) == 0 ? "/etc/accessd/accessd.toml" : nil
    }

    /// Who runs this command: the Unix user of the process's real uid (never an environment
    /// variable: those are the caller's to set), with `--operator` as a note.
    func operatorIdentity() throws -> OperatorIdentity {
        do {
            return OperatorIdentity(user: try UnixUser.current().name, note: operatorName)
        } catch {
            throw CLIError("cannot name the user running accessctl: \(error)")
        }
    }
}

/// A failure of the command line itself, e.g. a missing database.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The open database and the rules of the site, for one command.
final class Site {
    let db: AccessDatabase
    let rules: SiteRules
    /// Who runs this command (the Unix user, and the `--operator` note).
    let operatorIdentity: OperatorIdentity
    /// The audit log's form of `operatorIdentity`, which roster changes record.
    var operatorName: String { operatorIdentity.recorded }
    /// The name sent to accessd with a door or fence command: accessd records the user the kernel
    /// names and keeps this as a note when it differs.
    var typedOperator: String { operatorIdentity.note ?? operatorIdentity.user }
    let json: Bool
    /// accessd's control socket, from the configuration.
    let controlSocket: String?
    /// `[fleet]`: roster commands publish change sets to the community instead of writing here.
    let fleet: SiteConfig.Fleet?
    /// The property office: `db` is its replica of the roster, brought up to date before each command.
    let isOffice: Bool
    /// The PIN key's file (the office writes the community's key there).
    let pinKeyPath: String?
    var zone: ZoneRules { rules.zone }

    init(db: AccessDatabase, rules: SiteRules, operatorIdentity: OperatorIdentity, json: Bool, controlSocket: String? = nil,
         fleet: SiteConfig.Fleet? = nil, isOffice: Bool = false, pinKeyPath: String? = nil) {
        self.pinKeyPath = pinKeyPath
        self.db = db
        self.rules = rules
        self.operatorIdentity = operatorIdentity
        self.json = json
        self.controlSocket = controlSocket
        self.fleet = fleet
        self.isOffice = isOffice
    }

    /// Runs a roster command. Without `[fleet]` it writes this database. With it, the command
    /// runs on the replica brought up to the community's latest change set, and its changes are
    /// published as one change set that returns once the cluster has stored it (another
    /// operator's change that came first is applied below it and the command re-checked). On a
    /// controller, accessd applies it; this waits up to 3 s for that, so a `check` right after
    /// sees it.
    func changeRoster<T>(_ body: (AccessDatabase) throws -> T) throws -> T {
        guard let fleet else { return try body(db) }
        let connection = try NatsConnection(FleetClient.options(fleet, name: "accessctl " + operatorName))
        defer { connection.close() }
        let publisher = RosterPublisher(connection: connection, names: FleetNames(community: fleet.community), replica: db, applyLocally: isOffice)
        let names = FleetNames(community: fleet.community)
        // The replica signs visitor passes with the community's secret (retried while the cluster
        // is between leaders, like the publish itself).
        if isOffice {
            try publisher.ensureStreams(replicas: fleet.replicas)
            let secret = try RosterPublisher.retryingTransient {
                try FleetSecrets.ensureVisitorPassSecret(on: connection, names: names, replicas: fleet.replicas, proposal: try db.passSecretHex())
            }
            if secret != (try db.passSecretHex()) { try db.setPassSecret(hex: secret) }
        } else if let secret = try RosterPublisher.retryingTransient({ try FleetSecrets.visitorPassSecret(on: connection, names: names) }),
                  secret != (try db.passSecretHex()) {
            try db.setPassSecret(hex: secret)
        }
        // PINs travel as keyed hashes under the community's PIN key: the office proposes its own
        // and keeps the community's in its key file; a controller's accessctl uses it as taken.
        if isOffice, let key = db.pinKey {
            let hex = try RosterPublisher.retryingTransient {
                try FleetSecrets.ensurePinKey(on: connection, names: names, replicas: fleet.replicas, proposal: key.hex)
            }
            if let community = Hex.decode(hex.lowercased()).flatMap(PinKey.init(bytes:)), community != key {
                if let pinKeyPath { try SecretFile.write(community.bytes, to: pinKeyPath, replacing: true) }
                db.pinKey = community
            }
        } else if let hex = try RosterPublisher.retryingTransient({ try FleetSecrets.pinKey(on: connection, names: names) }),
                  let community = Hex.decode(hex.lowercased()).flatMap(PinKey.init(bytes:)) {
            db.pinKey = community
        }
        let words = CommandLine.arguments.dropFirst().prefix { !$0.hasPrefix("-") }.prefix(2)
        let origin = ChangeSet.Origin(user: operatorName, host: Self.hostName(), command: words.joined(separator: " "))
        let (result, sequence) = try publisher.change(origin: origin) { try body($0) }
        guard let sequence else { return result }
        Console.current.published.value = sequence
        // The office keeps the roster stream bounded: past the threshold, a snapshot replaces
        // all but the last change sets (a failure here leaves the change published; next time).
        if isOffice, let info = try? connection.streamInfo(names.rosterStream), info.messages > RosterSnapshots.automaticThreshold {
            do {
                let done = try RosterSnapshots(connection: connection, names: names).compact(replica: db, origin: origin, replicas: fleet.replicas)
                Say.warn("accessctl: the roster stream was compacted: snapshot at sequence \(done.sequence), change sets from \(done.firstKept) kept")
            } catch {
                Say.warn("accessctl: the roster stream could not be compacted (it will be tried again): \(error)")
            }
        }
        if !isOffice {
            let deadline = ContinuousClock.now + .seconds(3)
            while try db.fleetSequence() < sequence, ContinuousClock.now < deadline { usleep(20_000) }
            if try db.fleetSequence() < sequence {
                Say.warn("accessctl: change set \(sequence) is stored by the fleet; accessd has not applied it here yet (is it running?)")
            }
        }
        return result
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func open(_ options: GlobalOptions) throws -> Site {
        if let path = options.configPath {
            let config = try SiteConfig.load(path: path)
            let db = try AccessDatabase(path: config.databasePath, pinKey: try pinKey(config.pinKeyPath))
            if !config.isOffice { try db.saveSite(config.rules) }
            return Site(db: db, rules: config.rules, operatorIdentity: try options.operatorIdentity(), json: options.json,
                        controlSocket: config.controlSocket, fleet: config.fleet, isOffice: config.isOffice, pinKeyPath: config.pinKeyPath)
        }
        guard let path = options.db else {
            throw CLIError("no database: give --config PATH (the accessd configuration) or --db PATH")
        }
        let db = try AccessDatabase(path: path, pinKey: try pinKey(SiteConfig.defaultPinKeyPath(database: path)))
        let rules = try db.loadSite() ?? SiteRules(zone: ZoneRules(identifier: "Asia/Shanghai") ?? .fixed(offsetSeconds: 28_800), portals: [])
        return Site(db: db, rules: rules, operatorIdentity: try options.operatorIdentity(), json: options.json)
    }

    /// The site's PIN key from `path`, made there (mode 0640) when there is none yet: PINs are
    /// stored and looked up as keyed hashes under it.
    static func pinKey(_ path: String) throws -> PinKey {
        let bytes = try SecretFile.loadOrCreateKey(path, bytes: PinKey.byteCount)
        guard let key = PinKey(bytes: bytes) else { throw CLIError("\(path): is not a \(PinKey.byteCount)-byte PIN key") }
        return key
    }

    /// Parses a date or date-time argument in the site's zone.
    func instant(_ text: String, option: String, until: Bool = false) throws -> UnixSeconds {
        guard let value = ISO8601.parse(text, zone: zone, dateOnly: until ? .endOfDay : .startOfDay) else {
            throw CLIError("\(option): \"\(text)\" is not a date (YYYY-MM-DD) or a date-time (2026-12-31T18:00, optionally with +08:00)")
        }
        return value
    }

    func format(_ instant: UnixSeconds?) -> String {
        instant.map { ISO8601.format($0, zone: zone) } ?? "-"
    }

    func formatBound(_ instant: UnixSeconds?, until: Bool) -> String {
        instant.map { ISO8601.formatBound($0, zone: zone, isUntil: until) } ?? ""
    }

    static func now() -> UnixSeconds { AccessDatabase.nowMicros() / 1_000_000 }
}
