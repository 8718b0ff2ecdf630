import AccessTestSupport
@testable import AccessUpstream
import Foundation
import Testing

@Suite("API routes and methods")
struct APIRoutesTests {
    /// `path → methods` as `API/openapi.yaml` declares them (its `paths:` block, two-space paths,
    /// four-space methods), with `{param}` written as the router's `:param`.
    static func specRoutes() throws -> [String: Set<String>] {
        let root = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        let text = try #require(readTextFile(root + "/API/openapi.yaml"))
        var routes: [String: Set<String>] = [:]
        var path: String?
        var inPaths = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") && !line.isEmpty { inPaths = line == "paths:" }
            guard inPaths else { continue }
            if line.hasPrefix("  /") {
                path = String(line.dropFirst(2).dropLast())
                    .split(separator: "/").map { $0.hasPrefix("{") ? ":" + $0.dropFirst().dropLast() : String($0) }
                    .reduce("") { $0 + "/" + $1 }
            } else if let path, line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") {
                let method = line.trimmingCharacters(in: .whitespaces).dropLast().uppercased()
                if ["GET", "POST", "PUT", "DELETE", "PATCH"].contains(method) { routes[path, default: []].insert(method) }
            }
        }
        return routes
    }

    @Test func theRouteTableIsTheSpecsPathsAndMethods() throws {
        let spec = try Self.specRoutes()
        #expect(spec.count == 7, "\(spec)")
        let table = Dictionary(uniqueKeysWithValues: APIRoutes.all.map { ($0.pattern, Set($0.methods.map(\.rawValue))) })
        #expect(table == spec)
    }

    /// `path → scope` from the spec's per-operation `security: [{ bearer: ["SCOPE"] }]` lines.
    static func specScopes() throws -> [String: String] {
        let root = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        let text = try #require(readTextFile(root + "/API/openapi.yaml"))
        var scopes: [String: String] = [:]
        var path: String?
        for line in text.split(separator: "\n") {
            if line.hasPrefix("  /") {
                path = String(line.dropFirst(2).dropLast())
                    .split(separator: "/").map { $0.hasPrefix("{") ? ":" + $0.dropFirst().dropLast() : String($0) }
                    .reduce("") { $0 + "/" + $1 }
            } else if let path, line.hasPrefix("      security: [{ bearer: [\""), let end = line.lastIndex(of: "\"") {
                let start = line.index(line.firstIndex(of: "\"")!, offsetBy: 1)
                scopes[path] = String(line[start..<end])
            }
        }
        return scopes
    }

    @Test func everyRouteNeedsTheScopeTheSpecNames() throws {
        let spec = try Self.specScopes()
        let table = Dictionary(uniqueKeysWithValues: APIRoutes.all.compactMap { route in route.scope.map { (route.pattern, $0.rawValue) } })
        #expect(spec.count == 6, "\(spec)")
        #expect(table == spec)
        #expect(APIRoutes.scope(at: "/healthz") == nil)
    }

    @Test(arguments: [
        ("/api/v1/events", ["GET"]), ("/api/v1/portals/b01-door/open", ["POST"]), ("/api/v1/houses/B01-U1-101/summary", ["GET"]),
        ("/healthz", ["GET"]), ("/api/v1/events/", ["GET"]),
    ])
    func aKnownPathNamesItsMethods(path: String, methods: [String]) {
        #expect(APIRoutes.methods(at: path)?.map(\.rawValue) == methods)
    }

    @Test(arguments: ["/api/v1/nothing", "/api/v1/portals/b01-door", "/api/v1/portals/a/b/c", "/", "/api/v1/houses/H1/summary/x"])
    func anUnknownPathHasNoMethods(path: String) {
        #expect(APIRoutes.methods(at: path) == nil)
    }
}
