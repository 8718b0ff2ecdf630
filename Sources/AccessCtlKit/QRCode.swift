import CQRencode
import Glibc

/// A QR code as a square of modules (true = dark), made by libqrencode.
public struct QRMatrix: Sendable {
    public let size: Int
    public let modules: [Bool]

    /// Encodes `text` in byte mode with error correction level M.
    public init?(text: String) {
        guard let code = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_M) else { return nil }
        defer { QRcode_free(code) }
        let width = Int(code.pointee.width)
        size = width
        modules = (0..<(width * width)).map { code.pointee.data[$0] & 1 == 1 }
    }

    public func isDark(_ x: Int, _ y: Int) -> Bool {
        x >= 0 && y >= 0 && x < size && y < size && modules[y * size + x]
    }

    /// Two module rows per text line with half blocks, and a quiet zone of two modules. Light
    /// modules are drawn (for the usual dark terminal); `inverted` draws dark ones instead.
    public func terminalText(inverted: Bool = false) -> String {
        let quiet = 2
        var out = ""
        var y = -quiet
        while y < size + quiet {
            for x in -quiet..<(size + quiet) {
                let top = isDark(x, y) == inverted
                let bottom = isDark(x, y + 1) == inverted
                out += top ? (bottom ? "█" : "▀") : (bottom ? "▄" : " ")
            }
            out += "\n"
            y += 2
        }
        return out
    }

    /// A plain PBM image (P1), `scale` pixels a module with a four-module quiet zone.
    public func pbm(scale: Int = 4) -> String {
        let quiet = 4
        let pixels = (size + 2 * quiet) * scale
        var out = "P1\n\(pixels) \(pixels)\n"
        for py in 0..<pixels {
            var row: [String] = []
            for px in 0..<pixels { row.append(isDark(px / scale - quiet, py / scale - quiet) ? "1" : "0") }
            out += row.joined(separator: " ") + "\n"
        }
        return out
    }
}
