import AccessCore
import AccessStore
import ArgumentParser
import Glibc

struct ImportCommand: SiteCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import a roster CSV: an upsert by person_id, all rows or none.",
        discussion: """
            Columns (any order, unknown ones refused): house_id, building, unit, floor, room, person_id, name, \
            role, phone, valid_from, valid_until, cards, plates, groups, status, parking_spaces (the house's; empty: no \
            limit). A column left out keeps \
            existing values; an empty cell clears them. Every bad row is reported as FILE:LINE: column: problem.
            Examples:
              accessctl import roster.csv --dry-run
              accessctl import roster.csv --replace
            """
    )
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The CSV file (UTF-8, header row).") var file: String
    @Flag(name: .customLong("dry-run"), help: "Report what would change; change nothing.") var dryRun = false
    @Flag(help: "Also remove people absent from the file.") var replace = false

    func run(site: Site) throws {
        guard let handle = fopen(file, "rb") else {
            throw CLIError("\(file): cannot be read: \(String(cString: strerror(errno)))")
        }
        defer { fclose(handle) }
        var st = stat()
        let size = fstat(fileno(handle), &st) == 0 ? Int(st.st_size) : 0
        var reader = CSVReader { buffer in
            buffer = [UInt8](repeating: 0, count: 262_144)
            let n = fread(&buffer, 1, buffer.count, handle)
            if n == 0, ferror(handle) != 0 { throw CLIError("\(file): read failed: \(String(cString: strerror(errno)))") }
            buffer.removeSubrange(n...)
            return n
        }
        var bar = ProgressBar(total: size, label: dryRun ? "checking" : "importing")
        let options = ImportOptions(fileName: file, zone: site.zone, operator: site.operatorName, dryRun: dryRun, replace: replace)
        // A dry run changes nothing and publishes nothing; a real import is one change set.
        let report = dryRun
            ? try site.db.importRoster(&reader, options: options) { bar.update($0) }
            : try site.changeRoster { db in try db.importRoster(&reader, options: options) { bar.update($0) } }
        bar.finish()
        if site.json {
            return Say.json(.object([
                ("dry_run", .bool(dryRun)), ("rows", .int(report.rows)), ("added", .int(report.added.count)),
                ("updated", .int(report.updated.count)), ("unchanged", .int(report.unchanged)),
                ("removed", .int(report.removed.count)), ("houses_added", .int(report.housesAdded.count)),
                ("houses_updated", .int(report.housesUpdated.count)),
                ("added_ids", .strings(Array(report.added.prefix(1000)))), ("updated_ids", .strings(Array(report.updated.prefix(1000)))),
                ("removed_ids", .strings(Array(report.removed.prefix(1000)))),
            ]))
        }
        let verb = dryRun ? "would import" : "imported"
        Say.line("\(verb) \(report.rows) rows from \(file): \(report.added.count) added, \(report.updated.count) updated, \(report.unchanged) unchanged, \(report.removed.count) removed; \(report.housesAdded.count) new houses")
        if dryRun {
            for id in report.added.prefix(20) { Say.line("  + \(id)") }
            for id in report.updated.prefix(20) { Say.line("  ~ \(id)") }
            for id in report.removed.prefix(20) { Say.line("  - \(id)") }
            let listed = min(20, report.added.count) + min(20, report.updated.count) + min(20, report.removed.count)
            let total = report.added.count + report.updated.count + report.removed.count
            if total > listed { Say.line("  … and \(total - listed) more (use --json for the full lists)") }
            Say.line("nothing was changed (dry run)")
        }
    }
}

struct ExportCommand: SiteCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the roster as the import CSV (active cards and plates only).",
        discussion: "Example: accessctl export --output roster-backup.csv"
    )
    @OptionGroup var global: GlobalOptions
    @Option(help: "Write to this file instead of standard output.") var output: String?

    func run(site: Site) throws {
        var failure: Int32 = 0
        if let output {
            // Write beside the target and rename, so a failed export never leaves half a file.
            let temporary = output + ".partial"
            guard let handle = fopen(temporary, "wb") else { throw CLIError("\(output): cannot be written: \(String(cString: strerror(errno)))") }
            let count = try site.db.exportRoster(zone: site.zone) { chunk in
                if fputs(chunk, handle) < 0 { failure = errno }
            }
            if fflush(handle) != 0 || fsync(fileno(handle)) != 0 { failure = errno }
            fclose(handle)
            guard failure == 0, rename(temporary, output) == 0 else {
                let code = failure == 0 ? errno : failure
                unlink(temporary)
                throw CLIError("\(output): write failed: \(String(cString: strerror(code)))")
            }
            if site.json { Say.json(.object([("exported", .int(count)), ("file", .string(output))])) } else { Say.warn("exported \(count) people to \(output)") }
        } else {
            _ = try site.db.exportRoster(zone: site.zone) { Console.current.out($0) }
        }
    }
}
