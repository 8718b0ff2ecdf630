/// A fact to keep beside the event log, written in the same transaction as the events of its step.
public enum SiteRecord: Sendable, Equatable {
    /// A visitor pass's entry was used.
    case passUse(String)
    /// Anti-passback: where a subject now is.
    case passage(subject: String, area: String, at: UnixSeconds)
    /// An operator's command at portals (`door.open`, `barrier.close`, `fence.disarm` …): the
    /// audit record, and the portals' standing mode when the command sets one.
    case operatorCommand(portals: [String], action: String, mode: PortalMode?, operator: String)
    /// An operator's command that is not at a portal (`reader.reset`, `apb.reset`): the audit record.
    case audit(action: String, target: String, operator: String)
    /// Parking: the vehicles now inside under a key (`house:ID` or `visitors`).
    case parking(key: String, inside: Int)
    /// Anti-passback: these subjects' recorded locations are forgotten.
    case forgetPassages([String])
}

/// The answer to an operator's command.
public enum SiteReply: Sendable, Equatable {
    /// Carried out; the portal's state afterwards (`released`, `locked`, `armed`, `alarm` …).
    case done([String: Bool])
    /// Not carried out, and why (an emergency zone cannot be disarmed …).
    case refused(String)
    /// The portal has no door, lane or fence zone for this command.
    case unknownPortal(String)
    /// The reader or person the command names does not exist (or has nothing to command).
    case notFound(String)
}

/// Something the operator of a site should hear about that is not an event of the log.
public enum SiteNotice: Sendable, Equatable {
    case garbledFrame(reader: String, problem: String)
    case gpioOverrun(line: String)
    case deviceOnline(String, Bool)
    case deviceCommandFailed(device: String, command: FieldCommand, error: String)
    case armScheduleMissing(schedule: String, portal: String)
    /// A door's normally-open schedule is not in the roster: the plan holds nothing open.
    case planScheduleMissing(schedule: String, door: String)
    case clock(EventClock.Change)
    case clockUnsetAtStart
}

/// What a step asks of the world, in order. The interpreter drives `lock` and `output` first (the
/// relay never waits), then sends device commands, then hands events and records to the writer.
public enum SiteEffect: Sendable, Equatable {
    /// Release (true) or lock a door's lock (index into the layout's doors).
    case lock(door: Int, released: Bool)
    /// Switch a board output (fence sirens and lights, reader LEDs and beepers).
    case output(String, on: Bool)
    case command(FieldCommand, device: String)
    case log(AccessEvent)
    case record(SiteRecord)
    case reply(SiteReply)
    case notice(SiteNotice)
}
