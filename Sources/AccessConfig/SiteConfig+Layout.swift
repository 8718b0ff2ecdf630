import AccessCore

extension SiteConfig {
    /// The site as the controller's state machine sees it: rules, doors, lanes, zones, linkage.
    public var layout: SiteLayout {
        SiteLayout(
            rules: rules,
            doors: doors.map { door in
                SiteLayout.Door(id: door.id, portals: door.portals, config: DoorConfig(
                    unlockSeconds: door.unlockSeconds, heldOpenSeconds: door.heldOpenSeconds, hasContact: door.contact != nil,
                    escapeRoute: door.escapeRoute, releasedWhenStopped: door.failSafe),
                    contact: door.contact, exitButton: door.exitButton,
                    normallyOpenSchedule: door.normallyOpenSchedule, firstCardGroup: door.firstCardGroup)
            },
            lanes: barriers.map { b in
                SiteLayout.Lane(portal: b.portal, gate: b.gate, config: BarrierLaneConfig(
                    positionTimeoutSeconds: b.positionTimeoutSeconds, closeDelaySeconds: b.closeDelaySeconds, autoClose: b.autoClose))
            },
            zones: fenceZones,
            linkage: linkage,
            gate: gate,
            interlocks: interlocks
        )
    }
}
