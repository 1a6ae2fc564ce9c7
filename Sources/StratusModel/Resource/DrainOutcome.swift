/// What `stratus drain` did with one instance of the node.
public struct DrainOutcome: Codable, Sendable, Equatable {
    /// `project/name`.
    public var instance: String
    public var moved: Bool
    /// The node it was placed on instead.
    public var to: String?
    /// Why it stays, or what went wrong after the move.
    public var reason: String?

    public init(instance: String, moved: Bool, to: String? = nil, reason: String? = nil) {
        self.instance = instance
        self.moved = moved
        self.to = to
        self.reason = reason
    }
}
