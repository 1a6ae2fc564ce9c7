import Foundation
import Logging
import StratusModel
import StratusStorage
import StratusStore

/// Converges snapshots on the storage node: a Snapshot copies its volume's backing file once
/// (`BlockExport.snapshot`: a reflink where the filesystem allows, else a sparse copy) and is then
/// `Completed`, with its size; volumes made from it start with those blocks. Deleting it removes
/// the file. Without an AoE export nothing holds blocks, so a snapshot waits and says so.
public struct SnapshotReconciler: Reconciler {
    public let name = "snapshot"
    public let kinds: Set<Kind> = [.snapshot]
    public let concurrency = 4

    let store: Store
    let export: (any BlockExport)?

    public init(store: Store, export: (any BlockExport)?) {
        self.store = store
        self.export = export
    }

    public func reconcile(_ resource: StoredResource) async -> ReconcileResult {
        guard case .snapshot(let spec) = resource.resource.spec, let id = resource.metadata.id else {
            return .failed(reason: .wrongKind, message: "\(resource.key) is not a snapshot with an id", retryable: false)
        }
        var status = resource.resource.status ?? ResourceStatus()
        let now = Timestamp.string(Date())
        // Taken once: a completed snapshot keeps the blocks it copied, whatever the volume does later.
        if status.phase == "Completed" { return .done(status) }
        guard let export else {
            status.phase = "Pending"
            status.setCondition(Condition(type: .ready, status: .false, reason: .aoeInterfaceNotConfigured, message: "this server holds no volume blocks (start it with --aoe-interface and --aoe-check-interface)", lastTransitionTime: now))
            return .done(status)
        }
        let volumeKey = ResourceKey(kind: .volume, project: resource.key.project, name: spec.volume)
        guard let volume = try? store.get(volumeKey), case .volume(let volumeSpec) = volume.resource.spec, let volumeId = volume.metadata.id,
            volume.resource.status?.details["backing"] != nil
        else {
            status.phase = "Pending"
            status.setCondition(Condition(type: .ready, status: .false, reason: .waitingForVolume, message: "volume \(spec.volume) has no blocks on this node yet", lastTransitionTime: now))
            return .requeue(status, after: .seconds(2))
        }
        do {
            let (path, copy) = try await export.snapshot(volume: volumeId, id: id)
            status.phase = "Completed"
            status.details["volumeId"] = .string(volumeId)
            status.details["sizeGB"] = .string("\(volumeSpec.sizeGB)")
            status.details["file"] = .string(path)
            status.details["copy"] = .string(copy)
            status.setCondition(Condition(type: .ready, status: .true, reason: .snapshotCompleted, message: "\(spec.volume)'s \(volumeSpec.sizeGB) GB copied (\(copy))", lastTransitionTime: now))
            return .done(status)
        } catch {
            return .failed(reason: .storageError, message: "cannot snapshot \(spec.volume): \(error)", retryable: true)
        }
    }

    public func finalize(_ resource: StoredResource) async -> ReconcileResult {
        if let export, let id = resource.metadata.id {
            do { try await export.removeSnapshot(id: id) } catch {
                return .failed(reason: .storageError, message: "cannot remove snapshot \(id): \(error)", retryable: true)
            }
        }
        return .done(ResourceStatus())
    }

    /// Snapshot files no Snapshot names (one deleted while the server was down).
    public func sweep(_ wanted: [StoredResource]) async -> [String] {
        guard let export else { return [] }
        let ids = Set(wanted.compactMap(\.metadata.id))
        var removed: [String] = []
        for snapshot in await export.snapshots() where !ids.contains(snapshot) {
            // `wanted` was read when the resync began: a snapshot created since is in the store now.
            if (try? store.get(ec2Id: snapshot)) != nil { continue }
            if (try? await export.removeSnapshot(id: snapshot)) != nil { removed.append(snapshot) }
        }
        return removed
    }
}
