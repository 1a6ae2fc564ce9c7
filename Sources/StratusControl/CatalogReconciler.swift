import Foundation
import StratusModel
import StratusStore

/// Converges kinds that exist only as records (instance types): they are ready as soon as they are valid.
public struct CatalogReconciler: Reconciler {
    public let name = "catalog"
    public let kinds: Set<Kind> = [.instanceType]

    public init() {}

    public func reconcile(_ resource: StoredResource) async -> ReconcileResult {
        var status = resource.resource.status ?? ResourceStatus()
        status.phase = "Ready"
        status.setCondition(Condition(type: .ready, status: .true, reason: .inCatalog, lastTransitionTime: Timestamp.string(Date())))
        return .done(status)
    }

    public func finalize(_ resource: StoredResource) async -> ReconcileResult { .done(ResourceStatus()) }
}
