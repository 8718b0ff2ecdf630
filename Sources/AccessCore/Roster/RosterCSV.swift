/// A problem in an import file, written `FILE:LINE: column: problem`.
public struct RosterIssue: Error, Hashable, Sendable, CustomStringConvertible {
    public var line: Int
    public var column: String
    public var problem: String

    public init(line: Int, column: String, problem: String) {
        self.line = line
        self.column = column
        self.problem = problem
    }

    public var description: String { "\(line): \(column): \(problem)" }

    public func described(file: String) -> String { "\(file):\(line): \(column): \(problem)" }
}

/// The columns of the roster CSV (interfaces.md).
public enum RosterColumn: String, CaseIterable, Sendable {
    case houseID = "house_id", building, unit, floor, room
    case personID = "person_id", name, role, phone
    case validFrom = "valid_from", validUntil = "valid_until"
    case cards, plates, groups, status
    /// The house's parking spaces (empty: no limit).
    case parkingSpaces = "parking_spaces"
}

/// One validated row: a person and their house, credentials and groups.
///
/// A nil field means its column is absent from the file: the existing value is kept. A column
/// that is present but empty clears the value (for `groups`: back to the role's defaults).
public struct RosterRow: Hashable, Sendable {
    public var line: Int
    public var houseID: String
    public var building: String?
    public var unit: String?
    public var floor: String?
    public var room: String?
    /// `.some(nil)`: present and empty (no limit).
    public var parkingSpaces: Int??
    public var personID: String
    public var name: String?
    public var role: Role?
    public var phone: String?
    /// `.some(nil)`: present and empty (unbounded).
    public var validFrom: UnixSeconds??
    public var validUntil: UnixSeconds??
    public var cards: [UInt64]?
    public var plates: [String]?
    public var groups: [String]?
    public var status: PersonStatus?
}

/// Reads the header and validates each row on its own; what needs the database (houses, groups,
/// credentials owned by others) is checked by the store.
public struct RosterCSVSchema: Sendable {
    public let columns: [RosterColumn]
    let zone: ZoneRules

    /// Validates the header: every column known, none twice, `house_id` and `person_id` present.
    public init(header: CSVRecord, zone: ZoneRules) throws(RosterIssue) {
        var columns: [RosterColumn] = []
        var problems: [String] = []
        for name in header.fields {
            let trimmed = name.trimmingSpaces
            if let column = RosterColumn(rawValue: trimmed) {
                if columns.contains(column) { problems.append("column \"\(trimmed)\" appears twice") }
                columns.append(column)
            } else {
                let known = RosterColumn.allCases.map(\.rawValue).joined(separator: ", ")
                problems.append("unknown column \"\(trimmed)\" (known: \(known))")
            }
        }
        for required in [RosterColumn.houseID, .personID] where !columns.contains(required) {
            problems.append("required column \"\(required.rawValue)\" is missing")
        }
        if !problems.isEmpty {
            throw RosterIssue(line: header.line, column: "header", problem: problems.joined(separator: "; "))
        }
        self.columns = columns
        self.zone = zone
    }

    /// Validates one record, returning the row or every problem found in it.
    public func row(_ record: CSVRecord) -> Result<RosterRow, RosterIssues> {
        var issues: [RosterIssue] = []
        func issue(_ column: RosterColumn, _ problem: String) {
            issues.append(RosterIssue(line: record.line, column: column.rawValue, problem: problem))
        }
        if record.fields.count != columns.count {
            return .failure(RosterIssues([RosterIssue(
                line: record.line, column: "row",
                problem: "has \(record.fields.count) fields, the header has \(columns.count)"
            )]))
        }
        var row = RosterRow(line: record.line, houseID: "", personID: "")
        for (column, raw) in zip(columns, record.fields) {
            let value = raw.trimmingSpaces
            switch column {
            case .houseID:
                if let problem = Self.identifierProblem(value) { issue(column, problem) }
                row.houseID = value
            case .personID:
                if let problem = Self.identifierProblem(value) { issue(column, problem) }
                row.personID = value
            case .building: row.building = value
            case .unit: row.unit = value
            case .floor: row.floor = value
            case .room: row.room = value
            case .parkingSpaces:
                if value.isEmpty {
                    row.parkingSpaces = .some(nil)
                } else if let n = Int(value), (0...10_000).contains(n) {
                    row.parkingSpaces = n
                } else {
                    issue(column, "\"\(value)\" is not a number of parking spaces (0-10000; empty: no limit)")
                }
            case .name: row.name = value
            case .phone:
                if !value.isEmpty, !value.allSatisfy({ $0.isASCII && ($0.isNumber || "+- ".contains($0)) }) {
                    issue(column, "\"\(value)\" is not a phone number")
                }
                row.phone = value
            case .role:
                if value.isEmpty {
                    row.role = nil
                } else if let role = Role(rawValue: value) {
                    row.role = role
                } else {
                    issue(column, "\"\(value)\" is not a role (owner, family, tenant, staff, visitor)")
                }
            case .status:
                if value.isEmpty {
                    row.status = .active
                } else if let status = PersonStatus(rawValue: value) {
                    row.status = status
                } else {
                    issue(column, "\"\(value)\" is not a status (active, suspended, blacklisted)")
                }
            case .validFrom, .validUntil:
                let isUntil = column == .validUntil
                if value.isEmpty {
                    if isUntil { row.validUntil = .some(nil) } else { row.validFrom = .some(nil) }
                } else if let instant = ISO8601.parse(value, zone: zone, dateOnly: isUntil ? .endOfDay : .startOfDay) {
                    if isUntil { row.validUntil = instant } else { row.validFrom = instant }
                } else {
                    issue(column, "\"\(value)\" is not a date (YYYY-MM-DD) or a date-time with offset (2026-12-31T18:00:00+08:00)")
                }
            case .cards:
                var cards: [UInt64] = []
                for item in Self.list(value) {
                    do { cards.append(try CredentialValue.card(item)) } catch { issue(column, error.description) }
                }
                if Set(cards).count != cards.count { issue(column, "a card is listed twice") }
                row.cards = cards
            case .plates:
                var plates: [String] = []
                for item in Self.list(value) {
                    do { plates.append(try CredentialValue.plate(item)) } catch { issue(column, error.description) }
                }
                if Set(plates).count != plates.count { issue(column, "a plate is listed twice") }
                row.plates = plates
            case .groups:
                row.groups = Self.list(value)
            }
        }
        if let from = row.validFrom ?? nil, let until = row.validUntil ?? nil, from >= until {
            issues.append(RosterIssue(line: record.line, column: "valid_until", problem: "is not after valid_from"))
        }
        return issues.isEmpty ? .success(row) : .failure(RosterIssues(issues))
    }

    static func list(_ value: String) -> [String] {
        value.split(separator: ";").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
    }

    /// Ids are printable, without separators that would break CSV lists or event ids.
    public static func identifierProblem(_ value: String) -> String? {
        if value.isEmpty { return "is required" }
        if value.utf8.count > 128 || value.unicodeScalars.count > 64 { return "\"\(value.prefix(20))…\" is longer than 64 characters" }
        for scalar in value.unicodeScalars {
            switch scalar {
            case ";", ",", ":", "\"", "/":
                return "\"\(value)\" may not contain spaces, ';', ',', ':', '/' or quotes"
            default:
                if scalar.value < 0x21 || (scalar.value >= 0x80 && scalar.properties.isWhitespace) || scalar.value == 0x7F {
                    return "\"\(value)\" may not contain spaces, ';', ',', ':', '/' or quotes"
                }
            }
        }
        return nil
    }
}

/// Several problems at once.
public struct RosterIssues: Error, Hashable, Sendable {
    public var issues: [RosterIssue]
    public init(_ issues: [RosterIssue]) { self.issues = issues }
}
