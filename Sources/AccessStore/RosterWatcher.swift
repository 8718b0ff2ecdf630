import AccessCore

/// Keeps a decision policy in step with the roster in the database.
///
/// `PRAGMA data_version` tells cheaply whether any other connection committed; the roster
/// generation tells whether the commit touched the roster (event appends do not), so the index is
/// rebuilt only for roster changes. Owned by one thread, like its connection.
public final class RosterWatcher {
    let db: AccessDatabase
    let rules: SiteRules
    private var dataVersion: Int64 = -1
    private var generation: Int64 = -1
    public private(set) var policy: AccessPolicy

    /// Opens its own connection to `path` and loads the current roster.
    public init(path: String, rules: SiteRules) throws {
        db = try AccessDatabase(path: path, create: false)
        self.rules = rules
        dataVersion = try db.dataVersion()
        generation = try db.rosterGeneration()
        policy = try db.loadPolicy(rules: rules)
        db.connection.releaseCache()
    }

    /// Reloads when the roster changed since the last call; returns whether it did.
    @discardableResult
    public func refresh() throws -> Bool {
        let version = try db.dataVersion()
        guard version != dataVersion else { return false }
        dataVersion = version
        let current = try db.rosterGeneration()
        guard current != generation else { return false }
        // Read the generation before loading: a change committed meanwhile triggers another reload.
        generation = current
        policy = try db.loadPolicy(rules: rules)
        db.connection.releaseCache()
        return true
    }
}
