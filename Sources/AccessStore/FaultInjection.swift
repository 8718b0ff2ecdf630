import AccessCore

/// Faults for tests of the writers that must survive them; behind an SPI so no product calls them.
extension AccessDatabase {
    /// Makes every append to the event log fail (SQLite error "injected failure") while `failing`
    /// is true, as a failing disk would; through a trigger, so it also holds for every other
    /// connection to the file.
    @_spi(Testing)
    public func failEventAppends(_ failing: Bool) throws(StoreError) {
        try connection.execute("""
            CREATE TRIGGER IF NOT EXISTS inject_failure BEFORE INSERT ON events
            WHEN (SELECT value FROM settings WHERE key = 'inject_failure') = '1'
            BEGIN SELECT RAISE(ABORT, 'injected failure'); END;
            """)
        try connection.run("INSERT OR REPLACE INTO settings (key, value) VALUES ('inject_failure', ?)", [.text(failing ? "1" : "0")])
    }
}
