import AccessCore

/// The durable cursors of the outboxes (table `outbox`, migration `v3Outbox`): per receiver, the
/// serial up to which it has acknowledged every event. Retention keeps what an outbox still owes.
extension AccessDatabase {
    /// Makes the outbox `name` at cursor 0 if it does not exist yet (so it owes the whole log, and
    /// retention knows that before anything is acknowledged), and returns its stored cursor.
    public func openOutbox(_ name: String) throws(StoreError) -> Int64 {
        try connection.run("INSERT INTO outbox (name, acked_serial) VALUES (?, 0) ON CONFLICT (name) DO NOTHING", [.text(name)])
        return try outboxCursor(name) ?? 0
    }

    /// The stored cursor of the outbox `name`; nil when it was never opened.
    public func outboxCursor(_ name: String) throws(StoreError) -> Int64? {
        try connection.scalarInt("SELECT acked_serial FROM outbox WHERE name = ?", [.text(name)])
    }

    /// Moves the cursor of the outbox `name` forward to `serial` (making the outbox if needed);
    /// a cursor never moves back, so a late or repeated write cannot resend acknowledged events.
    public func advanceOutbox(_ name: String, to serial: Int64) throws(StoreError) {
        try connection.run("""
            INSERT INTO outbox (name, acked_serial) VALUES (?1, ?2)
            ON CONFLICT (name) DO UPDATE SET acked_serial = excluded.acked_serial WHERE excluded.acked_serial > outbox.acked_serial
            """, [.text(name), .int(serial)])
    }
}
