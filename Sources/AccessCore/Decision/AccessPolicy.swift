/// Decides requests against the roster index and the site rules. A value with no I/O and no
/// clock of its own: the caller passes the time and the anti-passback ledger.
public struct AccessPolicy: Sendable {
    /// Before this instant (2020-01-01) the wall clock is taken as not set.
    public static let earliestTrustedTime: UnixSeconds = 1_577_836_800

    public let rules: SiteRules
    public internal(set) var roster: RosterIndex
    internal(set) var passCodes: VisitorPassCode?
    /// The site's PIN key: a typed PIN is hashed with it and its hash looked up. Nil: every PIN
    /// is unknown (the roster holds only hashes; a database without its key opens nothing).
    internal(set) var pinKey: PinKey?
    /// Residents' short-lived codes, signed with the same community secret as the passes.
    var residentCodes: ResidentQRCode? { passCodes?.residentCodes }

    public init(rules: SiteRules, roster: RosterIndex, passCodes: VisitorPassCode? = nil, pinKey: PinKey? = nil) {
        self.rules = rules
        self.roster = roster
        self.passCodes = passCodes
        self.pinKey = pinKey
    }

    /// The roster entry of a typed PIN: its keyed hash looked up (one hash and one dictionary
    /// probe, whatever the roster's size), nil without a key.
    func pinEntry(_ pin: String) -> RosterIndex.CredentialEntry? {
        guard let pinKey else { return nil }
        return roster.pins[pinKey.digest(pin)]
    }

    /// This policy with the visitor uses spent under `older` kept, where the store it was loaded
    /// from has not recorded them yet (uses only grow).
    public func keepingSpentVisitorUses(from older: AccessPolicy) -> AccessPolicy {
        var policy = self
        policy.roster.keepSpentVisitorUses(from: older.roster)
        return policy
    }


    /// Decides one request. Throws only when the portal does not exist.
    /// `parking`: the vehicles inside, for the parking spaces of houses and visitors.
    public func decide(_ request: DecisionRequest, ledger: AntiPassbackLedger = AntiPassbackLedger(),
                       parking: ParkingLedger = ParkingLedger()) throws(DecisionError) -> Decision {
        guard let portalIndex = rules.portalIndex[request.portal] else { throw .unknownPortal(request.portal) }
        let portal = rules.portals[portalIndex]
        var decision = Decision(granted: false, reason: .unknownCredential, portal: portal.id, credentialKind: request.credential.kind)
        guard request.clockTrusted, request.at >= Self.earliestTrustedTime else {
            decision.reason = .clockUnset
            return decision
        }
        let context = Context(request: request, portal: portal, portalIndex: portalIndex, ledger: ledger)

        let entry: RosterIndex.CredentialEntry?
        var subjectOverride: String?
        switch request.credential {
        case .card(let number):
            entry = roster.cards[number]
        case .pin(let pin):
            entry = pinEntry(pin)
        case .plate(let text):
            let plate = (try? CredentialValue.plate(text)) ?? text
            entry = roster.plates[plate]
            subjectOverride = "plate:" + plate
        case .qr(let code) where ResidentQRCode.looksLikeResidentCode(code):
            guard let verified = residentCodes?.verify(code), let p = roster.personSlot(verified.personID) else { return decision }
            describe(person: p, portal: portal, &decision)
            decision.subject = "person:" + verified.personID
            // A code is a minute's credential: an old one, or one that claims to live longer
            // than any the platform makes, opens nothing.
            if context.at >= verified.expires {
                deny(.expired, &decision)
                return decision
            }
            if verified.expires - context.at > ResidentQRCode.lifetimeSeconds + ResidentQRCode.clockSkewSeconds {
                deny(.unknownCredential, &decision)
                return decision
            }
            decidePerson(p, context, subject: nil, &decision)
            return decision
        case .qr(let code):
            guard let verified = passCodes?.verify(code), let p = roster.passByID[verified.passID] else {
                return decision
            }
            decidePass(p, context, expires: verified.expires, &decision)
            return decision
        }
        guard let entry else { return decision }
        decision.duress = entry.duress

        switch entry.owner {
        case .person(let p):
            describe(person: p, portal: portal, &decision)
        case .house(let h):
            decision.houseID = roster.houses[Int(h)].id
        case .pass(let p):
            decision.visitorPassID = roster.passes[Int(p)].id
            decision.houseID = roster.houses[Int(roster.passes[Int(p)].house)].id
            decision.role = .visitor
        case .none:
            break
        }
        switch entry.status {
        case .blacklisted:
            decision.reason = .blacklisted
            decision.alarm = true
            return decision
        case .revoked, .lost:
            decision.reason = .revoked
            return decision
        case .active:
            break
        }
        switch entry.owner {
        case .person(let p):
            decidePerson(p, context, subject: subjectOverride, &decision)
        case .house(let h):
            decideHousehold(h, context, subject: subjectOverride ?? "house:\(roster.houses[Int(h)].id)", &decision)
        case .pass(let p):
            decidePass(p, context, expires: .max, &decision)
        case .none:
            decision.reason = .unknownCredential
        }
        applyVerifyMode(context, &decision)
        applyParking(context, parking, &decision)
        return decision
    }

    /// A granted plate at an entry lane: refused with `parking_full` when its house (or, for a
    /// visitor's plate, the visitors) already has as many cars inside as it has spaces.
    func applyParking(_ context: Context, _ parking: ParkingLedger, _ decision: inout Decision) {
        guard decision.granted, context.portal.direction == .in, ParkingLedger.counts(context.portal, context.request.credential.kind),
              let key = ParkingLedger.key(for: decision), let spaces = parkingSpaces(key),
              parking.inside(key) >= spaces else { return }
        deny(.parkingFull, &decision)
        decision.consumesVisitorUse = false
    }

    /// The spaces of a parking key; nil: no limit.
    public func parkingSpaces(_ key: String) -> Int? {
        key == ParkingLedger.visitors ? rules.visitorParkingSpaces : ParkingLedger.house(of: key).flatMap { roster.parkingSpaces(house: $0) }
    }

    /// Card and PIN's second step: the card (`card`, the request that was `pin_required`) decided
    /// again now that `pin` was typed at its reader; `wrong_pin` unless the PIN is the card
    /// holder's own and in force.
    public func decideSecondStep(card: DecisionRequest, pin: String,
                                 ledger: AntiPassbackLedger = AntiPassbackLedger()) throws(DecisionError) -> Decision {
        var verified = card
        verified.pinVerified = true
        var decision = try decide(verified, ledger: ledger)
        let entry = pinEntry(pin)
        var holder: String?
        if let entry, entry.status == .active, case .person(let p) = entry.owner { holder = roster.people[Int(p)].id }
        decision.duress = entry?.duress == true && holder != nil && holder == decision.personID
        if holder == nil || holder != decision.personID {
            decision.granted = false
            decision.reason = .wrongPin
            decision.consumesVisitorUse = false
        }
        return decision
    }

    /// The verification mode in force at `portal` at `time`: its `verify`, while its
    /// `verify_schedule` (if any) is on; nil when any credential decides alone.
    public func verifyMode(at portal: Portal, time: UnixSeconds) -> VerifyMode? {
        guard let mode = portal.verify else { return nil }
        guard let name = portal.verifySchedule, let schedule = roster.schedule(named: name) else { return mode }
        return schedule.allows(rules.zone.localTime(at: time)) ? mode : nil
    }

    /// A granted card or PIN under the portal's verification mode: refused when the mode does not
    /// take it alone (`no_right`), or held back for the PIN (`pin_required`) under card and PIN.
    func applyVerifyMode(_ context: Context, _ decision: inout Decision) {
        let kind = context.request.credential.kind
        guard decision.granted, kind == .card || kind == .pin,
              let mode = verifyMode(at: context.portal, time: context.at) else { return }
        if !mode.decidesAlone(kind) { return deny(.noRight, &decision) }
        if mode == .cardAndPin, kind == .card, !context.request.pinVerified { deny(.pinRequired, &decision) }
    }

    struct Context {
        let request: DecisionRequest
        let portal: Portal
        let portalIndex: Int
        let ledger: AntiPassbackLedger
        var at: UnixSeconds { request.at }
    }

    /// Fills in who the person is: id, and the house (and role) that fits this portal best.
    func describe(person p: Int32, portal: Portal, _ decision: inout Decision) {
        let person = roster.people[Int(p)]
        decision.personID = person.id
        let bindings = roster.bindings[Int(person.bindingStart)..<Int(person.bindingStart + Int32(person.bindingCount))]
        let chosen = bindings.first { !portal.building.isEmpty && roster.houses[Int($0.house)].building == portal.building } ?? bindings.first
        if let chosen {
            decision.houseID = roster.houses[Int(chosen.house)].id
            decision.role = chosen.role
        }
    }

    func decidePerson(_ p: Int32, _ context: Context, subject: String?, _ decision: inout Decision) {
        let person = roster.people[Int(p)]
        decision.subject = subject ?? "person:" + person.id
        if person.status == .blacklisted {
            decision.reason = .blacklisted
            decision.alarm = true
            return
        }
        if context.request.portalMode == .alwaysClosed { return deny(.portalLocked, &decision) }
        if person.status == .suspended { return deny(.suspended, &decision) }
        if context.at < person.validFrom { return deny(.notYetValid, &decision) }
        if context.at >= person.validUntil { return deny(.expired, &decision) }
        let rights = self.rights(of: person, context)
        guard rights == .granted else { return deny(rights, &decision) }
        grant(context, &decision)
    }

    /// A household's car: granted when any resident of the house would be.
    func decideHousehold(_ h: Int32, _ context: Context, subject: String, _ decision: inout Decision) {
        let residents = roster.residents(of: h)
        var first: Decision?
        for resident in residents {
            var trial = decision
            decidePerson(resident, context, subject: subject, &trial)
            if trial.granted {
                decision = trial
                decision.personID = nil
                decision.houseID = roster.houses[Int(h)].id
                return
            }
            if first == nil { first = trial }
        }
        decision.reason = residents.isEmpty ? .noRight : (first?.reason ?? .noRight)
        // A resident's own blacklisting is not the car's; the alarm is raised only for the plate itself.
        if decision.reason == .blacklisted { decision.reason = .suspended }
        decision.role = nil
        decision.subject = subject
    }

    func decidePass(_ p: Int32, _ context: Context, expires: UnixSeconds, _ decision: inout Decision) {
        let pass = roster.passes[Int(p)]
        let house = roster.houses[Int(pass.house)]
        decision.visitorPassID = pass.id
        decision.houseID = house.id
        decision.role = .visitor
        decision.subject = "pass:" + pass.id
        if pass.status == .revoked { return deny(.revoked, &decision) }
        if context.request.portalMode == .alwaysClosed { return deny(.portalLocked, &decision) }
        if context.at < pass.validFrom { return deny(.notYetValid, &decision) }
        if context.at >= pass.validUntil || context.at >= expires { return deny(.expired, &decision) }
        let allowed = pass.portals.isEmpty
            ? context.portal.building.isEmpty || context.portal.building == house.building
            : pass.portals[context.portalIndex]
        if !allowed { return deny(.noRight, &decision) }
        if context.portal.isEntry, pass.uses >= pass.maxUses { return deny(.usesExhausted, &decision) }
        grant(context, &decision)
        decision.consumesVisitorUse = decision.granted && context.portal.isEntry
    }

    /// Whether the person's groups (or their role's defaults) open this portal now.
    func rights(of person: RosterIndex.PersonEntry, _ context: Context) -> Reason {
        let portal = context.portal
        var groupIndices = roster.personGroups[Int(person.groupStart)..<Int(person.groupStart + Int32(person.groupCount))]
        var defaults: [Int32] = []
        if person.groupCount == 0 {
            for b in Int(person.bindingStart)..<Int(person.bindingStart + Int32(person.bindingCount)) {
                let binding = roster.bindings[b]
                if binding.role.isResident,
                   portal.building.isEmpty || roster.houses[Int(binding.house)].building == portal.building {
                    return .granted
                }
                defaults += roster.roleDefaults[binding.role] ?? []
            }
            groupIndices = defaults[...]
        }
        var local: LocalDateTime?
        var sawPortal = false
        for g in groupIndices {
            let group = roster.groups[Int(g)]
            guard group.portals[context.portalIndex] else { continue }
            sawPortal = true
            if group.schedule < 0 { return .granted }
            if local == nil { local = rules.zone.localTime(at: context.at) }
            if let local, roster.schedules[Int(group.schedule)].allows(local) { return .granted }
        }
        return sawPortal ? .outsideSchedule : .noRight
    }

    func grant(_ context: Context, _ decision: inout Decision) {
        let rule = rules.antiPassback.rule(for: context.portal)
        if let subject = decision.subject,
           context.ledger.isViolation(subject: subject, portal: context.portal, at: context.at, rule: rule) {
            if rule.mode == .hard { return deny(.antiPassback, &decision) }
            decision.antiPassbackViolation = true
        }
        decision.granted = true
        decision.reason = .granted
    }

    func deny(_ reason: Reason, _ decision: inout Decision) {
        decision.granted = false
        decision.reason = reason
    }
}
