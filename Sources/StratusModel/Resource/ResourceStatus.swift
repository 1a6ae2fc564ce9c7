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
    public func condition(_ type: ConditionType) -> Condition? { conditions.first { $0.type == type } }

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

/// One condition (`Ready`, `Synced`) in Kubernetes form; stored as its raw strings.
public struct Condition: Sendable, Equatable, Codable {
    public var type: ConditionType
    public var status: ConditionStatus
    public var reason: ConditionReason
    public var message: String?
    public var lastTransitionTime: String

    public init(type: ConditionType, status: ConditionStatus, reason: ConditionReason, message: String? = nil, lastTransitionTime: String) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
        self.lastTransitionTime = lastTransitionTime
    }
}

/// What a condition is about.
public enum ConditionType: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// The resource works (an instance runs as asked, an identity is in the directory).
    case ready = "Ready"
    /// The last reconcile succeeded.
    case synced = "Synced"
    /// A running domain has the configuration of the current generation (no restart pending).
    case configApplied = "ConfigApplied"

    /// The word as stored and shown (`Ready`).
    public var description: String { rawValue }
}

/// Kubernetes' three condition states.
public enum ConditionStatus: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    case `true` = "True"
    case `false` = "False"
    case unknown = "Unknown"

    public init(_ value: Bool) { self = value ? .true : .false }

    /// The word as stored and shown (`True`).
    public var description: String { rawValue }
}

/// Why a condition is as it is: one CamelCase word per situation a user can act on.
public enum ConditionReason: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    // The controller.
    case reconciled = "Reconciled"
    case progressing = "Progressing"
    case noReconciler = "NoReconciler"
    case reconcileError = "ReconcileError"
    case teardownFailed = "TeardownFailed"
    case wrongKind = "WrongKind"
    // Catalog and nodes.
    case inCatalog = "InCatalog"
    case hypervisorReachable = "HypervisorReachable"
    case hypervisorUnreachable = "HypervisorUnreachable"
    case noAgent = "NoAgent"
    case nodeLost = "NodeLost"
    case rescheduled = "Rescheduled"
    case cordoned = "Cordoned"
    // Compute.
    case domainRunning = "DomainRunning"
    case domainStopped = "DomainStopped"
    case domainNotInState = "DomainNotInState"
    case awaitingNodeAgent = "AwaitingNodeAgent"
    case restartRequired = "RestartRequired"
    case applied = "Applied"
    case unschedulable = "Unschedulable"
    case instanceTypeNotFound = "InstanceTypeNotFound"
    case imageNotFound = "ImageNotFound"
    case imageUnavailable = "ImageUnavailable"
    case hypervisorError = "HypervisorError"
    case notAnInstance = "NotAnInstance"
    // Networks.
    case networkConverged = "NetworkConverged"
    case hostNetworkUnavailable = "HostNetworkUnavailable"
    case vlanPoolExhausted = "VLANPoolExhausted"
    case hostNetworkError = "HostNetworkError"
    case addressAssociated = "AddressAssociated"
    case addressAllocated = "AddressAllocated"
    case addressLimitExceeded = "AddressLimitExceeded"
    case addressOutOfRange = "AddressOutOfRange"
    case waitingForInstance = "WaitingForInstance"
    case waitingForNetwork = "WaitingForNetwork"
    case rulesInKernel = "RulesInKernel"
    // Volumes.
    case volumeExported = "VolumeExported"
    case aoeInterfaceNotConfigured = "AoEInterfaceNotConfigured"
    case exportNotAnswering = "ExportNotAnswering"
    case aoeAddressesExhausted = "AoEAddressesExhausted"
    case storageError = "StorageError"
    case aoeInitiatorUnavailable = "AoEInitiatorUnavailable"
    case snapshotCompleted = "SnapshotCompleted"
    case waitingForVolume = "WaitingForVolume"
    case waitingForSnapshot = "WaitingForSnapshot"
    // Images.
    case imageAvailable = "ImageAvailable"
    case objectMissing = "ObjectMissing"
    // Identity.
    case inStore = "InStore"
    case inDirectory = "InDirectory"
    case directoryUnavailable = "DirectoryUnavailable"
    case directoryError = "DirectoryError"
    case projectNotInDirectory = "ProjectNotInDirectory"
    case ownerNotInDirectory = "OwnerNotInDirectory"
    case baseNotInDirectory = "BaseNotInDirectory"
    case projectNotFound = "ProjectNotFound"
    case publicKeyRequired = "PublicKeyRequired"
    // GitSync.
    case fetchFailed = "FetchFailed"
    case syncFailed = "SyncFailed"
    case outOfSync = "OutOfSync"
    case resourcesFailing = "ResourcesFailing"

    /// The word as stored and shown (`DomainRunning`).
    public var description: String { rawValue }
}
