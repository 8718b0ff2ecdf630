import AccessCore
import AccessFleet
import AccessStore
import ArgumentParser

/// `accessctl fleet …`: the community's controllers as the fleet sees them.
struct FleetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "The fleet: every controller's applied roster sequence, lag and digest.",
        subcommands: [Status.self]
    )

    struct Status: SiteCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every controller: applied sequence, lag, roster digest and whether it matches, last heard.",
            discussion: """
                A controller is in step when it has applied the community's latest change set and its \
                roster digest equals this replica's at that sequence. With --json: {"community": ..., \
                "sequence": N, "controllers": [{"id", "applied", "digest", "in_step", "last_heard"}]}
                """
        )
        @OptionGroup var global: GlobalOptions

        func run(site: Site) throws {
            guard let fleet = site.fleet else { throw CLIError("no [fleet] in the configuration: this controller keeps its own roster") }
            let connection = try NatsConnection(FleetClient.options(fleet, name: "accessctl fleet status"))
            defer { connection.close() }
            let names = FleetNames(community: fleet.community)
            let sequence = try connection.streamInfo(names.rosterStream).lastSequence
            // The replica tells the digest at `sequence`: the office's catches up here; a
            // controller's own is accessd's, compared only when it is at that sequence.
            if site.isOffice { try RosterFollower(connection: connection, names: names, db: site.db).catchUp() }
            let reference = try site.db.fleetSequence() == sequence ? try site.db.fleetDigest().hex : nil
            let bucket = try KeyValueBucket.bind(names.statusBucket, on: connection)
            var lines: [ControllerStatus] = []
            for key in try bucket.keys() {
                guard let entry = try bucket.get(key), let json = JSON.parse(String(decoding: entry.value, as: UTF8.self)),
                      let status = ControllerStatus(json: json) else { continue }
                lines.append(status)
            }
            lines.sort { $0.id < $1.id }
            func inStep(_ s: ControllerStatus) -> Bool { s.applied == sequence && s.stuck == nil && (reference == nil || s.digest == reference) }
            if site.json {
                return Say.json(.object([
                    ("community", .string(fleet.community)), ("sequence", .int(Int64(sequence))),
                    ("controllers", .array(lines.map { s in
                        .object([("id", .string(s.id)), ("applied", .int(Int64(s.applied))), ("lag", .int(Int64(sequence > s.applied ? sequence - s.applied : 0))),
                                 ("digest", .string(s.digest)), ("in_step", .bool(inStep(s))), ("stuck", .string(s.stuck)),
                                 ("last_heard", .string(ISO8601.format(s.time, zone: site.zone)))])
                    })),
                ]))
            }
            Say.line("community \(fleet.community): sequence \(sequence), \(lines.count) controller(s)")
            var table = TextTable("CONTROLLER", "APPLIED", "LAG", "IN STEP", "DIGEST", "LAST HEARD")
            for s in lines {
                table.add(s.id, String(s.applied), String(sequence > s.applied ? sequence - s.applied : 0),
                          inStep(s) ? "yes" : (s.stuck != nil ? "STUCK" : "no"), String(s.digest.prefix(12)), ISO8601.format(s.time, zone: site.zone))
            }
            Say.line(table.render())
        }
    }
}
