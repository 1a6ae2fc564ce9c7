/// One way the world differs from the store (`stratus diff --drift`).
public struct DriftFinding: Codable, Sendable, Equatable {
    /// `Instance acme/web-1`, or the domain's name for an orphan.
    public var object: String
    public var domain: String
    public var problem: String

    public init(object: String, domain: String, problem: String) {
        self.object = object
        self.domain = domain
        self.problem = problem
    }
}
