import AccessConfig
import AccessCore
import AccessTestSupport
import Testing

@Suite("Site configuration")
struct ConfigTests {
    static let minimal = """
        [controller]
        id = "xfl-north-1"
        community = "幸福里小区"

        [database]
        path = "/tmp/x.db"

        [[portal]]
        id = "gate-in"
        kind = "door"

        [[portal]]
        id = "lane-in"
        kind = "barrier"
        readers = ["lpr-1"]
        """

    func parse(_ text: String) throws(ConfigError) -> SiteConfig {
        let dir = TemporaryDirectory()
        return try SiteConfig.load(path: dir.write("site.toml", text))
    }

    func error(_ text: String) -> String? {
        do {
            _ = try parse(text)
            return nil
        } catch {
            return "\(error.line.map(String.init) ?? "-"): \(error.key): \(error.problem)"
        }
    }

    @Test func fleetIsReadAndAnOfficeNeedsNoDatabase() throws {
        let controller = try parse(Self.minimal + """

            [fleet]
            servers = ["nats://10.0.0.5:4222", "nats://10.0.0.6:4222", "nats://10.0.0.7:4222"]
            community = "xfl"
            user = "xfl-north-1"
            password_file = "/etc/accessd/fleet.password"
            """)
        #expect(controller.fleet?.replicas == 3)
        #expect(controller.isOffice == false)
        #expect(controller.databasePath == "/tmp/x.db")
        let office = try parse("""
            [controller]
            id = "office"

            [fleet]
            servers = ["nats://127.0.0.1:4222"]
            community = "xfl"
            """)
        #expect(office.isOffice)
        #expect(office.fleet?.replicas == 1)
        #expect(office.databasePath.hasSuffix("/communityaccess/office-xfl.db"))
    }

    @Test(arguments: [
        ("servers = []\ncommunity = \"x\"", "fleet.servers: at least one server URL is required"),
        ("servers = [\"http://a:1\"]\ncommunity = \"x\"", "fleet.servers: \"http://a:1\" is not a nats:// or tls:// URL"),
        ("servers = [\"nats://a:1\"]\ncommunity = \"x y\"", "fleet.community: \"x y\" is not a community name"),
        ("servers = [\"nats://a:1\"]\ncommunity = \"x\"\npassword_file = \"/p\"", "fleet.password_file: needs fleet.user"),
        ("servers = [\"nats://a:1\"]\ncommunity = \"x\"\nuser = \"u\"\ncreds_file = \"/c\"", "fleet.creds_file: is instead of"),
        ("servers = [\"nats://a:1\"]\ncommunity = \"x\"\nsubject = \"s\"", "fleet.subject"),
    ])
    func badFleetKeysAreNamed(body: String, expected: String) {
        let message = error("[controller]\nid = \"office\"\n[fleet]\n" + body)
        #expect(message?.contains(expected) == true, "\(message ?? "accepted")")
    }

    /// toml++ aborted the process on a control character in a key (found by ConfigFuzzTests).
    @Test func controlCharactersAreRefusedWithTheirLine() {
        #expect(error(Self.minimal + "\n[[\u{7F}modbus.bus]]\n") == "16: syntax: the control character U+007F is not allowed in TOML")
        #expect(error("[controller]\nid = \"a\u{01}b\"\n") == "2: syntax: the control character U+0001 is not allowed in TOML")
        #expect(error("# comment\r\n[controller]\rid = 1\n") == "2: syntax: a carriage return without a line feed is not allowed in TOML")
        #expect(error(Self.minimal.replacingOccurrences(of: "\n", with: "\r\n") + "\t# tabs and CRLF are fine\r\n") == nil)
        #expect(error(Self.minimal + "\n[门禁]\n") == "16: syntax: a table name cannot start with \"门\" (use letters, digits, _ and -, or quote the name)")
        #expect(error(Self.minimal + "\n  [[ #x]]\n") == "16: syntax: a table name cannot start with \"#\" (use letters, digits, _ and -, or quote the name)")
        #expect(error(Self.minimal + "\n[[\nportal]]\n") == "16: syntax: a table header must name its table on the same line")
        // Brackets inside values and strings are not headers; a quoted name may be anything.
        let values = #"""
            [controller]
            id = "x"
            note = """
            [门禁] is not a header here
            """
            [database]
            path = "/tmp/x.db"
            [[portal]]
            id = "gate-in"
            readers = [
              "r1", # [门禁]
            ]
            ["quoted 门禁"]
            """#
        #expect(error(values)?.contains("table name") != true, "\(error(values) ?? "loaded")")
    }

    @Test func minimalConfigIsEnoughForAccessctl() throws {
        let c = try parse(Self.minimal)
        #expect(c.controller.id == "xfl-north-1")
        #expect(c.controller.timeZone.identifier == "Asia/Shanghai")
        #expect(c.portals.map(\.id) == ["gate-in", "lane-in"])
        #expect(c.portals[1].kind == .barrier)
        #expect(c.portals[0].direction == .in && c.portals[0].fromArea == "outside" && c.portals[0].toArea == "community")
        #expect(c.portals[1].readers == ["lpr-1"])
        #expect(c.http == nil && c.mqtt == nil)
        #expect(c.gate == GateSettings(), "[gate] absent: 15 s for the PIN, 3 s repeats, 5 wrong attempts in 60 s lock for 180 s")
        #expect(c.portals[0].verify == nil)
    }

    @Test func verifyModesAndGateSettingsAreRead() throws {
        let c = try parse(Self.minimal.replacingOccurrences(of: "kind = \"door\"", with: "kind = \"door\"\nverify = \"card_and_pin\"\nverify_schedule = \"night\"")
                          + "\n[gate]\npin_after_card_seconds = 20\nrepeat_read_seconds = 0\nwrong_attempts = 3\nwrong_attempt_window_seconds = 30\nlockout_seconds = 600\n")
        #expect(c.portals[0].verify == .cardAndPin && c.portals[0].verifySchedule == "night")
        #expect(c.gate == GateSettings(pinAfterCardSeconds: 20, repeatReadSeconds: 0, wrongAttemptLimit: 3, wrongAttemptWindowSeconds: 30,
                                       lockoutSeconds: 600))
        #expect(c.layout.gate == c.gate)
    }

    @Test func doorStatusPlansAndMultiCardAreRead() throws {
        let c = try parse(Self.minimal.replacingOccurrences(of: "kind = \"door\"", with: "kind = \"door\"\nmulti_card = 3\nmulti_card_seconds = 45")
                          + "\nmulti_card = 2\n[[door]]\nid = \"d1\"\nportals = [\"gate-in\"]\nlock = \"l\"\nnormally_open_schedule = \"day\"\nfirst_card_group = \"managers\"\n")
        #expect(c.portals[0].multiCard == MultiCardRule(cards: 3, seconds: 45))
        #expect(c.portals[1].multiCard == MultiCardRule(cards: 2, seconds: 30), "30 s unless said")
        #expect(c.layout.doors[0].normallyOpenSchedule == "day" && c.layout.doors[0].firstCardGroup == "managers")
        let plain = try parse(Self.minimal + "\n[[door]]\nid = \"d1\"\nportals = [\"gate-in\"]\nlock = \"l\"\n")
        #expect(plain.portals[0].multiCard == nil && plain.layout.doors[0].normallyOpenSchedule == nil && plain.layout.doors[0].firstCardGroup == nil)
    }

    @Test func theControlSocketsGroupIsOptional() throws {
        #expect(try parse(Self.minimal).controlSocketGroup == nil)
        let c = try parse(Self.minimal + "\n[control]\nsocket = \"/run/accessd/control.sock\"\ngroup = \"accessd-operators\"\n")
        #expect(c.controlSocket == "/run/accessd/control.sock" && c.controlSocketGroup == "accessd-operators")
    }

    @Test func thePinKeyFileIsBesideTheDatabaseUnlessNamed() throws {
        #expect(try parse(Self.minimal).pinKeyPath == SiteConfig.defaultPinKeyPath(database: try parse(Self.minimal).databasePath))
        #expect(SiteConfig.defaultPinKeyPath(database: "/var/lib/accessd/access.db") == "/var/lib/accessd/access.pin-key")
        let named = try parse(Self.minimal + "\n[security]\npin_key_file = \"/etc/accessd/pin.key\"\n")
        #expect(named.pinKeyPath == "/etc/accessd/pin.key" && named.secretFiles.first?.path == "/etc/accessd/pin.key")
        let error = #expect(throws: ConfigError.self) { try parse(Self.minimal + "\n[security]\npin_file = \"k\"\n") }
        #expect("\(error!)".contains("security.pin_file: unknown key"), "\(error!)")
    }

    @Test func shippedConfigsParse() throws {
        for name in ["accessd-sim.toml", "accessd.toml"] {
            let path = #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
            let c = try SiteConfig.load(path: "/\(path)/Config/\(name)")
            #expect(!c.portals.isEmpty, "\(name)")
        }
    }

    @Test(arguments: [
        (minimal.replacingOccurrences(of: "kind = \"barrier\"", with: "kind = \"barier\""), "14: portal[1].kind: \"barier\" is not one of door, barrier, fence"),
        (minimal + "\ncolour = \"red\"\n", "16: portal[1].colour: unknown key (known here: id, kind, direction, from_area, to_area, building, readers, verify, verify_schedule, multi_card, multi_card_seconds)"),
        (minimal + "\nmulti_card = 1\n", "16: portal[1].multi_card: 1 is out of range 2…10"),
        (minimal + "\nmulti_card_seconds = 20\n", "16: portal[1].multi_card_seconds: times a multi-card opening: give multi_card (how many people) too"),
        (minimal + "\n[[door]]\nid = \"d1\"\nportals = [\"gate-in\"]\nlock = \"l\"\nfirst_card_group = \"managers\"\n",
         "20: door[0].first_card_group: first-card applies within a normally-open plan: give normally_open_schedule too"),
        (minimal + "\nverify = \"card_plus_pin\"\n", "16: portal[1].verify: \"card_plus_pin\" is not one of card, pin, card_or_pin, card_and_pin"),
        (minimal + "\nverify_schedule = \"night\"\n", "16: portal[1].verify_schedule: applies a verify mode: give verify too"),
        (minimal + "\n[[door]]\nid = \"d1\"\nportals = [\"gate-in\"]\nlock = \"l\"\n[[interlock]]\ndoors = [\"d1\", \"d2\"]\n",
         "21: interlock[0].doors: no door \"d2\""),
        (minimal + "\n[[door]]\nid = \"d1\"\nportals = [\"gate-in\"]\nlock = \"l\"\n[[interlock]]\ndoors = [\"d1\"]\n",
         "21: interlock[0].doors: name two or more different doors"),
        (minimal + "\n[gate]\nwrong_attempts = 9\n", "17: gate.wrong_attempts: 9 is out of range 0…5"),
        (minimal + "\n[gate]\nlockout = 60\n", "17: gate.lockout: unknown key (known here: pin_after_card_seconds, repeat_read_seconds, wrong_attempts, wrong_attempt_window_seconds, lockout_seconds)"),
        (minimal.replacingOccurrences(of: "community = \"幸福里小区\"", with: "time_zone = \"Asia/Shangai\""), "3: controller.time_zone: \"Asia/Shangai\" is not a known IANA time zone (e.g. Asia/Shanghai)"),
        (minimal.replacingOccurrences(of: "id = \"lane-in\"", with: "id = \"gate-in\""), "13: portal[1].id: \"gate-in\" is already the id of portal[0]"),
        (minimal.replacingOccurrences(of: "path = \"/tmp/x.db\"", with: "path = 7"), "6: database.path: must be a string, not a integer"),
        (minimal.replacingOccurrences(of: "[database]\npath = \"/tmp/x.db\"\n", with: ""), "-: database: the table [database] is required"),
        (minimal + "\n[upstream.http]\nlisten = \"localhost\"\n", "17: upstream.http.listen: \"localhost\" is not host:port"),
        (minimal + "\n[[area]]\nid = \"moon\"\n", "17: area[0].id: no portal joins an area \"moon\" (known: community, outside)"),
        (minimal + "\n[[modbus.bus]]\nid = \"b\"\ntransport = \"can\"\n", "18: modbus.bus[0].transport: \"can\" is not one of rtu, tcp, simulated"),
        (minimal + "\n[[modbus.bus]]\nid = \"b\"\ntransport = \"tcp\"\nhost = \"10.0.0.9\"\nport = 70000\n", "20: modbus.bus[0].port: 70000 is out of range 1…65535"),
        (minimal + "\n[[modbus.bus]]\nid = \"b\"\ntransport = \"rtu\"\ndevice = \"/dev/ttyS1\"\nparity = \"X\"\n", "20: modbus.bus[0].parity: \"X\" is not one of N, E, O"),
        (minimal + "\n[[modbus.device]]\nid = \"g\"\nbus = \"nope\"\nmap = \"x.toml\"\n", "18: modbus.device[0].bus: no [[modbus.bus]] has id \"nope\""),
        (minimal + "\n[[modbus.bus]]\nid = \"b\"\ntransport = \"simulated\"\n[[modbus.device]]\nid = \"g\"\nbus = \"b\"\nmap = \"x.toml\"\n[[barrier]]\nportal = \"gate-in\"\ndevice = \"g\"\n",
         "24: barrier[0].portal: portal \"gate-in\" is a door, not a barrier"),
        (minimal + "\n[[modbus.bus]]\nid = \"b\"\ntransport = \"simulated\"\n[[fence]]\nportal = \"lane-in\"\ndevice = \"g\"\n",
         "20: fence[0].portal: portal \"lane-in\" is a barrier, not a fence"),
        (minimal + "\n[[barrier]]\nportal = \"lane-in\"\ndevice = \"g\"\nopen = \"o\"\n",
         "19: barrier[0].open: a lane's gate is a Modbus device or a barrier on dry contacts, not both"),
        (minimal + "\n[[barrier]]\nportal = \"lane-in\"\n",
         "16: barrier[0].device: give device (a Modbus barrier gate) or open, close, raised, lowered and loop (a barrier controller on the board's dry contacts)"),
        (minimal + "\n[[barrier]]\nportal = \"lane-in\"\nopen = \"o\"\nclose = \"c\"\nloop = \"l\"\nraised = \"u\"\n",
         "16: barrier[0].lowered: is required"),
        (minimal + "\n[[barrier]]\nportal = \"lane-in\"\nopen = \"o\"\nclose = \"c\"\nraised = \"u\"\nlowered = \"d\"\n",
         "16: barrier[0].loop: a barrier on dry contacts needs loop or infrared: the lane must see a vehicle under the arm"),
        (minimal + "\n[[barrier]]\nportal = \"lane-in\"\nopen = \"o\"\nclose = \"c\"\nraised = \"u\"\nlowered = \"d\"\ninfrared = \"u\"\n",
         "20: barrier[0].raised: line \"u\" is already this lane's infrared"),
        (minimal + "\n[[barrier]]\nportal = \"lane-in\"\nopen = \"o\"\nclose = \"c\"\nraised = \"u\"\nlowered = \"d\"\nloop = \"l\"\npulse_ms = 20\n",
         "23: barrier[0].pulse_ms: 20 is out of range 100…5000"),
        ("[controller\nid = 1", "1: syntax: Error while parsing table header: expected ']', saw '\\n'"),
    ])
    func mistakesNameTheLineAndKey(_ text: String, _ expected: String) {
        #expect(error(text) == expected)
    }

    @Test func missingFileIsNamed() {
        #expect(throws: ConfigError.self) { try SiteConfig.load(path: "/nonexistent/accessd.toml") }
    }
}
