import AccessControlProtocol
import AccessCore
import AccessCtlKit
import AccessStore
import AccessTestSupport
import Foundation
import Testing

/// accessctl's gate-feature commands: resident codes and the simulated QR reader.
@Suite("accessctl at the gate")
struct GateCLITests {
    @Test func aResidentCodeOpensWhatTheirCardOpensForAMinuteOnly() throws {
        let cli = CLI()
        cli.seed()
        let made = cli.run("person", "qr", "P1", "--json")
        #expect(made.code == 0, "\(made.err)")
        guard case .string(let code)? = made.json?["code"], case .string(let expires)? = made.json?["expires"] else {
            Issue.record("no code in \(made.out)")
            return
        }
        #expect(made.json?["person_id"] == .string("P1") && made.json?["valid_seconds"] == .int(60))
        #expect(code.hasPrefix("CAR1.P1."))
        let now = cli.run("check", "--portal", "gate-in", "--qr", code, "--json")
        #expect(now.json?["granted"] == .bool(true) && now.json?["person_id"] == .string("P1"), "\(now.out)")
        #expect(cli.run("check", "--portal", "b01-door", "--qr", code, "--json").json?["granted"] == .bool(true))
        let later = cli.run("check", "--portal", "gate-in", "--qr", code, "--at", expires, "--json")
        #expect(later.json?["reason"] == .string("expired"), "\(later.out)")

        let text = cli.run("person", "qr", "P1")
        #expect(text.code == 0 && text.out.contains("code:     CAR1.P1.") && text.out.contains("█"))
        let missing = cli.run("person", "qr", "P404")
        #expect(missing.code != 0 && missing.err.contains("P404"))
    }

    @Test func aHousesParkingSpacesAreSetByCommandAndCSVAndCheckShowsParkingFull() throws {
        let cli = CLI()
        cli.seed()
        #expect(cli.run("house", "edit", "B01-U1-0301", "--parking-spaces", "1").code == 0)
        #expect(cli.run("house", "show", "B01-U1-0301").out.hasPrefix("house B01-U1-0301: building B01, unit 1, floor 3, room 0301, 1 parking space\n"))
        let bad = cli.run("house", "edit", "B01-U1-0301", "--parking-spaces", "lots")
        #expect(bad.code != 0 && bad.err.contains("--parking-spaces"))
        let free = cli.run("check", "--portal", "lane-in", "--plate", "京A12345", "--json")
        #expect(free.json?["reason"] == .string("granted"), "\(free.out)")
        // The controller has counted the house's one car in.
        try AccessDatabase(path: cli.dir.file("access.db")).recordParking(key: "house:B01-U1-0301", inside: 1)
        let full = cli.run("check", "--portal", "lane-in", "--plate", "京A12345", "--json")
        #expect(full.json?["reason"] == .string("parking_full") && full.json?["granted"] == .bool(false), "\(full.out)")
        #expect(cli.run("check", "--portal", "lane-in", "--plate", "京A12345").out.contains("every parking space of the plate's house"))
        #expect(cli.run("check", "--portal", "gate-in", "--card", "10023456", "--json").json?["reason"] == .string("granted"), "on foot: no space taken")

        let csv = cli.dir.write("roster.csv", "house_id,building,person_id,role,parking_spaces\nB02-U1-0101,B02,P2,owner,2\nB01-U1-0301,B01,P1,owner,\n")
        let imported = cli.run("import", csv)
        #expect(imported.code == 0, "\(imported.err)")
        #expect(cli.run("house", "show", "B02-U1-0101", "--json").json?["house"]?["parking_spaces"] == .int(2))
        #expect(cli.run("house", "show", "B01-U1-0301", "--json").json?["house"]?["parking_spaces"] == nil, "an empty cell: no limit")
        let refused = cli.run("import", cli.dir.write("bad.csv", "house_id,person_id,parking_spaces\nB02-U1-0101,P2,-1\n"))
        #expect(refused.code != 0 && refused.err.contains("bad.csv:2: parking_spaces:"))
    }

    @Test func simQRSendsTheCodeToAccessdAndPrintsTheDecision() throws {
        let site = try ControlCommandTests.Site { _ in
            ControlReply.decision(ControlDecision(granted: false, reason: .usesExhausted, personID: nil, houseID: "B01-0301", portal: "gate-in")).json
        }
        let r = site.run("sim", "qr", "qr-north-in", "CA1.V1.1795420800.00ff")
        #expect(r.code == 0, "\(r.err)")
        #expect(r.out == "DENIED: uses_exhausted\n")
        #expect(site.accessd.received.withLock { $0 } == [.simQR(reader: "qr-north-in", code: "CA1.V1.1795420800.00ff")])
        let repeated = try ControlCommandTests.Site { _ in ControlReply.decision(nil).json }
        #expect(repeated.run("sim", "qr", "qr-north-in", "CA1.V1.1795420800.00ff").out.hasPrefix("no decision (the same read again"))
    }

    @Test func aDuressPinIsAddedLikeAnyPinAndDecidesAsThePersonsPin() throws {
        let cli = CLI()
        cli.seed()
        let added = cli.run("pin", "add", "975310", "--person", "P1", "--duress", "--json")
        #expect(added.code == 0, "\(added.err)")
        #expect(added.json?["duress"] == .bool(true) && added.json?["value"] == .string("****"))
        #expect(cli.run("pin", "add", "246810", "--person", "P1", "--json").json?["duress"] == .bool(false))
        let check = cli.run("check", "--portal", "gate-in", "--pin", "975310", "--json")
        #expect(check.json?["granted"] == .bool(true) && check.json?["person_id"] == .string("P1"), "\(check.out)")
        let card = cli.run("card", "add", "1234", "--person", "P1", "--duress")
        #expect(card.code != 0 && card.err.contains("--duress is for PINs only"))
    }

    @Test func checkShowsTheTwoStepsOfACardAndPinDoor() throws {
        let cli = CLI()
        let text = try #require(readTextFile(cli.config))
        try #require(text.contains("building = \"B01\"\n"))
        _ = cli.dir.write("site.toml", text.replacing("building = \"B01\"\n", with: "building = \"B01\"\nverify = \"card_and_pin\"\n"))
        cli.seed()
        #expect(cli.run("pin", "add", "246810", "--person", "P1").code == 0)
        let card = cli.run("check", "--portal", "b01-door", "--card", "10023456", "--json")
        #expect(card.json?["reason"] == .string("pin_required") && card.json?["person_id"] == .string("P1"), "\(card.out) \(card.err)")
        #expect(card.json?["verify"] == .string("card_and_pin"))
        let both = cli.run("check", "--portal", "b01-door", "--card", "10023456", "--pin", "246810", "--json")
        #expect(both.json?["granted"] == .bool(true), "\(both.out)")
        #expect(cli.run("check", "--portal", "b01-door", "--card", "10023456", "--pin", "111111", "--json").json?["reason"] == .string("wrong_pin"))
        #expect(cli.run("check", "--portal", "b01-door", "--pin", "246810", "--json").json?["reason"] == .string("no_right"))
        #expect(cli.run("check", "--portal", "gate-in", "--card", "10023456", "--json").json?["verify"] == .null)
        let words = cli.run("check", "--portal", "b01-door", "--card", "10023456")
        #expect(words.out.contains("pin_required") && words.out.contains("its holder's own PIN"))
        #expect(cli.run("check", "--portal", "b01-door", "--plate", "京A12345", "--pin", "246810").code != 0, "--pin goes with --card only")
    }

    @Test func checkShowsAMultiCardDoorWaitingForMoreCards() throws {
        let cli = CLI()
        let text = try #require(readTextFile(cli.config))
        try #require(text.contains("building = \"B01\"\n"))
        _ = cli.dir.write("site.toml", text.replacing("building = \"B01\"\n", with: "building = \"B01\"\nmulti_card = 2\nmulti_card_seconds = 20\n"))
        cli.seed()
        let card = cli.run("check", "--portal", "b01-door", "--card", "10023456", "--json")
        #expect(card.json?["reason"] == .string("awaiting_more_cards") && card.json?["granted"] == .bool(false), "\(card.out) \(card.err)")
        #expect(card.json?["person_id"] == .string("P1"))
        #expect(card.json?["multi_card"]?["cards"] == .int(2) && card.json?["multi_card"]?["seconds"] == .int(20))
        let words = cli.run("check", "--portal", "b01-door", "--card", "10023456")
        #expect(words.out.hasPrefix("DENIED at b01-door") && words.out.contains("awaiting_more_cards"), "\(words.out)")
        #expect(words.out.contains("2 different people within 20 s"))
        #expect(cli.run("check", "--portal", "b01-door", "--card", "1", "--json").json?["reason"] == .string("unknown_credential"),
                "a refusal is shown as it is")
        #expect(cli.run("check", "--portal", "gate-in", "--card", "10023456", "--json").json?["multi_card"] == nil)
    }
}
