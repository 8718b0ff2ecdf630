import AccessCore

/// What `accessd --check-config` checks before a start: the site description, the board map and
/// every Modbus device map it names, and that each line a door, the linkage or a fence zone uses is
/// on the board with the right direction. Reads files only: no line is requested and the database
/// is not opened, so it can run as systemd's `ExecStartPre=` and on an installer's laptop.
extension SiteConfig {
    /// Every problem found, each as `FILE:LINE: key: problem`; empty when accessd can start.
    /// A config that does not parse stops the check at its first error (the rest of the file is
    /// unknown then).
    public static func check(path: String) -> (config: SiteConfig?, errors: [ConfigError]) {
        let config: SiteConfig
        do {
            config = try SiteConfig.load(path: path)
        } catch {
            return (nil, [error])
        }
        // Secrets others may read: the same check accessd makes before it starts.
        var errors: [ConfigError] = config.secretFileProblems()
        func problem(_ key: String, _ text: String) {
            errors.append(ConfigError(file: config.source, line: nil, key: key, problem: text))
        }
        var maps: [String] = []
        for spec in config.modbusDevices where !maps.contains(spec.map) { maps.append(spec.map) }
        for map in maps {
            do {
                _ = try DeviceMap.load(path: map)
            } catch {
                errors.append(error)
            }
        }
        guard let board = config.board else {
            problem("board", "accessd needs a [board] table (map, simulated)")
            return (config, errors)
        }
        let map: BoardMap
        do {
            map = try BoardMap.load(path: board.map)
        } catch {
            errors.append(error)
            return (config, errors)
        }
        let outputs = Set(map.outputs.map(\.name))
        let inputs = Set(map.inputs.map(\.name))
        let readers = map.readerNames
        let where_ = "not in the board map \(board.map)"
        for door in config.doors {
            if !outputs.contains(door.lock) { problem("door \(door.id).lock", "output \"\(door.lock)\" \(where_)") }
            for (key, line) in [("contact", door.contact), ("exit", door.exitButton)] {
                if let line, !inputs.contains(line) { problem("door \(door.id).\(key)", "input \"\(line)\" \(where_)") }
            }
            for portal in door.portals {
                for reader in config.portals.first(where: { $0.id == portal })?.readers ?? [] where !readers.contains(reader) {
                    // A barrier portal's readers are plate cameras on the network, not board lines.
                    problem("portal \(portal).readers", "reader \"\(reader)\" \(where_)")
                }
            }
        }
        for (key, lines) in [("linkage.fire", config.linkage.fire), ("linkage.call", config.linkage.call),
                             ("linkage.tamper", config.linkage.tamper)] {
            for line in lines where !inputs.contains(line) { problem(key, "input \"\(line)\" \(where_)") }
        }
        for reader in map.siteReaders {
            if let line = reader.tamper, config.linkage.tamper.contains(line) {
                problem("linkage.tamper", "\(line) is reader \(reader.name)'s tamper input in the board map: remove it here")
            }
        }
        for zone in config.fenceZones {
            for line in zone.outputs where !outputs.contains(line) { problem("fence \(zone.portal).outputs", "output \"\(line)\" \(where_)") }
        }
        for (key, text) in config.barrierLineProblems(map, mapFile: board.map) { problem(key, text) }
        return (config, errors)
    }

    /// Each dry-contact lane's lines: on the board, with the role they play there (a lock relay
    /// is never pulsed as a barrier's OPEN). Keys as `barrier PORTAL.open`.
    public func barrierLineProblems(_ map: BoardMap, mapFile: String) -> [(key: String, problem: String)] {
        var problems: [(key: String, problem: String)] = []
        for barrier in barriers {
            guard let c = barrier.contacts else { continue }
            let outputs: [(String, String?, BoardMap.OutputRole)] = [("open", c.open, .barrierOpen), ("close", c.close, .barrierClose),
                                                                     ("stop", c.stop, .barrierStop)]
            for case let (key, line?, role) in outputs {
                guard let output = map.outputs.first(where: { $0.name == line }) else {
                    problems.append(("barrier \(barrier.portal).\(key)", "output \"\(line)\" not in the board map \(mapFile)"))
                    continue
                }
                if output.role != role {
                    problems.append(("barrier \(barrier.portal).\(key)", "output \"\(line)\" is a \(output.role.rawValue) line, not \(role.rawValue)"))
                }
            }
            let inputs: [(String, String?, BoardMap.InputRole)] = [("loop", c.loop, .loop), ("infrared", c.infrared, .infrared),
                                                                   ("raised", c.raised, .barrierRaised), ("lowered", c.lowered, .barrierLowered)]
            for case let (key, line?, role) in inputs {
                guard let input = map.inputs.first(where: { $0.name == line }) else {
                    problems.append(("barrier \(barrier.portal).\(key)", "input \"\(line)\" not in the board map \(mapFile)"))
                    continue
                }
                if input.role != role {
                    problems.append(("barrier \(barrier.portal).\(key)", "input \"\(line)\" is a \(input.role.rawValue) line, not \(role.rawValue)"))
                }
            }
        }
        return problems
    }
}
