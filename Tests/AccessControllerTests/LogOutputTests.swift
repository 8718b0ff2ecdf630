import AccessConfig
@testable import AccessController
import AccessTestSupport
import Foundation
import Logging
import Synchronization
import Testing

/// Keeps every record a logger writes, formatted as the journal would get it.
final class CapturedLog: LogHandler, @unchecked Sendable {
    let entries = Mutex<[(message: String, metadata: [(String, String)])]>([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        let pairs = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, "\($0.value)") }
        entries.withLock { $0.append(("\(event.message)", pairs)) }
    }
}

@Suite struct LogOutputTests {
    /// journald's native protocol, parsed back: NAME=value lines, or NAME\n + 64-bit LE length + bytes + \n.
    static func parseJournal(_ bytes: [UInt8]) -> [String: String] {
        var fields: [String: String] = [:]
        var i = 0
        while i < bytes.count {
            let nameEnd = bytes[i...].firstIndex { $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "\n") }!
            let name = String(decoding: bytes[i..<nameEnd], as: UTF8.self)
            if bytes[nameEnd] == UInt8(ascii: "=") {
                let end = bytes[nameEnd...].firstIndex(of: UInt8(ascii: "\n"))!
                fields[name] = String(decoding: bytes[(nameEnd + 1)..<end], as: UTF8.self)
                i = end + 1
            } else {
                var length: UInt64 = 0
                for k in 0..<8 { length |= UInt64(bytes[nameEnd + 1 + k]) << (8 * UInt64(k)) }
                let start = nameEnd + 9
                fields[name] = String(decoding: bytes[start..<(start + Int(length))], as: UTF8.self)
                i = start + Int(length) + 1
            }
        }
        return fields
    }

    @Test func aJournalEntryCarriesMetadataAsFieldsOfTheirOwn() {
        let entry = LogFormat.journalEntry(identifier: "accessd", label: "accessd.controller", level: .warning,
                                           message: "two\nlines", metadata: [("portal", "b01-door"), ("reason", "forced_open"), ("message", "x")],
                                           file: "F.swift", line: 7, function: "f()")
        let fields = Self.parseJournal(entry)
        #expect(fields["MESSAGE"] == "two\nlines", "a newline in a value uses the binary form")
        #expect(fields["PRIORITY"] == "4" && fields["SYSLOG_IDENTIFIER"] == "accessd" && fields["LOGGER"] == "accessd.controller")
        #expect(fields["PORTAL"] == "b01-door" && fields["REASON"] == "forced_open")
        #expect(fields["META_MESSAGE"] == "x", "metadata never overwrites the entry's own fields")
        #expect(fields["CODE_FILE"] == "F.swift" && fields["CODE_LINE"] == "7")
    }

    @Test(arguments: [("portal", "PORTAL"), ("last-serial", "LAST_SERIAL"), ("_pid", "PID"), ("9x", "X"), ("门", "FIELD")])
    func metadataKeysBecomeValidJournalFieldNames(key: String, name: String) {
        #expect(LogFormat.journalFieldName(key) == name)
    }

    @Test func aJSONLineIsOneObjectWithTheMetadata() throws {
        let line = LogFormat.jsonLine(time: "2026-12-05T03:00:00.000Z", label: "accessd", level: .info,
                                      message: "access granted at b01-door", metadata: [("portal", "b01-door"), ("level", "x")])
        #expect(line.last == UInt8(ascii: "\n") && line.filter { $0 == UInt8(ascii: "\n") }.count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: String])
        #expect(object["message"] == "access granted at b01-door" && object["portal"] == "b01-door")
        #expect(object["level"] == "info" && object["meta_level"] == "x" && object["logger"] == "accessd")
    }

    @Test func aTextLineIsForPeople() {
        let line = String(decoding: LogFormat.textLine(time: "T", label: "accessd", level: .notice, message: "m",
                                                       metadata: [("portal", "b01-door"), ("error", "no such line")]), as: UTF8.self)
        #expect(line == "T notice accessd: m portal=b01-door error=\"no such line\"\n")
    }

    @Test func aJournalStreamCountsOnlyWhenItIsStderr() {
        #expect(!LogOutput.stderrIs(journalStream: "1:2"))
        #expect(!LogOutput.stderrIs(journalStream: "garbage"))
        var st = stat()
        fstat(2, &st)
        #expect(LogOutput.stderrIs(journalStream: "\(st.st_dev):\(st.st_ino)"))
    }

    /// The log of a whole scenario (grants, refusals, a PIN, a plate, alarms, an operator command)
    /// names portals and reasons, and never a credential or a person.
    @Test func theControllersLogNamesPortalsAndReasonsNeverCredentialsOrPeople() throws {
        let captured = CapturedLog()
        let rig = try Rig(logger: Logger(label: "accessd.controller") { _ in captured })
        try rig.board.swipe(reader: "reader-b01", card: 6_553_701)   // granted
        try rig.board.swipe(reader: "reader-b01", card: 1_234_567)   // unknown
        try rig.board.keys(reader: "reader-b01", [.digit(2), .digit(4), .digit(6), .digit(8), .digit(1), .digit(0), .hash])  // the PIN
        try rig.board.setInput("b01.contact", active: true)          // held open, closed
        try rig.board.setInput("b01.contact", active: false)
        try rig.board.setInput("fire.alarm", active: true)           // fire: every escape door released
        try rig.board.setInput("fire.alarm", active: false)
        _ = try rig.events()
        let entries = captured.entries.withLock { $0 }
        let granted = try #require(entries.first { $0.metadata.contains { $0 == ("reason", "granted") } })
        #expect(granted.metadata.contains { $0 == ("portal", "b01-door") } && granted.metadata.contains { $0 == ("granted", "true") })
        #expect(entries.contains { $0.metadata.contains { $0 == ("reason", "unknown_credential") } })
        let everything = entries.map { $0.message + " " + $0.metadata.map { "\($0.0)=\($0.1)" }.joined(separator: " ") }.joined(separator: "\n")
        for secret in ["6553701", "1234567", "246810", "京A12345", "P1", "B01-0301"] {
            #expect(!everything.contains(secret), "\(secret) in the log:\n\(everything)")
        }
    }
}

@Suite struct ConfigCheckTests {
    static let root = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")

    @Test func theSimulatedSiteChecksClean() throws {
        let dir = TemporaryDirectory("check")
        let text = try String(contentsOfFile: "\(Self.root)/Config/accessd-sim.toml", encoding: .utf8)
            .replacingOccurrences(of: "map = \"Hardware/", with: "map = \"\(Self.root)/Hardware/")
        let (config, errors) = SiteConfig.check(path: dir.write("site.toml", text))
        #expect(errors.isEmpty, "\(errors)")
        #expect(config != nil)
    }

    @Test func everyLineTheBoardDoesNotHaveIsNamed() throws {
        let dir = TemporaryDirectory("check")
        let text = try String(contentsOfFile: "\(Self.root)/Config/accessd-sim.toml", encoding: .utf8)
            .replacingOccurrences(of: "map = \"Hardware/", with: "map = \"\(Self.root)/Hardware/")
            .replacingOccurrences(of: "lock = \"b01.lock\"", with: "lock = \"b01.lokc\"")
            .replacingOccurrences(of: "fire = [\"fire.alarm\"]", with: "fire = [\"fire.alrm\"]")
        let path = dir.write("site.toml", text)
        let (_, errors) = SiteConfig.check(path: path)
        let text2 = errors.map(\.description).joined(separator: "\n")
        #expect(errors.count == 2, "\(text2)")
        #expect(text2.contains("b01.lokc") && text2.contains("fire.alrm") && text2.contains(path))
    }

    @Test func aDryContactLanesLinesMustPlayTheirRolesOnTheBoard() throws {
        let dir = TemporaryDirectory("check")
        let text = try String(contentsOfFile: "\(Self.root)/Config/accessd-sim.toml", encoding: .utf8)
            .replacingOccurrences(of: "map = \"Hardware/", with: "map = \"\(Self.root)/Hardware/")
            .replacingOccurrences(of: "open = \"garage-out.open\"", with: "open = \"b01.lock\"")
            .replacingOccurrences(of: "loop = \"garage-out.loop\"", with: "loop = \"garage-out.lop\"")
        let path = dir.write("site.toml", text)
        let (_, errors) = SiteConfig.check(path: path)
        #expect(errors.map(\.description) == [
            "\(path): barrier garage-out.open: output \"b01.lock\" is a lock line, not barrier-open",
            "\(path): barrier garage-out.loop: input \"garage-out.lop\" not in the board map \(Self.root)/Hardware/boards/sim.toml",
        ])
    }

    @Test func aConfigThatDoesNotParseStopsAtItsFirstError() {
        let dir = TemporaryDirectory("check")
        let path = dir.write("site.toml", "[controller]\nid = \n")
        let (config, errors) = SiteConfig.check(path: path)
        #expect(config == nil && errors.count == 1 && errors[0].description.hasPrefix("\(path):2"))
    }
}
