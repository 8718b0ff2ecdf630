/// The analytics have not finished loading their snapshot yet.
public struct AnalyticsNotReady: Error, CustomStringConvertible {
    public var description: String { "the analytics are starting; try again in a moment" }
}
