import CSQLite
#if canImport(Glibc)
import Glibc
#endif

/// A failure of the store, naming the operation and SQLite's own code and message.
public enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// An SQLite call failed.
    case sqlite(operation: String, code: Int32, message: String)
    /// The file is not an SQLite database, or its header is damaged.
    case notADatabase(path: String, detail: String)
    /// The file is an SQLite database of some other program.
    case foreignDatabase(path: String)
    /// The database was written by a newer version of this product.
    case newerSchema(path: String, found: Int, supported: Int)
    /// `PRAGMA integrity_check` found damage.
    case corrupt(path: String, detail: String)
    /// A database whose PINs are stored as typed (before schema 9) opened without the PIN key
    /// that is to hash them.
    case pinKeyNeeded(path: String, pins: Int)

    public var description: String {
        switch self {
        case .sqlite(let operation, let code, let message):
            return "\(operation) failed: \(message) (SQLite error \(code))"
        case .notADatabase(let path, let detail):
            return "\(path) is not a CommunityAccess database or is damaged (\(detail)); it was left untouched"
        case .foreignDatabase(let path):
            return "\(path) is an SQLite database of another program; refusing to use or change it"
        case .newerSchema(let path, let found, let supported):
            return "\(path) has schema version \(found), newer than this program's \(supported); upgrade accessctl/accessd (the database was left untouched)"
        case .corrupt(let path, let detail):
            return "\(path) is damaged: \(detail)"
        case .pinKeyNeeded(let path, let pins):
            return "\(path) holds \(pins) PIN(s) as typed; open it with its PIN key (accessd, or accessctl --config) to store them as keyed hashes (the database was left untouched)"
        }
    }
}

/// One SQLite connection. Not thread-safe: owned by one thread or actor at a time. Internal to
/// the store, so that every statement lives in this module.
final class SQLiteConnection {
    let handle: OpaquePointer
    let path: String
    private var cache: [String: Statement] = [:]
    private var savepointDepth = 0

    /// Opens (creating if asked) the file at `path`.
    init(path: String, create: Bool = true, readOnly: Bool = false) throws(StoreError) {
        var db: OpaquePointer?
        var flags = readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE
        if create && !readOnly { flags |= SQLITE_OPEN_CREATE }
        flags |= SQLITE_OPEN_NOMUTEX
        // SQLite would create the file 0644 whatever the umask allows; made here, it gets 0666 less
        // the umask (0660 under accessd's UMask=0007, so the operators' group can write it), and
        // SQLite gives its -wal and -shm files the same mode. An empty file is an empty database.
        if create && !readOnly {
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if fd >= 0 { close(fd) }
        }
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            throw .sqlite(operation: "open \(path)", code: rc, message: message)
        }
        self.handle = db
        self.path = path
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, 5_000)
    }

    deinit {
        cache.removeAll()
        sqlite3_close_v2(handle)
    }

    func error(_ operation: String, _ rc: Int32) -> StoreError {
        .sqlite(operation: operation, code: rc, message: String(cString: sqlite3_errmsg(handle)))
    }

    /// Frees the connection's cached pages that nothing holds.
    func releaseCache() {
        _ = sqlite3_db_release_memory(handle)
    }

    /// Runs one or more statements without results.
    func execute(_ sql: String) throws(StoreError) {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error(String(sql.prefix(60)), rc) }
    }

    /// A prepared statement, cached by its text for reuse.
    func statement(_ sql: String) throws(StoreError) -> Statement {
        if let cached = cache[sql] {
            cached.reset()
            return cached
        }
        let statement = try Statement(connection: self, sql: sql)
        cache[sql] = statement
        return statement
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    /// Inside another transaction it becomes a savepoint, so changes compose.
    func transaction<T>(immediate: Bool = true, _ body: () throws -> T) throws -> T {
        let nested = sqlite3_get_autocommit(handle) == 0
        if nested {
            savepointDepth += 1
            let name = "sp\(savepointDepth)"
            defer { savepointDepth -= 1 }
            try execute("SAVEPOINT \(name)")
            do {
                let result = try body()
                try execute("RELEASE \(name)")
                return result
            } catch {
                try? execute("ROLLBACK TO \(name)")
                try? execute("RELEASE \(name)")
                throw error
            }
        }
        try execute(immediate ? "BEGIN IMMEDIATE" : "BEGIN")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// The first column of the first row, as an integer.
    func scalarInt(_ sql: String, _ bindings: [SQLValue] = []) throws(StoreError) -> Int64? {
        let s = try statement(sql)
        try s.bind(bindings)
        return try s.first { $0.isNull(0) ? nil : $0.int(0) } ?? nil
    }

    func scalarText(_ sql: String, _ bindings: [SQLValue] = []) throws(StoreError) -> String? {
        let s = try statement(sql)
        try s.bind(bindings)
        return try s.first { $0.text(0) }
    }

    /// Runs a statement with bindings, ignoring rows.
    func run(_ sql: String, _ bindings: [SQLValue] = []) throws(StoreError) {
        let s = try statement(sql)
        try s.bind(bindings)
        while try s.step() {}
    }

    var changes: Int { Int(sqlite3_changes(handle)) }
    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
}

/// A value bound to a statement parameter.
enum SQLValue: Sendable, Hashable {
    case int(Int64)
    case text(String)
    case blob([UInt8])
    case null

    static func optional(_ value: String?) -> SQLValue { value.map(SQLValue.text) ?? .null }
    static func optional(_ value: Int64?) -> SQLValue { value.map(SQLValue.int) ?? .null }
}

/// A prepared statement.
final class Statement {
    let handle: OpaquePointer
    unowned let connection: SQLiteConnection
    let sql: String

    init(connection: SQLiteConnection, sql: String) throws(StoreError) {
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(connection.handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw connection.error("prepare \(sql.prefix(60))", rc) }
        self.handle = stmt
        self.connection = connection
        self.sql = sql
    }

    deinit {
        sqlite3_finalize(handle)
        rowBytes?.deallocate()  // after finalize: bindings may still point into it
    }

    func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    // Texts and blobs of the current row, for `beginRow`/`bindRow`: SQLite reads them in place
    // (SQLITE_STATIC), so a row's values cost one copy here instead of a malloc and copy each
    // inside SQLite. The event writer binds 16 values per event, so this is on its critical path.
    private var rowBytes: UnsafeMutableRawBufferPointer?
    private var rowBytesUsed = 0

    /// Readies the statement for a row bound with `bindRow`: resets it (keeping the old bindings,
    /// which the caller must all bind again) and makes room for `bytes` bytes of texts and blobs.
    func beginRow(bytes: Int) {
        sqlite3_reset(handle)
        if rowBytes == nil || bytes > rowBytes!.count {
            // The bindings point into the old buffer until rebound: clear them before freeing it.
            sqlite3_clear_bindings(handle)
            rowBytes?.deallocate()
            rowBytes = .allocate(byteCount: max(bytes, 2 * (rowBytes?.count ?? 256)), alignment: 1)
        }
        rowBytesUsed = 0
    }

    /// Copies `bytes` into the row's buffer and binds them as text or blob at `index`; SQLite's
    /// result code.
    private func bindRowBytes(_ bytes: UnsafeRawBufferPointer, at index: Int32, text: Bool) -> Int32 {
        guard let buffer = rowBytes, rowBytesUsed + bytes.count <= buffer.count else {
            preconditionFailure("beginRow reckoned the row's bytes too few")
        }
        let start = buffer.baseAddress! + rowBytesUsed
        if let source = bytes.baseAddress { start.copyMemory(from: source, byteCount: bytes.count) }
        rowBytesUsed += bytes.count
        return text
            ? sqlite3_bind_text(handle, index, start.assumingMemoryBound(to: CChar.self), Int32(bytes.count), SQLITE_STATIC_PTR)
            : sqlite3_bind_blob(handle, index, start, Int32(bytes.count), SQLITE_STATIC_PTR)
    }

    /// Binds a text, or NULL, at `index` of a row begun with `beginRow`.
    func bindRow(_ value: String?, at index: Int32) throws(StoreError) {
        guard var value else { return try bindRow(nil as Int64?, at: index) }
        let rc = value.withUTF8 { bindRowBytes(UnsafeRawBufferPointer($0), at: index, text: true) }
        guard rc == SQLITE_OK else { throw connection.error("bind \(sql.prefix(40))", rc) }
    }

    /// Binds a blob at `index` of a row begun with `beginRow`.
    func bindRow(_ value: [UInt8], at index: Int32) throws(StoreError) {
        let rc = value.withUnsafeBytes { bindRowBytes($0, at: index, text: false) }
        guard rc == SQLITE_OK else { throw connection.error("bind \(sql.prefix(40))", rc) }
    }

    /// Binds an integer, or NULL, at `index` of a row begun with `beginRow`.
    func bindRow(_ value: Int64?, at index: Int32) throws(StoreError) {
        let rc = value.map { sqlite3_bind_int64(handle, index, $0) } ?? sqlite3_bind_null(handle, index)
        guard rc == SQLITE_OK else { throw connection.error("bind \(sql.prefix(40))", rc) }
    }

    /// Binds values to parameters 1…n.
    /// A C string for "" (a null pointer would bind NULL, not an empty text).
    nonisolated(unsafe) private static let emptyText: UnsafePointer<CChar> = {
        let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: 1)
        pointer.initialize(to: 0)
        return UnsafePointer(pointer)
    }()

    func bind(_ values: [SQLValue]) throws(StoreError) {
        for (i, value) in values.enumerated() { try bind(value, at: Int32(i + 1)) }
    }

    func bind(_ value: SQLValue, at index: Int32) throws(StoreError) {
        let rc: Int32
        switch value {
        case .int(let v): rc = sqlite3_bind_int64(handle, index, v)
        case .text(var v):
            // Through the UTF-8 bytes with their length: passing the String as a C string copies
            // every small one (most ids here) into a new array first.
            rc = v.withUTF8 { bytes in
                bytes.withMemoryRebound(to: CChar.self) { chars in
                    sqlite3_bind_text(handle, index, chars.baseAddress ?? Self.emptyText, Int32(chars.count), SQLITE_TRANSIENT_PTR)
                }
            }
        case .blob(let v): rc = v.withUnsafeBytes { sqlite3_bind_blob(handle, index, $0.baseAddress, Int32($0.count), SQLITE_TRANSIENT_PTR) }
        case .null: rc = sqlite3_bind_null(handle, index)
        }
        guard rc == SQLITE_OK else { throw connection.error("bind \(sql.prefix(40))", rc) }
    }

    /// Advances to the next row; false when done.
    func step() throws(StoreError) -> Bool {
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let error = connection.error(String(sql.prefix(60)), rc)
            sqlite3_reset(handle)
            throw error
        }
    }

    func int(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    func optionalInt(_ column: Int32) -> Int64? { isNull(column) ? nil : int(column) }
    func text(_ column: Int32) -> String {
        guard let p = sqlite3_column_text(handle, column) else { return "" }
        return String(cString: p)
    }
    func optionalText(_ column: Int32) -> String? { isNull(column) ? nil : text(column) }
    func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(handle, column))
        guard count > 0, let p = sqlite3_column_blob(handle, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: count))
    }
    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }

    /// The first row mapped by `map`, or nil; the statement is reset afterwards so that it holds
    /// no read transaction open.
    func first<T>(_ map: (Statement) -> T) throws(StoreError) -> T? {
        defer { sqlite3_reset(handle) }
        guard try step() else { return nil }
        return map(self)
    }
}

/// SQLite's "copy the bytes now" destructor, which Swift cannot import as a macro.
let SQLITE_TRANSIENT_PTR = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
/// SQLite's "the bytes stay put" destructor: SQLite reads them in place until they are rebound.
let SQLITE_STATIC_PTR: sqlite3_destructor_type? = nil
