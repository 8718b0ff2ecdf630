import AccessCore
import AccessRuntime
import CSQLite
import Glibc

/// The controller's database: roster, event log, audit log and runtime state, in one SQLite
/// file in WAL mode with `synchronous=FULL`, so a committed write survives a power cut.
///
/// Opening never changes a file it does not recognise: a damaged file, another program's
/// database, or one written by a newer schema is refused with a clear error.
public final class AccessDatabase {
    /// `PRAGMA application_id`: "CAcc".
    public static let applicationID: Int64 = 0x4341_6363
    /// The newest schema this build knows.
    public static var schemaVersion: Int { Migrations.all.count }

    /// Internal: every statement is written in this module; other modules call its methods.
    let connection: SQLiteConnection
    /// The file's path.
    public var path: String { connection.path }

    /// The site's PIN key: PINs are stored, looked up and sent to the fleet as their keyed hash
    /// under it. Nil: PINs can be neither added nor decided (a database alone yields no PIN).
    public var pinKey: PinKey?

    /// Opens the database at `path`, creating and migrating it when it is new or older. A new
    /// file is made mode 0640 (0660 under the unit's umask): it holds the visitor-pass secret.
    /// `pinKey` is needed to migrate a database whose PINs are still stored as typed.
    public init(path: String, create: Bool = true, pinKey: PinKey? = nil) throws(StoreError) {
        if create { try Self.makeParentDirectory(of: path) }
        if !create, access(path, F_OK) != 0 {
            throw .sqlite(operation: "open \(path)", code: SQLITE_CANTOPEN, message: "no such file")
        }
        if create {
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o660)
            if fd >= 0 { close(fd) }
        }
        self.pinKey = pinKey
        let connection = try SQLiteConnection(path: path, create: create)
        self.connection = connection
        try checkIdentity()
        try connection.execute("PRAGMA foreign_keys = ON")
        if try connection.scalarText("PRAGMA journal_mode = WAL") != "wal" {
            throw .sqlite(operation: "PRAGMA journal_mode = WAL", code: SQLITE_ERROR, message: "WAL mode is not available on this file system")
        }
        try connection.execute("PRAGMA synchronous = FULL")
        try migrate()
    }

    static func makeParentDirectory(of path: String) throws(StoreError) {
        do {
            try Directories.makeParent(of: path)
        } catch {
            throw .sqlite(operation: error.operation, code: SQLITE_CANTOPEN, message: error.reason)
        }
    }

    /// Reads the header fields only; nothing is written until the file is known to be ours.
    private func checkIdentity() throws(StoreError) {
        let appID: Int64
        let version: Int64
        let tables: Int64
        do {
            appID = try connection.scalarInt("PRAGMA application_id") ?? 0
            version = try connection.scalarInt("PRAGMA user_version") ?? 0
            tables = try connection.scalarInt("SELECT count(*) FROM sqlite_master") ?? 0
        } catch let StoreError.sqlite(_, code, message) {
            throw .notADatabase(path: path, detail: "\(message), SQLite error \(code)")
        }
        if appID == 0 && version == 0 {
            if tables > 0 { throw .foreignDatabase(path: path) }
            return  // a new, empty file
        }
        guard appID == Self.applicationID else { throw .foreignDatabase(path: path) }
        if version > Int64(Self.schemaVersion) {
            throw .newerSchema(path: path, found: Int(version), supported: Self.schemaVersion)
        }
    }

    private func migrate() throws(StoreError) {
        let current = Int(try connection.scalarInt("PRAGMA user_version") ?? 0)
        guard current < Self.schemaVersion else { return }
        let hashesPins = current > 0 && current <= Migrations.pinHashStep
        if hashesPins {
            let typed = Int(try connection.scalarInt("SELECT count(*) FROM credentials WHERE kind = 'pin'") ?? 0)
            if typed > 0 && pinKey == nil { throw .pinKeyNeeded(path: path, pins: typed) }
            // The digits are overwritten where they stood, not left in freed pages of the file.
            try connection.execute("PRAGMA secure_delete = ON")
        }
        defer { if hashesPins { try? connection.execute("PRAGMA secure_delete = OFF") } }
        do {
            try connection.transaction {
                for (index, step) in Migrations.all.enumerated() where index >= current {
                    if index == Migrations.pinHashStep { try hashTypedPins() }
                    try connection.execute(step)
                }
                try connection.execute("PRAGMA application_id = \(Self.applicationID)")
                try connection.execute("PRAGMA user_version = \(Self.schemaVersion)")
                if current == 0 {
                    try connection.run("INSERT INTO settings (key, value) VALUES ('pass_secret', ?)", [.text(Hex.random(bytes: 32))])
                }
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw .sqlite(operation: "migrate", code: SQLITE_ERROR, message: "\(error)")
        }
        // The pages that held the digits are written back to the file and the WAL emptied, so a
        // copy of the file alone holds hashes only.
        if hashesPins { _ = try connection.scalarInt("PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    /// Schema 9: every PIN stored as typed becomes its keyed hash, in the migration's transaction,
    /// with one audit record (the count only). The roster digest the fleet keeps is dropped: it
    /// is recomputed from the hashed records when the next change set is applied.
    private func hashTypedPins() throws {
        let s = try connection.statement("SELECT value FROM credentials WHERE kind = 'pin'")
        var typed: [String] = []
        while try s.step() { typed.append(s.text(0)) }
        s.reset()
        var hashed = 0
        for value in typed where !PinDigest.isStored(value) {
            guard let pinKey else { throw StoreError.pinKeyNeeded(path: path, pins: typed.count) }
            try connection.run("UPDATE credentials SET value = ? WHERE kind = 'pin' AND value = ?", [.text(pinKey.hash(value)), .text(value)])
            hashed += 1
        }
        guard hashed > 0 else { return }
        try connection.run("DELETE FROM settings WHERE key = 'fleet_digest'")
        try appendAudit(operator: "accessd-migration", action: "pin.hash", target: "\(hashed) PIN(s)", before: nil,
                        after: .object([("pins", .int(Int64(hashed))), ("stored_as", .string("hmac-sha256"))]))
        try bumpRosterGeneration()
    }

    /// Runs `body` in one write transaction (`BEGIN IMMEDIATE`): every store call in it commits
    /// together or not at all. Nested calls become savepoints.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try connection.transaction(immediate: true, body)
    }

    /// How long a statement waits for another connection's write lock before it fails.
    public func setBusyTimeout(milliseconds: Int) throws(StoreError) {
        try connection.execute("PRAGMA busy_timeout = \(max(0, milliseconds))")
    }

    /// Frees the connection's cached pages that nothing holds. After a bulk read (a roster load
    /// reads every row) they would stay resident until evicted, on every connection that loads.
    public func releaseMemory() {
        connection.releaseCache()
    }

    /// Writes a consistent copy of the whole database to `path`, which must not exist, while
    /// other connections go on writing (`VACUUM INTO`: one read transaction). Copying the file
    /// itself would miss what is still in the WAL. The copy gets this file's permissions (it
    /// holds the same secrets; accessd refuses a database others may read).
    public func copy(to path: String) throws(StoreError) {
        var info = stat()
        let mode = stat(self.path, &info) == 0 ? info.st_mode & 0o660 : 0o600
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else {
            let code = errno
            throw .sqlite(operation: "create \(path) for a copy", code: SQLITE_CANTOPEN, message: "\(String(cString: strerror(code))) (errno \(code))")
        }
        close(fd)
        do {
            let s = try connection.statement("VACUUM INTO ?")
            try s.bind([.text(path)])
            _ = try s.step()
        } catch {
            unlink(path)  // nothing half-written is left
            throw error
        }
    }

    /// Runs SQLite's full consistency check.
    public func integrityCheck() throws(StoreError) {
        let s = try connection.statement("PRAGMA integrity_check")
        var problems: [String] = []
        while try s.step() { problems.append(s.text(0)) }
        guard problems == ["ok"] else { throw .corrupt(path: path, detail: problems.prefix(5).joined(separator: "; ")) }
    }

    /// The tables `accessctl db info` reports, in its order.
    public static let countedTables = ["houses", "people", "credentials", "visitor_passes", "groups", "schedules", "events", "audit"]

    /// Rows in each of `countedTables`, in that order, read in one transaction.
    public func tableCounts() throws -> [(table: String, rows: Int64)] {
        try connection.transaction(immediate: false) {
            try Self.countedTables.map { table in (table, try connection.scalarInt("SELECT count(*) FROM \(table)") ?? 0) }
        }
    }

    /// Changes whenever another connection commits (`PRAGMA data_version`).
    public func dataVersion() throws(StoreError) -> Int64 {
        try connection.scalarInt("PRAGMA data_version") ?? 0
    }

    /// Bumped by every roster change; the controller reloads its index when it moves.
    public func rosterGeneration() throws(StoreError) -> Int64 {
        Int64(try connection.scalarText("SELECT value FROM settings WHERE key = 'roster_generation'") ?? "0") ?? 0
    }

    func bumpRosterGeneration() throws(StoreError) {
        try connection.run("""
            INSERT INTO settings (key, value) VALUES ('roster_generation', '1')
            ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1
            """)
    }

    /// The secret that signs visitor passes; made at random when the database is created.
    public func passSecret() throws(StoreError) -> [UInt8] {
        let hex = try connection.scalarText("SELECT value FROM settings WHERE key = 'pass_secret'") ?? ""
        return Hex.decode(hex) ?? []
    }

    /// The current wall-clock time in microseconds.
    public static func nowMicros() -> Int64 { wallClockMicros() }
}

/// Versioned schema steps; step N takes the schema from version N to N + 1. Never edit a
/// released step: add one.
enum Migrations {
    static let all: [String] = [v1, v2, v3Outbox, v4Analytics, v5TokenScopes, v6AuditNote, v7HashChains, v8DuressPins, v9PinHashes, v10Parking]

    /// The index of `v9PinHashes`: before it runs, the PINs stored as typed are hashed with the
    /// PIN key (`hashTypedPins`, in the same transaction).
    static let pinHashStep = 8

    /// PINs are stored as HMAC-SHA256 under the site's PIN key (64 lowercase hex digits), never as
    /// typed: the database refuses anything else, whoever writes it.
    static let v9PinHashes = """
        CREATE TRIGGER credentials_pin_hashed_insert BEFORE INSERT ON credentials
        WHEN NEW.kind = 'pin' AND (length(NEW.value) <> 64 OR NEW.value GLOB '*[^0-9a-f]*')
        BEGIN SELECT RAISE(ABORT, 'credentials.value: a PIN is stored as its keyed hash, never as typed'); END;
        CREATE TRIGGER credentials_pin_hashed_update BEFORE UPDATE OF kind, value ON credentials
        WHEN NEW.kind = 'pin' AND (length(NEW.value) <> 64 OR NEW.value GLOB '*[^0-9a-f]*')
        BEGIN SELECT RAISE(ABORT, 'credentials.value: a PIN is stored as its keyed hash, never as typed'); END;
        """

    /// Parking: each house's spaces (NULL: no limit), and the vehicles the controller counts
    /// inside by key (`house:ID`, `visitors`), kept like the anti-passback ledger.
    static let v10Parking = """
        ALTER TABLE houses ADD COLUMN parking_spaces INTEGER;
        CREATE TABLE parking (
            key TEXT PRIMARY KEY,
            inside INTEGER NOT NULL
        ) WITHOUT ROWID;
        """

    /// Duress PINs: a person's PIN that opens as usual and raises a silent alarm.
    static let v8DuressPins = """
        ALTER TABLE credentials ADD COLUMN duress INTEGER NOT NULL DEFAULT 0 CHECK (duress IN (0, 1) AND (duress = 0 OR kind = 'pin'));
        """

    /// Tokens for the upstream HTTP API: only a SHA-256 of each is kept.
    static let v2 = """
        CREATE TABLE api_tokens (
            name TEXT PRIMARY KEY,
            sha256 TEXT NOT NULL UNIQUE,
            created_us INTEGER NOT NULL,
            created_by TEXT NOT NULL,
            revoked_us INTEGER
        ) WITHOUT ROWID;
        """

    static let v1 = """
        CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

        CREATE TABLE houses (
            id TEXT PRIMARY KEY,
            building TEXT NOT NULL,
            unit TEXT NOT NULL DEFAULT '',
            floor TEXT NOT NULL DEFAULT '',
            room TEXT NOT NULL DEFAULT ''
        ) WITHOUT ROWID;
        CREATE INDEX houses_building ON houses (building);

        CREATE TABLE people (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            phone TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'blacklisted')),
            valid_from INTEGER,
            valid_until INTEGER,
            lives_alone INTEGER NOT NULL DEFAULT 0,
            CHECK (valid_from IS NULL OR valid_until IS NULL OR valid_from < valid_until)
        ) WITHOUT ROWID;

        CREATE TABLE person_houses (
            person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
            house_id TEXT NOT NULL REFERENCES houses (id),
            role TEXT NOT NULL CHECK (role IN ('owner', 'family', 'tenant', 'staff', 'visitor')),
            position INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (person_id, house_id)
        ) WITHOUT ROWID;
        CREATE INDEX person_houses_house ON person_houses (house_id);

        CREATE TABLE credentials (
            kind TEXT NOT NULL CHECK (kind IN ('card', 'pin', 'plate')),
            value TEXT NOT NULL,
            person_id TEXT REFERENCES people (id) ON DELETE CASCADE,
            house_id TEXT REFERENCES houses (id) ON DELETE CASCADE,
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked', 'lost', 'blacklisted')),
            note TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (kind, value),
            CHECK (person_id IS NULL OR house_id IS NULL),
            CHECK (person_id IS NOT NULL OR house_id IS NOT NULL OR status = 'blacklisted')
        ) WITHOUT ROWID;
        CREATE INDEX credentials_person ON credentials (person_id);
        CREATE INDEX credentials_house ON credentials (house_id);

        CREATE TABLE schedules (
            name TEXT PRIMARY KEY,
            segments TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE schedule_dates (
            schedule TEXT NOT NULL REFERENCES schedules (name) ON DELETE CASCADE,
            date TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('holiday', 'exception')),
            segments TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (schedule, date)
        );

        CREATE TABLE groups (
            name TEXT PRIMARY KEY,
            schedule TEXT REFERENCES schedules (name)
        );
        CREATE TABLE group_portals (
            group_name TEXT NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
            portal TEXT NOT NULL,
            PRIMARY KEY (group_name, portal)
        ) WITHOUT ROWID;
        CREATE TABLE person_groups (
            person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
            group_name TEXT NOT NULL REFERENCES groups (name),
            PRIMARY KEY (person_id, group_name)
        ) WITHOUT ROWID;
        CREATE INDEX person_groups_group ON person_groups (group_name);

        CREATE TABLE visitor_passes (
            id TEXT PRIMARY KEY,
            house_id TEXT NOT NULL REFERENCES houses (id),
            visitor_name TEXT NOT NULL,
            phone TEXT NOT NULL DEFAULT '',
            plate TEXT,
            valid_from INTEGER NOT NULL,
            valid_until INTEGER NOT NULL,
            max_uses INTEGER NOT NULL CHECK (max_uses > 0),
            uses INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
            portals TEXT NOT NULL DEFAULT '',
            issued_by TEXT NOT NULL,
            issued_at INTEGER NOT NULL,
            CHECK (valid_from < valid_until)
        );
        CREATE INDEX visitor_passes_house ON visitor_passes (house_id);

        CREATE TABLE portals (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            direction TEXT NOT NULL,
            from_area TEXT NOT NULL,
            to_area TEXT NOT NULL,
            building TEXT NOT NULL DEFAULT '',
            readers TEXT NOT NULL DEFAULT '',
            mode TEXT NOT NULL DEFAULT 'normal' CHECK (mode IN ('normal', 'always-open', 'always-closed'))
        );

        CREATE TABLE events (
            serial INTEGER PRIMARY KEY AUTOINCREMENT,
            time_us INTEGER NOT NULL,
            utc_offset INTEGER NOT NULL,
            type TEXT NOT NULL,
            portal TEXT,
            direction TEXT,
            credential_kind TEXT,
            credential TEXT,
            person_id TEXT,
            house_id TEXT,
            role TEXT,
            granted INTEGER,
            reason TEXT,
            detail TEXT
        );
        CREATE INDEX events_time ON events (time_us);
        CREATE INDEX events_person ON events (person_id, serial) WHERE person_id IS NOT NULL;
        CREATE INDEX events_house ON events (house_id, serial) WHERE house_id IS NOT NULL;

        CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            time_us INTEGER NOT NULL,
            operator TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            before TEXT,
            after TEXT
        );
        CREATE INDEX audit_time ON audit (time_us);

        CREATE TABLE anti_passback (
            subject TEXT PRIMARY KEY,
            area TEXT NOT NULL,
            since INTEGER NOT NULL
        ) WITHOUT ROWID;
        """
}

// MARK: - MQTT outbox (AccessStore/Outbox.swift, AccessUpstream/MQTTEngine.swift)

extension Migrations {
    /// The durable cursor of each outbox: the serial up to which every event has been
    /// acknowledged by the receiver (for MQTT: PUBACK of every message it was published in).
    /// Events after it are (re)published on start. One row per outbox, e.g. `mqtt`.
    static let v3Outbox = """
        CREATE TABLE outbox (
            name TEXT PRIMARY KEY,
            acked_serial INTEGER NOT NULL CHECK (acked_serial >= 0)
        ) WITHOUT ROWID;
        """
}

// MARK: - Analytics state (以房管人 analytics; AccessStore/AnalyticsStore.swift)

extension Migrations {
    /// The analytics' snapshot, so a restart never rescans the log: `serial` (the last event
    /// applied), and one JSON row per person seen (`p:ID`), house with activity (`h:ID`) and
    /// indicator in force (`i:KIND:HOUSE:PERSON`). Written in one transaction with the serial.
    static let v4Analytics = """
        CREATE TABLE analytics_state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID;
        """
}

// MARK: - Token scopes, expiry and last use (AccessStore/APITokens.swift)

extension Migrations {
    /// `scopes`: the token's scopes separated by spaces; NULL for a token made before scopes
    /// existed, which keeps every scope until it is rotated. `expires_us`: refused from then on.
    /// `last_used_us`: when the API last accepted it (kept to the minute).
    static let v5TokenScopes = """
        ALTER TABLE api_tokens ADD COLUMN scopes TEXT;
        ALTER TABLE api_tokens ADD COLUMN expires_us INTEGER;
        ALTER TABLE api_tokens ADD COLUMN last_used_us INTEGER;
        """
}

// MARK: - Operators as the kernel says (AccessStore/AuditLog.swift)

extension Migrations {
    /// `operator` holds the Unix user the kernel vouched for; `note` what the operator typed
    /// (`--operator NAME`), which never replaces the user.
    static let v6AuditNote = """
        ALTER TABLE audit ADD COLUMN note TEXT;
        """
}

// MARK: - Hash chains of the event and audit logs (AccessStore/LogChains.swift)

extension Migrations {
    /// Each event and audit entry's SHA-256 and its predecessor's (`LogChain`). Entries stored
    /// before this step keep NULL: they stay readable and are reported as unchained.
    static let v7HashChains = """
        ALTER TABLE events ADD COLUMN prev_hash BLOB;
        ALTER TABLE events ADD COLUMN hash BLOB;
        ALTER TABLE audit ADD COLUMN prev_hash BLOB;
        ALTER TABLE audit ADD COLUMN hash BLOB;
        """
}
