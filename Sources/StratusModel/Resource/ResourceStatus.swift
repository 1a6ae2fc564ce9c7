/// The observed state of a resource, written only by the controller.
public struct ResourceStatus: Sendable, Equatable, Codable {
    /// A one-word summary: `Pending`, `Running`, `Ready`, `Terminating`, `Failed`, …
    public var phase: String?
    /// The `metadata.generation` this status describes.
    public var observedGeneration: Int?
    public var conditions: [Condition]
    /// Kind-specific observed facts (the node an instance runs on, an allocated address, …).
    public var details: [String: JSONValue]

    public init(
        phase: String? = nil,
        observedGeneration: Int? = nil,
        conditions: [Condition] = [],
        details: [String: JSONValue] = [:]
    ) {
        self.phase = phase
        self.observedGeneration = observedGeneration
        self.conditions = conditions
        self.details = details
    }

    /// The condition of the given type, if present.
    public func condition(_ type: String) -> Condition? { conditions.first { $0.type == type } }

    /// Sets a condition, keeping `lastTransitionTime` when its status does not change.
    public mutating func setCondition(_ condition: Condition) {
        if let index = conditions.firstIndex(where: { $0.type == condition.type }) {
            var updated = condition
            if conditions[index].status == condition.status {
                updated.lastTransitionTime = conditions[index].lastTransitionTime
            }
            conditions[index] = updated
        } else {
            conditions.append(condition)
        }
    }
}

/// One condition (`Ready`, `Synced`) in Kubernetes form.
public struct Condition: Sendable, Equatable, Codable {
    public var type: String
    /// `"True"`, `"False"` or `"Unknown"`.
    public var status: String
    /// A CamelCase reason (`DomainRunning`, `Unschedulable`).
    public var reason: String
    public var message: String?
    public var lastTransitionTime: String

    public init(type: String, status: String, reason: String, message: String? = nil, lastTransitionTime: String) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
        self.lastTransitionTime = lastTransitionTime
    }
}
