import AccessCore
import AccessStore
import ArgumentParser

struct CheckCommand: SiteCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Ask why a credential would be granted or denied at a portal, now or at a given time.",
        discussion: """
            The controller's own engine decides, with the portal's current mode and anti-passback state; \
            nothing is recorded and no visitor use is spent. Exits 0 whatever the decision.
            Examples:
              accessctl check --portal gate-north-in --card 10023456
              accessctl check --portal lane-in --plate 京A12345 --at 2026-12-31T23:30 --json
              accessctl check --portal b01-door --card 6553701 --pin 246810   (card and PIN: both steps)
            A card at a card-and-PIN portal is pin_required: the gate would wait for the holder's PIN; give \
            --pin as well to decide the second step (granted, or wrong_pin).
            At a multi-card portal a credential that would be granted is awaiting_more_cards: the gate counts it \
            and opens only for the last of the different people it needs.
            """
    )
    @OptionGroup var global: GlobalOptions
    @Option(help: "The portal id.") var portal: String
    @Option(help: "A card number.") var card: String?
    @Option(help: "A licence plate.") var plate: String?
    @Option(help: "A keypad PIN.") var pin: String?
    @Option(help: "A visitor pass QR code text.") var qr: String?
    @Option(help: "When (ISO 8601; default now; no offset means the community's zone).") var at: String?

    func validate() throws {
        let given = [card, plate, pin, qr].compactMap({ $0 }).count
        if given != 1 && !(given == 2 && card != nil && pin != nil) {
            throw ValidationError("give exactly one of --card, --plate, --pin or --qr (or --card and --pin: card and PIN)")
        }
    }

    func run(site: Site) throws {
        let presented: PresentedCredential
        if let card {
            do { presented = .card(try CredentialValue.card(card)) } catch { throw ValidationError("--card: \(error.description)") }
        } else if let plate {
            presented = .plate(plate)
        } else if let pin {
            presented = .pin(pin)
        } else {
            presented = .qr(qr ?? "")
        }
        let when = try at.map { try site.instant($0, option: "--at") } ?? Site.now()
        let policy = try site.db.loadPolicy(rules: site.rules)
        let request = DecisionRequest(portal: portal, credential: presented, at: when, portalMode: try site.db.portalMode(portal))
        let ledger = try site.db.antiPassbackLedger()
        var decision = try policy.decide(request, ledger: ledger, parking: try site.db.parkingLedger())
        // Card and PIN: the second step, as the gate would take it once the PIN is typed.
        var secondStep = false
        if card != nil, let pin, decision.reason == .pinRequired {
            decision = try policy.decideSecondStep(card: request, pin: pin, ledger: ledger)
            secondStep = true
        }
        let mode = site.rules.portal(portal).flatMap { policy.verifyMode(at: $0, time: when) }
        // Multi-card: the gate counts a grant and waits for the others; check sees no other cards.
        let multiCard = site.rules.portal(portal)?.multiCard
        if decision.granted, multiCard != nil {
            decision.granted = false
            decision.reason = .awaitingMoreCards
        }
        if site.json {
            guard case .object(var pairs) = Self.json(decision, at: when, zone: site.zone) else { return }
            pairs.append(("verify", .string(mode?.rawValue)))
            if let multiCard {
                pairs.append(("multi_card", .object([("cards", .int(Int64(multiCard.cards))), ("seconds", .int(Int64(multiCard.seconds)))])))
            }
            return Say.json(.object(pairs))
        }
        let who = [decision.personID.map { "person \($0)" }, decision.houseID.map { "house \($0)" }, decision.role?.rawValue,
                   decision.visitorPassID.map { "pass \($0)" }].compactMap { $0 }.joined(separator: ", ")
        Say.line("\(decision.granted ? "GRANTED" : "DENIED") at \(portal), \(site.format(when)): \(decision.reason.rawValue)\(who.isEmpty ? "" : " (\(who))")")
        Say.line("  \(Self.explanation(decision.reason))")
        if let mode { Say.line("  verification here now: \(mode.rawValue)\(secondStep ? " (card, then its holder's PIN)" : "")") }
        if decision.reason == .pinRequired, pin != nil {
            Say.line("  the PIN was not asked for: the card was refused first")
        }
        if let multiCard, decision.reason == .awaitingMoreCards {
            Say.line("  multi-card here: \(multiCard.cards) different people within \(multiCard.seconds) s; this one would be counted")
        }
        if decision.alarm { Say.line("  an alarm would be raised") }
        if decision.antiPassbackViolation { Say.line("  anti-passback (soft): the last recorded passage does not match; granted and flagged") }
    }

    static func json(_ d: Decision, at: UnixSeconds, zone: ZoneRules) -> JSON {
        .object([
            ("granted", .bool(d.granted)), ("reason", .string(d.reason.rawValue)), ("person_id", .string(d.personID)),
            ("house_id", .string(d.houseID)), ("portal", .string(d.portal)), ("role", .string(d.role?.rawValue)),
            ("credential_kind", .string(d.credentialKind.rawValue)), ("visitor_pass", .string(d.visitorPassID)),
            ("alarm", .bool(d.alarm)), ("anti_passback_violation", .bool(d.antiPassbackViolation)),
            ("at", .string(ISO8601.format(at, zone: zone))),
        ])
    }

    static func explanation(_ reason: Reason) -> String {
        switch reason {
        case .granted: return "the credential is valid here at this time"
        case .unknownCredential: return "no such credential on the roster (or a QR code that is forged or malformed)"
        case .revoked: return "the credential (or visitor pass) was revoked or reported lost"
        case .suspended: return "the person is suspended"
        case .blacklisted: return "the credential or its owner is blacklisted"
        case .notYetValid: return "the validity window has not begun"
        case .expired: return "the validity window has ended (e.g. the lease is over)"
        case .noRight: return "no group or default right covers this portal"
        case .outsideSchedule: return "a group covers this portal, but not at this time"
        case .antiPassback: return "the last recorded passage does not match this direction (hard anti-passback)"
        case .usesExhausted: return "the visitor pass has no entries left"
        case .portalLocked: return "the portal is set to always-closed"
        case .clockUnset: return "the controller's clock is not set; no time-based decision is made"
        case .pinRequired: return "card and PIN: the card is accepted; the gate waits for its holder's own PIN on the keypad (add --pin)"
        case .wrongPin: return "card and PIN: the PIN typed after the card is not its holder's"
        case .pinTimeout: return "card and PIN: no PIN came in time after the card"
        case .readerLocked: return "too many failed attempts at this reader: it refuses everything until its lockout ends"
        case .interlock: return "another door of this door's interlock group is released or open (the gate decides it; check cannot see doors)"
        case .awaitingMoreCards:
            return "multi-card: the credential is valid here; the gate counts it and opens when enough different people have presented theirs"
        case .parkingFull: return "every parking space of the plate's house (or the visitors') is taken: entries and exits at the lanes are counted"
        }
    }
}
