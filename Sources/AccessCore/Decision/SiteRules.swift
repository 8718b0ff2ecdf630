/// The parts of the site description decisions depend on: zone, portals, role defaults and
/// anti-passback. Built from the configuration; fixed while the controller runs.
public struct SiteRules: Sendable {
    public var controllerID: String
    public var zone: ZoneRules
    public private(set) var portals: [Portal]
    /// Groups every person of a role gets when they have no explicit groups (besides the
    /// residents' building rule).
    public var defaultGroups: [Role: [String]]
    public var antiPassback: AntiPassbackPolicy
    /// Visitors' parking spaces (`[parking] visitor_spaces`): at most this many visitor plates
    /// inside at once; nil: no limit.
    public var visitorParkingSpaces: Int?
    let portalIndex: [String: Int]

    public init(
        controllerID: String = "controller", zone: ZoneRules, portals: [Portal],
        defaultGroups: [Role: [String]] = [:], antiPassback: AntiPassbackPolicy = AntiPassbackPolicy(),
        visitorParkingSpaces: Int? = nil
    ) {
        self.visitorParkingSpaces = visitorParkingSpaces
        self.controllerID = controllerID
        self.zone = zone
        self.portals = portals
        self.defaultGroups = defaultGroups
        self.antiPassback = antiPassback
        var index: [String: Int] = [:]
        for (i, portal) in portals.enumerated() { index[portal.id] = i }
        self.portalIndex = index
    }

    public func portal(_ id: String) -> Portal? { portalIndex[id].map { portals[$0] } }

    /// The portal a reader or barrier lane belongs to.
    public func portal(forReader reader: String) -> Portal? { portals.first { $0.readers.contains(reader) } }
}
