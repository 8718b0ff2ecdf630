import AccessCore

/// What a pass of `pruneEvents` did and found.
public struct RetentionReport: Sendable, Equatable {
    public var deleted: Int64
    /// Events kept after the pass.
    public var count: Int64
    /// Events that had to go although an outbox had not had them acknowledged.
    public var deletedUnacknowledged: Int64

    public init(deleted: Int64, count: Int64, deletedUnacknowledged: Int64) {
        self.deleted = deleted
        self.count = count
        self.deletedUnacknowledged = deletedUnacknowledged
    }
}

extension AccessDatabase {
    /// Events in the log: serials are contiguous from the oldest kept (deletes take a prefix), so
    /// this needs no scan of the table.
    public func eventCount() throws -> Int64 {
        guard let oldest = try connection.scalarInt("SELECT min(serial) FROM events") else { return 0 }
        return try lastEventSerial() - oldest + 1
    }

    /// Deletes the oldest events beyond `retention`, at most `chunk` per call so a writer is held
    /// only briefly; call again while it reports deletions.
    public func pruneEvents(_ retention: EventRetention, nowMicros: Int64, chunk: Int64 = 10_000) throws -> RetentionReport {
        try connection.transaction {
            let count = try eventCount()
            guard count > 0 else { return RetentionReport(deleted: 0, count: 0, deletedUnacknowledged: 0) }
            let oldest = try connection.scalarInt("SELECT min(serial) FROM events") ?? 1
            var upTo: Int64 = 0  // delete serials <= upTo
            if count > retention.maxCount { upTo = oldest + (count - retention.maxCount) - 1 }
            if retention.maxAgeDays > 0 {
                // The prefix before the first event young enough (the clock may have jumped, so
                // times are not in serial order: the log only ever loses a prefix).
                let cutoff = nowMicros - Int64(retention.maxAgeDays) * 86_400_000_000
                let firstYoung = try connection.scalarInt("SELECT min(serial) FROM events WHERE time_us >= ?", [.int(cutoff)])
                let last = try lastEventSerial()
                upTo = max(upTo, (firstYoung ?? last + 1) - 1)
            }
            upTo = min(upTo, oldest + chunk - 1)
            guard upTo >= oldest else { return RetentionReport(deleted: 0, count: count, deletedUnacknowledged: 0) }
            // What an outbox still owes is kept while the log is within its count limit.
            let acked = try connection.scalarInt("SELECT min(acked_serial) FROM outbox") ?? Int64.max
            var unacknowledged: Int64 = 0
            if upTo > acked {
                if count <= retention.maxCount {
                    upTo = acked
                } else {
                    unacknowledged = upTo - max(acked, oldest - 1)
                }
            }
            guard upTo >= oldest else { return RetentionReport(deleted: 0, count: count, deletedUnacknowledged: 0) }
            try recordEventChainAnchor(deletingUpTo: upTo)
            try connection.run("DELETE FROM events WHERE serial <= ?", [.int(upTo)])
            let deleted = upTo - oldest + 1
            return RetentionReport(deleted: deleted, count: count - deleted, deletedUnacknowledged: unacknowledged)
        }
    }
}
