import AccessConfig
import AccessControlProtocol
import AccessCore
import AccessDevices
import AccessRuntime

/// The control socket's server side: each typed request (`ControlRequest`, whose documentation
/// gives the wire format) becomes a call of the controller's public API.
extension Controller {
    /// Answers one request as it came off the wire from `caller`: `"ok": true` and the result, or
    /// `"ok": false` and `"error"`.
    public func handleControl(_ request: JSON, caller: PeerCredentials) -> JSON {
        do {
            return try handleControl(ControlRequest(json: request), caller: caller).json
        } catch {
            return ControlReply.failure("\(error)")
        }
    }

    /// Carries out one typed request from `caller`. Door, lane, fence, reader and anti-passback commands are recorded
    /// as the caller's Unix user; the operator name in the request is kept as a note beside it.
    public func handleControl(_ request: ControlRequest, caller: PeerCredentials) throws -> ControlReply {
        func who(_ typed: String) -> String { OperatorIdentity(user: caller.user.name, note: typed).recorded }
        func simulated() throws -> SimulatedBoard {
            guard let board = attachedBoard as? SimulatedBoard else {
                throw ControlError.unknown("accessd is driving real hardware, not the simulated board")
            }
            return board
        }
        switch request {
        case .status:
            let c = counters
            let latency = metrics.swipeToRelay
            let field = fieldStates
            return .status(ControlStatus(
                controller: config.controller.id, decisions: c.decisions, granted: c.granted, garbledFrames: c.garbled,
                gpioOverruns: c.overruns, eventStoreFailures: storeFailures,
                swipeToRelay: .init(count: latency.count, p50: latency.p50, p99: latency.p99, max: latency.max),
                doors: doorStates.map { .init(id: $0.id, mode: $0.mode, released: $0.released, fire: $0.fire) },
                lanes: field.lanes.map {
                    .init(portal: $0.portal, position: BarrierPosition(rawValue: $0.position) ?? .unknown, loopOccupied: $0.loop, locked: $0.locked)
                },
                fenceZones: field.zones.map { .init(portal: $0.portal, armed: $0.armed, latched: $0.latched) },
                readers: readerStates.map { .init(reader: $0.reader, portal: $0.portal, tamper: $0.tamper) },
                parking: parkingStates.map { .init(key: $0.key, inside: $0.inside, spaces: $0.spaces) },
                fleet: fleetStatus()))
        case .metrics:
            return .metrics(text: metrics.render())
        case .door(let portal, let command, let typed):
            return .portal(PortalState(try door(portal: portal, command: command, operator: who(typed))))
        case .fence(let portal, let wire, let typed):
            guard let command = FenceCommand(rawValue: wire.rawValue) else {
                throw ControlError.malformed("command must be one of \(FenceCommand.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return .portal(PortalState(try fence(portal: portal, command: command, operator: who(typed))))
        case .reader(let name, let command, let typed):
            return .portal(PortalState(try reader(name, command: command, operator: who(typed))))
        case .antiPassbackReset(let person, let typed):
            return .antiPassbackReset(cleared: try resetAntiPassback(person: person, operator: who(typed))["cleared"] ?? false)
        case .simLoop(let lane, let occupied):
            // The lane's portal or any of its readers (the plate camera's name).
            let portal = config.portals.first { $0.id == lane || $0.readers.contains(lane) }?.id
            guard let barrier = config.barriers.first(where: { $0.portal == portal }) else {
                throw ControlError.unknown("no barrier lane \(lane)")
            }
            guard let device = barrier.device else {
                // A dry-contact lane: its loop (or beam) input on the simulated board.
                guard let line = barrier.contacts?.loop ?? barrier.contacts?.infrared else { throw ControlError.unknown("no loop at \(lane)") }
                try simulated().setInput(line, active: occupied)
                return .done
            }
            guard let gate = simulatedGate(device) else { throw ControlError.unknown("the gate of \(lane) is not simulated") }
            gate.setLoop(occupied: occupied)
            return .done
        case .simFence(let device, let zone, let kind, let on):
            guard let alarm = FenceAlarm(rawValue: kind.rawValue) else {
                throw ControlError.malformed("alarm must be one of \(FenceAlarm.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let host = simulatedFenceHost(device) else { throw ControlError.unknown("no simulated fence host \(device)") }
            try host.setAlarm(alarm, zone: zone, on: on)
            return .done
        case .simDevice(let device, let online):
            if let gate = simulatedGate(device) {
                gate.setOffline(!online)
            } else if let host = simulatedFenceHost(device) {
                host.setOffline(!online)
            } else {
                throw ControlError.unknown("no simulated device \(device)")
            }
            return .done
        case .simSwipe(let reader, let card):
            try simulated().swipe(reader: reader, card: card)
            return .decision(lastDecision(at: reader).map(ControlDecision.init))
        case .simKeys(let reader, let keys):
            try simulated().keys(reader: reader, keys)
            return .decision(keys.last == .hash ? lastDecision(at: reader).map(ControlDecision.init) : nil)
        case .simQR(let reader, let code):
            return .decision(try simulatedQR(reader: reader, code: code).map(ControlDecision.init))
        case .simPlate(let lane, let plate):
            guard let decision = self.plate(lane: lane, plate: plate) else {
                throw ControlError.unknown("no portal has a reader or lane named \(lane)")
            }
            return .decision(ControlDecision(decision))
        case .simInput(let line, let active):
            try simulated().setInput(line, active: active)
            return .done
        case .simOutputs:
            return .outputs(try simulated().outputs)
        }
    }
}
