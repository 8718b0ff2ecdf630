/// A door-status plan (`normally_open_schedule` on a door, optionally `first_card_group`): the
/// door is held open while its schedule is on. With first-card, it stays locked in the schedule
/// until the first granted person of the group has passed, then is held open until the schedule
/// ends; each period of the schedule starts locked again.
///
/// A value the site owns: it is told the schedule's state and the grants, and answers whether the
/// door is held open. It keeps nothing across a restart, so after one a first-card door waits for
/// a first card again, while a plain normally-open door is open at once if its schedule is on.
public struct DoorPlan: Sendable, Equatable {
    public let schedule: String
    public let firstCardGroup: String?
    /// The schedule is on (as last looked at).
    public private(set) var scheduleOn = false
    /// First-card: a member of the group has passed in this period of the schedule.
    public private(set) var firstCardPassed = false

    public init(schedule: String, firstCardGroup: String? = nil) {
        self.schedule = schedule
        self.firstCardGroup = firstCardGroup
    }

    /// Whether the plan holds the door open now.
    public var holdsOpen: Bool { scheduleOn && (firstCardGroup == nil || firstCardPassed) }

    /// The schedule's state now; true when that changes whether the door is held open.
    public mutating func schedule(on: Bool) -> Bool {
        let before = holdsOpen
        if !on { firstCardPassed = false }  // the next period waits for its own first card
        scheduleOn = on
        return holdsOpen != before
    }

    /// A grant at the door; `member`: its person is in the first-card group. True when this
    /// grant is the first card that opens the door for the rest of the period.
    public mutating func granted(member: Bool) -> Bool {
        guard firstCardGroup != nil, member, scheduleOn, !firstCardPassed else { return false }
        firstCardPassed = true
        return true
    }

    /// How events name the plan.
    public var kind: String { firstCardGroup == nil ? "normally_open" : "first_card" }
}
