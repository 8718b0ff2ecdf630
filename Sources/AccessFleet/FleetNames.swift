/// The JetStream names of one community (interfaces.md, Fleet). The NATS permissions in
/// Config/fleet/ grant by these subjects, so they are fixed, not configurable.
public struct FleetNames: Sendable, Equatable {
    public let community: String

    public init(community: String) { self.community = community }

    /// The community's roster change sets, in order: the stream sequence is the community sequence.
    public var rosterStream: String { "ROSTER_" + community }
    public var rosterSubject: String { "access.\(community).roster" }
    /// The latest roster snapshot (RosterSnapshots), so the roster stream can be purged.
    public var snapshotStream: String { "ROSTER_SNAPSHOTS_" + community }
    public var snapshotSubject: String { "access.\(community).roster.snapshot" }
    /// Every controller's events.
    public var eventsStream: String { "EVENTS_" + community }
    public var eventsSubjects: String { "access.\(community).events.>" }
    public func eventsSubject(controller: String, type: String) -> String { "access.\(community).events.\(controller).\(type)" }
    /// One key per controller: what it has applied and when it was last heard.
    public var statusBucket: String { "access_\(community)_controllers" }
    /// The community's secrets (key `visitor_pass`: what signs visitor QR codes), written by the
    /// office, read by the controllers.
    public var secretsBucket: String { "access_\(community)_secrets" }
    /// One key per indicator change raised in the community: the first controller to create it
    /// logs the change (`IndicatorClaims`).
    public var indicatorsBucket: String { "access_\(community)_indicators" }
    /// The other controllers' access events, from which visitor-pass uses are counted.
    public var accessEventsFilter: String { "access.\(community).events.*.access" }
}
