/// Checks TOML text for what the TOML parser (toml++ through TOMLKit) does not survive: it aborts
/// the whole process, instead of reporting an error, on a table header whose name starts with a
/// character that cannot start a key (`[门禁]`, `[#]`, `[[*x]]`), found by fuzzing. `TOMLReader`
/// calls this before the parser sees the text. Also refused here, with their line, are the
/// characters TOML forbids everywhere: C0 controls but tab and line ends, DEL, and a carriage
/// return without a line feed.
///
/// Returns the first problem's line and a description, or nil. The scan knows strings (basic,
/// literal, multi-line), comments and brackets, so a `[` inside a value is not taken for a header.
func tomlTextProblem(in text: String) -> (line: Int, problem: String)? {
    let scalars = Array(text.unicodeScalars)
    var line = 1
    var i = 0
    var depth = 0  // brackets and braces open in the current value
    var atLineStart = true  // only whitespace so far on this line
    func at(_ k: Int) -> Unicode.Scalar? { k < scalars.count ? scalars[k] : nil }
    func isBareKey(_ s: Unicode.Scalar) -> Bool {
        s.isASCII && (s.properties.isAlphabetic || ("0"..."9").contains(s) || s == "_" || s == "-")
    }
    while i < scalars.count {
        let s = scalars[i]
        switch s.value {
        case 0x0A:
            line += 1
            atLineStart = true
            i += 1
            continue
        case 0x0D:
            guard at(i + 1) == "\n" else { return (line, "a carriage return without a line feed is not allowed in TOML") }
            i += 1
            continue
        case 0x09, 0x20:
            i += 1
            continue
        case 0x00...0x1F, 0x7F:
            let code = String(s.value, radix: 16, uppercase: true)
            return (line, "the control character U+\(String(repeating: "0", count: 4 - code.count))\(code) is not allowed in TOML")
        default: break
        }
        if s == "#" {  // a comment: to the end of the line (its characters are checked too)
            while let c = at(i + 1), c != "\n" {
                if (c.value < 0x20 && c != "\t" && c != "\r") || c.value == 0x7F { break }
                i += 1
            }
            i += 1
            continue
        }
        if s == "\"" || s == "'" {  // a string: skip it, counting its lines
            let multi = at(i + 1) == s && at(i + 2) == s
            i += multi ? 3 : 1
            while i < scalars.count {
                let c = scalars[i]
                if c == "\\" && s == "\"" { i += 2; continue }
                if c == "\n" {
                    if !multi { break }  // unterminated: the parser reports it (the newline is counted below)
                    line += 1
                }
                if (c.value < 0x20 && c != "\t" && c != "\n" && c != "\r") || c.value == 0x7F { break }
                if c == s && (!multi || (at(i + 1) == s && at(i + 2) == s)) {
                    i += multi ? 3 : 1
                    break
                }
                i += 1
            }
            atLineStart = false
            continue
        }
        if s == "[" && depth == 0 && atLineStart {  // a table header: what follows must start a key
            var k = i + 1
            if at(k) == "[" { k += 1 }
            while let c = at(k), c == " " || c == "\t" { k += 1 }
            // (A control character there is reported as such, below.)
            if let c = at(k), c == "\n" || c == "\r" {
                return (line, "a table header must name its table on the same line")
            }
            if let c = at(k), !isBareKey(c), c != "\"", c != "'", c != "]", c.value >= 0x20, c.value != 0x7F {
                return (line, "a table name cannot start with \"\(c)\" (use letters, digits, _ and -, or quote the name)")
            }
            // The header's brackets are counted like a value's: they balance on the line.
        }
        switch s {
        case "[", "{": depth += 1
        case "]", "}": depth = max(0, depth - 1)
        default: break
        }
        atLineStart = false
        i += 1
    }
    return nil
}
