import AccessCore
import Hummingbird
import HummingbirdCore

/// Every path the API serves and the methods it declares there (as `API/openapi.yaml` does). A
/// request for a known path with another method is answered 405 with `Allow`, not 404: the
/// router alone cannot tell a wrong method from a wrong path. Each route also names the token
/// scope it needs (nil: no token at all).
enum APIRoutes {
    static let all: [(pattern: String, methods: [HTTPRequest.Method], scope: APIScope?)] = [
        ("/healthz", [.get], nil),
        ("/metrics", [.get], .metricsRead),
        ("/api/v1/events", [.get], .eventsRead),
        ("/api/v1/plates", [.post], .platesWrite),
        ("/api/v1/portals/:portal/:command", [.post], .portalsCommand),
        ("/api/v1/houses/:house/summary", [.get], .analyticsRead),
        ("/api/v1/indicators", [.get], .analyticsRead),
    ]

    /// The methods declared at `path`; nil when no route has that path.
    static func methods(at path: String) -> [HTTPRequest.Method]? {
        route(at: path)?.methods
    }

    /// The scope a token needs at `path`; nil when no route has that path (a valid token of any
    /// scope then gets 404).
    static func scope(at path: String) -> APIScope? {
        route(at: path)?.scope
    }

    static func route(at path: String) -> (pattern: String, methods: [HTTPRequest.Method], scope: APIScope?)? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        for route in all {
            let parts = route.pattern.split(separator: "/", omittingEmptySubsequences: true)
            guard parts.count == segments.count else { continue }
            if zip(parts, segments).allSatisfy({ $0.hasPrefix(":") || $0 == $1 }) { return route }
        }
        return nil
    }
}

/// Refuses a method a known path does not declare, before authentication (the routes and their
/// methods are public in the spec, so this tells a caller nothing secret).
struct MethodNotAllowed: RouterMiddleware {
    func handle(_ request: Request, context: APIContext, next: (Request, APIContext) async throws -> Response) async throws -> Response {
        if let methods = APIRoutes.methods(at: request.uri.path), !methods.contains(request.method) {
            let allow = methods.map(\.rawValue).joined(separator: ", ")
            throw APIError(.methodNotAllowed, "\(request.method.rawValue) is not allowed on \(request.uri.path) (allowed: \(allow))",
                           headers: [.allow: allow])
        }
        return try await next(request, context)
    }
}
