import AccessCore
import AccessStore
import AccessTestSupport
import Foundation
import Testing

@Suite("A consistent copy of a live database")
struct DatabaseCopyTests {
    @Test func theCopyHoldsWhatIsStillInTheWALAndNeverOverwrites() throws {
        let dir = TemporaryDirectory()
        let live = try AccessDatabase(path: dir.file("live.db"))
        try live.addHouse(House(id: "H1", building: "B01"), operator: "t")
        try live.addPerson(Person(id: "P1", houses: [HouseBinding(houseID: "H1", role: .owner)]), operator: "t")
        try live.addCredential(Credential(kind: .card, value: "1234567", owner: .person("P1")), operator: "t")
        // The connection stays open: the last commits are in the WAL, not yet in the file.
        #expect((try? FileManager.default.attributesOfItem(atPath: dir.file("live.db-wal"))[.size] as? Int).map { $0 > 0 } == true)

        try live.copy(to: dir.file("copy.db"))
        let copy = try AccessDatabase(path: dir.file("copy.db"), create: false)
        try copy.integrityCheck()
        #expect(try copy.credential(kind: .card, value: "1234567")?.owner == .person("P1"))
        #expect(try copy.fleetDigest() == live.fleetDigest())

        // Readable by no more than the database itself (accessd refuses one that others may read).
        var original = stat(), copied = stat()
        #expect(stat(dir.file("live.db"), &original) == 0 && stat(dir.file("copy.db"), &copied) == 0)
        #expect(copied.st_mode & 0o007 == 0, "others may not read the copy: \(String(copied.st_mode & 0o777, radix: 8))")
        #expect(copied.st_mode & 0o777 & ~original.st_mode == 0, "no more than the database's own permissions")

        // An existing file is not overwritten, and says so.
        let again = #expect(throws: StoreError.self) { try live.copy(to: dir.file("copy.db")) }
        #expect("\(again.map { "\($0)" } ?? "")".contains("exists"), "\(String(describing: again))")
        #expect(try AccessDatabase(path: dir.file("copy.db"), create: false).credential(kind: .card, value: "1234567") != nil)
    }
}
