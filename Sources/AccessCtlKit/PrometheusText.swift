import AccessCore

/// Reads the Prometheus text exposition format, for `accessctl metrics --json`.
enum PrometheusText {
    /// One sample line: `name{label="value",…} value`.
    struct Sample: Equatable {
        var name: String
        var labels: [(String, String)]
        var value: Double

        static func == (a: Sample, b: Sample) -> Bool {
            a.name == b.name && a.value == b.value && a.labels.elementsEqual(b.labels) { $0 == $1 }
        }
    }

    /// Every sample of `text`, in order; comments, blank lines and lines that are not samples are skipped.
    static func samples(_ text: String) -> [Sample] {
        text.split(separator: "\n").compactMap { sample(String($0)) }
    }

    /// `{"samples":[{"name":…,"labels":{…},"value":…},…]}`; a whole value is written as an integer,
    /// `NaN` and the infinities as null.
    static func samplesJSON(_ text: String) -> JSON {
        .object([("samples", .array(samples(text).map { s in
            let value: JSON = s.value.isFinite && s.value == s.value.rounded() && abs(s.value) < 1e15 ? .int(Int64(s.value)) : .double(s.value)
            return .object([("name", .string(s.name)), ("labels", .object(s.labels.map { ($0.0, JSON.string($0.1)) })), ("value", value)])
        }))])
    }

    static func sample(_ line: String) -> Sample? {
        let chars = Array(line.trimming(charactersIn: " \t"))
        guard let first = chars.first, first != "#" else { return nil }
        var i = 0
        while i < chars.count, chars[i] != "{", chars[i] != " ", chars[i] != "\t" { i += 1 }
        let name = String(chars[0..<i])
        guard !name.isEmpty else { return nil }
        var labels: [(String, String)] = []
        if i < chars.count, chars[i] == "{" {
            i += 1
            while i < chars.count, chars[i] != "}" {
                let start = i
                while i < chars.count, chars[i] != "=" { i += 1 }
                let key = String(chars[start..<i]).trimming(charactersIn: " ,")
                i += 1  // =
                guard i < chars.count, chars[i] == "\"" else { return nil }
                i += 1
                var value = ""
                while i < chars.count, chars[i] != "\"" {
                    if chars[i] == "\\", i + 1 < chars.count {
                        i += 1
                        value.append(chars[i] == "n" ? "\n" : chars[i])
                    } else {
                        value.append(chars[i])
                    }
                    i += 1
                }
                i += 1  // closing quote
                labels.append((key, value))
                while i < chars.count, chars[i] == "," || chars[i] == " " { i += 1 }
            }
            i += 1  // }
        }
        let rest = String(chars[min(i, chars.count)...]).split(separator: " ", omittingEmptySubsequences: true)
        guard let text = rest.first else { return nil }
        let value: Double?
        switch text {
        case "+Inf": value = .infinity
        case "-Inf": value = -.infinity
        case "NaN": value = .nan
        default: value = Double(text)
        }
        guard let value else { return nil }
        return Sample(name: name, labels: labels, value: value)
    }
}
