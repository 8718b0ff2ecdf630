/// The community's visitor-pass secret, kept in the key-value bucket `access_COMMUNITY_secrets`
/// (key `visitor_pass`, hex): the property office writes it once, every controller reads it, so
/// a QR code issued anywhere opens every gate it names. It is never printed or logged; on the
/// servers it lives in the community's account, which only its own users reach.
///
/// The community's PIN key (key `pin_key`, hex) is kept beside it: change sets carry a PIN as its
/// keyed hash under that key, so every controller and the office must hash typed PINs with the
/// same one. The office proposes its own key file's key when the community has none.
public enum FleetSecrets {
    static let visitorPassKey = "visitor_pass"
    static let pinKeyName = "pin_key"

    /// The office: the community's PIN key (hex), `proposal` when it had none yet.
    public static func ensurePinKey(on connection: NatsConnection, names: FleetNames, replicas: Int, proposal: String) throws -> String {
        let bucket = try KeyValueBucket.ensure(BucketSpec(name: names.secretsBucket, replicas: replicas), on: connection)
        if let existing = try read(bucket, pinKeyName) { return existing }
        do {
            _ = try bucket.create(pinKeyName, Array(proposal.utf8))
            return proposal
        } catch FleetError.revisionConflict {
            guard let existing = try read(bucket, pinKeyName) else { throw FleetSyncError.conflict("the community's PIN key vanished while it was made") }
            return existing
        }
    }

    /// A controller: the community's PIN key (hex), nil while the office has not made it.
    public static func pinKey(on connection: NatsConnection, names: FleetNames) throws -> String? {
        let bucket: KeyValueBucket
        do {
            bucket = try KeyValueBucket.bind(names.secretsBucket, on: connection)
        } catch .notFound {
            return nil
        }
        return try read(bucket, pinKeyName)
    }

    /// The office: makes the bucket and, when the community has no secret yet, proposes
    /// `proposal` (its replica's random one, hex); returns the community's secret (hex), which
    /// may be another office's that came first.
    public static func ensureVisitorPassSecret(on connection: NatsConnection, names: FleetNames, replicas: Int,
                                               proposal: String) throws -> String {
        let bucket = try KeyValueBucket.ensure(BucketSpec(name: names.secretsBucket, replicas: replicas), on: connection)
        if let existing = try read(bucket) { return existing }
        do {
            _ = try bucket.create(visitorPassKey, Array(proposal.utf8))
            return proposal
        } catch FleetError.revisionConflict {
            // Another office made it between the read and the create: theirs holds.
            guard let existing = try read(bucket) else { throw FleetSyncError.conflict("the community's visitor-pass secret vanished while it was made") }
            return existing
        }
    }

    /// A controller: the community's secret (hex), nil while the office has not made it.
    public static func visitorPassSecret(on connection: NatsConnection, names: FleetNames) throws -> String? {
        let bucket: KeyValueBucket
        do {
            bucket = try KeyValueBucket.bind(names.secretsBucket, on: connection)
        } catch .notFound {
            return nil
        }
        return try read(bucket)
    }

    private static func read(_ bucket: KeyValueBucket, _ key: String = visitorPassKey) throws -> String? {
        guard let entry = try bucket.get(key) else { return nil }
        return String(decoding: entry.value, as: UTF8.self)
    }
}
