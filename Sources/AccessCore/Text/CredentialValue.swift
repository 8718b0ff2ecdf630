/// Why a credential value was refused.
public enum CredentialValueError: Error, Equatable, Sendable, CustomStringConvertible {
    case badCard(String)
    case badPIN(String)
    case badPlate(String, String)

    public var description: String {
        switch self {
        case .badCard(let v):
            return "\"\(v)\" is not a card number (decimal digits, at most 20, not zero)"
        case .badPIN(let v):
            return "\"\(v)\" is not a PIN (4 to 8 digits)"
        case .badPlate(let v, let why):
            return "\"\(v)\" is not a licence plate: \(why)"
        }
    }
}

/// Normalises credential values so that the same card, PIN or plate always has one spelling.
public enum CredentialValue {
    /// A card number in decimal, as printed on the card or sent by a Wiegand reader.
    public static func card(_ text: String) throws(CredentialValueError) -> UInt64 {
        let t = text.trimmingSpaces
        guard !t.isEmpty, t.utf8.count <= 20, t.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              let value = UInt64(t), value != 0 else { throw .badCard(text) }
        return value
    }

    /// A PIN typed on a keypad: 4 to 8 digits, leading zeros kept.
    public static func pin(_ text: String) throws(CredentialValueError) -> String {
        let t = text.trimmingSpaces
        guard (4...8).contains(t.utf8.count), t.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
            throw .badPIN(text)
        }
        return t
    }

    /// Province (and special-use) characters that begin a mainland plate.
    static let plateLeaders: Set<Character> = Set("京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使领")
    /// Characters that may end a plate: trailer, coach, police, Hong Kong/Macau crossings, consulate.
    static let plateSuffixes: Set<Character> = Set("挂学警港澳领试超")

    /// A licence plate as read by a camera or typed by staff: case and spaces, dots and dashes
    /// are dropped (`京a·123 45` → `京A12345`); the province character is kept. Accepts ordinary
    /// plates (province, letter, 5 characters), new-energy plates (6 characters) and plates
    /// ending in a special-use character.
    public static func plate(_ text: String) throws(CredentialValueError) -> String {
        var chars: [Character] = []
        for ch in text where !(ch.isWhitespace || ch == "·" || ch == "." || ch == "-" || ch == "•" || ch == "・") {
            if ch.isASCII, ch.isLetter { chars.append(Character(ch.uppercased())) } else { chars.append(ch) }
        }
        guard !chars.isEmpty else { throw .badPlate(text, "it is empty") }
        guard let first = chars.first, plateLeaders.contains(first) else {
            throw .badPlate(text, "it must begin with a province character such as 京 or 粤")
        }
        guard chars.count >= 2, let letter = chars[1].asciiValue, letter >= 65, letter <= 90 else {
            throw .badPlate(text, "the second character must be a letter A-Z")
        }
        var body = chars.dropFirst(2)
        if let last = body.last, plateSuffixes.contains(last) {
            // Special-use plates: four characters and the suffix (京A1234挂, 粤Z1234港).
            body = body.dropLast()
            guard body.count == 4 else {
                throw .badPlate(text, "expected 4 characters before \"\(last)\", found \(body.count)")
            }
        } else if body.count != 5 && body.count != 6 {
            throw .badPlate(text, "expected 5 characters after the letter (6 for new-energy plates), found \(body.count)")
        }
        for ch in body {
            guard let a = ch.asciiValue, (a >= 48 && a <= 57) || (a >= 65 && a <= 90) else {
                throw .badPlate(text, "\"\(ch)\" may not stand in a plate's serial")
            }
        }
        return String(chars)
    }
}
