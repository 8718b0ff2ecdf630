import AccessCore

/// Keeps a decision policy in step with the roster in the database.
///
/// `PRAGMA data_version` tells cheaply whether any other connection committed; the roster
/// generation tells whether the commit touched the roster (event appends do not), so the index is
/// rebuilt only for roster changes. The watcher keeps no policy of its own: the caller holds the
/// only copy, so a change set applied in place (`acknowledge`) never copies the index. Owned by
/// one thread at a time, like its connection.
public final class RosterWatcher {
    let db: AccessDatabase
    let rules: SiteRules
    private var dataVersion: Int64 = -1
    private var generation: Int64 = -1

    /// Opens its own connection to `path`; `load()` reads the first policy, which hashes typed
    /// PINs with `pinKey`.
    public init(path: String, rules: SiteRules, pinKey: PinKey? = nil) throws {
        db = try AccessDatabase(path: path, create: false, pinKey: pinKey)
        self.rules = rules
    }

    /// The PIN key the policies loaded from now on use (the fleet's community key).
    public func usePinKey(_ key: PinKey?) {
        db.pinKey = key
    }

    /// Loads the current roster, whatever changed.
    public func load() throws -> AccessPolicy {
        let version = try db.dataVersion()
        // Read the generation before loading: a change committed meanwhile triggers another reload.
        let loading = try db.rosterGeneration()
        let policy = try db.loadPolicy(rules: rules)
        db.connection.releaseCache()
        // Only now: a load that failed is tried again at the next refresh.
        (dataVersion, generation) = (version, loading)
        return policy
    }

    /// A new policy when the roster changed since the last load, else nil.
    public func refresh() throws -> AccessPolicy? {
        let version = try db.dataVersion()
        guard version != dataVersion else { return nil }
        dataVersion = version
        guard try db.rosterGeneration() != generation else { return nil }
        return try load()
    }

    /// Says that the caller's policy already holds roster generation `generation`, applied in
    /// place from a change set whose transaction wrote it. Taken only when it follows the
    /// generation loaded last: anything committed in between still causes a full reload.
    public func acknowledge(generation applied: Int64) {
        if applied == generation + 1 { generation = applied }
    }
}
