import AccessConfig
import AccessTestSupport
import Testing

/// Mutated site files (TOML): either a site or a `ConfigError` naming the file and the problem;
/// never a crash or a hang. `ACCESS_FUZZ_SCALE` / `ACCESS_FUZZ_SEED` scale and replay.
@Suite("Fuzzing: site configuration")
struct ConfigFuzzTests {
    @Test func mutatedSiteFilesLoadOrFailWithTheFileNamed() throws {
        var fuzz = FuzzRun("site-config")
        let root = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        let dir = TemporaryDirectory("config-fuzz")
        var outcomes = (loaded: 0, refused: 0, withLine: 0)
        for name in ["accessd-sim.toml", "accessd.toml"] {
            let seed = Array(try #require(readTextFile("\(root)/Config/\(name)"), "Config/\(name)").utf8)
            for i in 0..<fuzz.cases(300) {
                let path = dir.write("\(i)-\(name)", bytes: fuzz.mutate(seed, maxEdits: 3))
                do {
                    _ = try SiteConfig.load(path: path)
                    outcomes.loaded += 1
                } catch {
                    outcomes.refused += 1
                    if error.line != nil { outcomes.withLine += 1 }
                    #expect(error.file == path && !error.problem.isEmpty, "\(error), \(fuzz)")
                    #expect("\(error)".hasPrefix(path), "\(error), \(fuzz)")
                }
            }
        }
        // Board maps go through the same reader, with the same error shape.
        let board = Array(try #require(readTextFile("\(root)/Hardware/boards/sim.toml")).utf8)
        for _ in 0..<fuzz.cases(300) {
            do {
                _ = try BoardMap.parse(String(decoding: fuzz.mutate(board, maxEdits: 3), as: UTF8.self), file: "sim.toml")
            } catch {
                #expect(error.file == "sim.toml" && !error.problem.isEmpty, "\(error), \(fuzz)")
                #expect("\(error)".hasPrefix("sim.toml"), "\(error), \(fuzz)")
            }
        }
        #expect(outcomes.loaded > 0 && outcomes.refused > 0, "both outcomes reached: \(outcomes)")
        #expect(outcomes.withLine * 2 > outcomes.refused, "most refusals name the line: \(outcomes)")
    }
}
