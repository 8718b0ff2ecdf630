import AccessConfig
import AccessCore
import AccessFleet
import AccessStore
import ArgumentParser

/// `accessctl fleet …`: the community's controllers as the fleet sees them.
struct FleetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "The fleet: every controller's applied roster sequence, lag and digest; the community's events.",
        subcommands: [Status.self, Init.self, Events.self, Compact.self]
    )

    /// Connects with the configuration's `[fleet]`.
    static func connect(_ site: Site, _ what: String) throws -> (SiteConfig.Fleet, NatsConnection) {
        guard let fleet = site.fleet else { throw CLIError("no [fleet] in the configuration: this controller keeps its own roster") }
        return (fleet, try NatsConnection(FleetClient.options(fleet, name: "accessctl " + what)))
    }

    struct Init: SiteCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the community's streams and status bucket (the property office; its first roster command does it too).",
            discussion: "Safe to run again: what exists is kept. Controllers ship their events once the events stream exists."
        )
        @OptionGroup var global: GlobalOptions

        func run(site: Site) throws {
            let (fleet, connection) = try FleetCommand.connect(site, "fleet init")
            defer { connection.close() }
            let names = FleetNames(community: fleet.community)
            try RosterPublisher(connection: connection, names: names, replica: site.db, applyLocally: site.isOffice)
                .ensureStreams(replicas: fleet.replicas)
            let roster = try connection.streamInfo(names.rosterStream)
            let events = try connection.streamInfo(names.eventsStream)
            if site.json {
                return Say.json(.object([
                    ("community", .string(fleet.community)),
                    ("roster_stream", .string(names.rosterStream)), ("roster_sequence", .int(Int64(roster.lastSequence))),
                    ("events_stream", .string(names.eventsStream)), ("events", .int(Int64(events.messages))),
                    ("replicas", .int(Int64(roster.replicas))),
                ]))
            }
            Say.line("community \(fleet.community): \(names.rosterStream) at sequence \(roster.lastSequence), \(names.eventsStream) with \(events.messages) event(s), \(roster.replicas) replica(s)")
        }
    }

    struct Compact: SiteCommand {
        static let configuration = CommandConfiguration(
            abstract: "Snapshot the roster and purge the change sets it replaces (the property office).",
            discussion: """
                The office does it by itself once the roster stream holds 10,000 messages. A controller \
                more than --keep change sets behind, or a new one, loads the snapshot, then follows the tail.
                """
        )
        @OptionGroup var global: GlobalOptions
        @Option(help: "Change sets to keep after the snapshot.") var keep: UInt64 = RosterSnapshots.defaultKeep

        func run(site: Site) throws {
            guard site.isOffice else { throw CLIError("fleet compact runs at the property office (a config with [fleet] and no [database])") }
            let (fleet, connection) = try FleetCommand.connect(site, "fleet compact")
            defer { connection.close() }
            let names = FleetNames(community: fleet.community)
            try RosterFollower(connection: connection, names: names, db: site.db).catchUp()
            let origin = ChangeSet.Origin(user: site.operatorName, host: Site.hostName(), command: "fleet compact")
            let done = try RosterSnapshots(connection: connection, names: names).compact(replica: site.db, origin: origin,
                                                                                          replicas: fleet.replicas, keep: keep)
            if site.json {
                return Say.json(.object([("sequence", .int(Int64(done.sequence))), ("records", .int(Int64(done.records))),
                                         ("parts", .int(Int64(done.parts))), ("first_kept", .int(Int64(done.firstKept)))]))
            }
            Say.line("snapshot at sequence \(done.sequence): \(done.records) records in \(done.parts) part(s); change sets from \(done.firstKept) kept")
        }
    }

    struct Events: SiteCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read every controller's events from the community's stream, in stream order.",
            discussion: """
                Prints the events stored from stream sequence --from on (1: the oldest kept), and with \
                --follow goes on printing new ones. With --json, one line per event: \
                {"stream_sequence": N, "subject": "access.C.events.CONTROLLER.TYPE", "event": {the event as the API serves it}}. \
                An event's "id" (CONTROLLER:SERIAL) is unique: a platform drops a repeat by it.
                """
        )
        @OptionGroup var global: GlobalOptions
        @Option(help: "The first stream sequence to print.") var from: UInt64 = 1
        @Option(help: "Only this controller's events.") var controller: String?
        @Option(help: "Stop after this many events.") var count: Int?
        @Flag(help: "Keep printing new events until interrupted.") var follow = false

        func validate() throws {
            if let count, count < 1 { throw ValidationError("--count: \(count) must be at least 1") }
            if let controller, controller.isEmpty || controller.contains(where: { ".*> ".contains($0) }) {
                throw ValidationError("--controller: \"\(controller)\" is not a controller id")
            }
        }

        func run(site: Site) throws {
            let (fleet, connection) = try FleetCommand.connect(site, "fleet events")
            defer { connection.close() }
            let names = FleetNames(community: fleet.community)
            // Without --follow: everything stored when the command starts, read to that sequence
            // (a reader right after a leader change may wait seconds for its first message, so
            // an idle gap is no sign of the end). The controller filter is applied here, so the
            // reader's position always moves.
            let end = follow ? UInt64.max : try RosterPublisher.retryingTransient { try connection.streamInfo(names.eventsStream).lastSequence }
            let subjectPrefix = controller.map { "access.\(fleet.community).events.\($0)." }
            let reader = connection.read(stream: names.eventsStream, fromSequence: from)
            defer { reader.close() }
            var table = TextTable("SEQ", "TIME", "ID", "TYPE", "PORTAL", "REASON")
            var printed = 0
            while count.map({ printed < $0 }) ?? true, reader.nextSequence <= end {
                guard let message = try reader.next(timeout: .seconds(30)) else {
                    if follow { continue }
                    throw CLIError("\(names.eventsStream): nothing arrived for 30 s before sequence \(end)")
                }
                if let subjectPrefix, !message.subject.hasPrefix(subjectPrefix) { continue }
                let event = JSON.parse(String(decoding: message.payload, as: UTF8.self)) ?? .null
                printed += 1
                if site.json {
                    Say.json(.object([("stream_sequence", .int(Int64(message.sequence))), ("subject", .string(message.subject)), ("event", event)]))
                } else if follow {
                    Say.line("\(message.sequence) \(event["time"]?.stringValue ?? "-") \(event["id"]?.stringValue ?? "-") \(event["type"]?.stringValue ?? "-") \(event["portal"]?.stringValue ?? "-") \(event["reason"]?.stringValue ?? "-")")
                } else {
                    table.add(String(message.sequence), event["time"]?.stringValue ?? "-", event["id"]?.stringValue ?? "-",
                              event["type"]?.stringValue ?? "-", event["portal"]?.stringValue ?? "-", event["reason"]?.stringValue ?? "-")
                }
            }
            if !site.json && !follow { Say.line(table.render()) }
        }
    }

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
            let (fleet, connection) = try FleetCommand.connect(site, "fleet status")
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
