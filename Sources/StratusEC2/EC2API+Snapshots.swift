import Foundation
import StratusIdentity
import StratusModel
import StratusStore

extension EC2API {
    /// EC2's snapshot state: pending until the storage node has copied the volume's blocks.
    static func snapshotState(_ snapshot: StoredResource) -> String {
        if snapshot.isTerminating { return "pending" }
        return snapshot.resource.status?.phase == "Completed" ? "completed" : "pending"
    }

    func snapshotItem(_ snapshot: StoredResource) -> [XMLNode] {
        guard case .snapshot(let spec) = snapshot.resource.spec else { return [] }
        let details = snapshot.resource.status?.details ?? [:]
        let volumeId = details["volumeId"]?.stringValue
            ?? (try? store.get(ResourceKey(kind: .volume, project: snapshot.key.project, name: spec.volume)))??.metadata.id ?? spec.volume
        let state = Self.snapshotState(snapshot)
        return [
            .text("snapshotId", snapshot.metadata.id ?? ""), .text("volumeId", volumeId), .text("status", state),
            .text("startTime", Self.timestamp(snapshot.metadata.creationTimestamp)), .text("progress", state == "completed" ? "100%" : "0%"),
            .text("ownerId", snapshot.key.project), .text("description", spec.description ?? ""),
            .text("volumeSize", details["sizeGB"]?.stringValue ?? "0"), .text("encrypted", "false"), Self.tagSet(snapshot),
        ]
    }

    /// CreateSnapshot: a Snapshot of the volume (named after its id, as API-made resources are).
    func createSnapshot(_ call: EC2Call) throws -> [XMLNode] {
        let volume = try resource(try call.required("VolumeId"), .volume, call, error: "InvalidVolume")
        try call.authorize(.snapshot, project: volume.key.project)
        let id = Self.newId("snap")
        let labels = try Self.tagSpecification(call, resourceType: "snapshot")
        let key = ResourceKey(kind: .snapshot, project: volume.key.project, name: id)
        let description = call.string("Description")
        try write([Resource(metadata: ObjectMeta(name: id, project: volume.key.project, labels: labels), spec: .snapshot(SnapshotSpec(volume: volume.key.name, description: description)))], presetIds: [key: id])
        guard let snapshot = try store.get(key) else { throw EC2Error("InternalError", "the snapshot vanished", status: 500) }
        return snapshotItem(snapshot)
    }

    func describeSnapshots(_ call: EC2Call) throws -> [XMLNode] {
        let ids = call.list("SnapshotId")
        for id in ids where !Self.isId(id, prefix: "snap") { throw EC2Error.malformed("InvalidSnapshotID", id) }
        let owners = call.list("Owner")
        var items: [(String, [XMLNode])] = []
        for snapshot in try visible(.snapshot, call) {
            guard let id = snapshot.metadata.id, ids.isEmpty || ids.contains(id) else { continue }
            if !owners.isEmpty, !owners.contains("self"), !owners.contains(snapshot.key.project) { continue }
            let item = snapshotItem(snapshot)
            var values: [String: [String]] = ["snapshot-id": [id], "status": [Self.snapshotState(snapshot)], "owner-id": [snapshot.key.project]]
            for case .text(let name, let value) in item where name == "volumeId" || name == "description" || name == "volumeSize" {
                values[name == "volumeId" ? "volume-id" : name == "volumeSize" ? "volume-size" : "description"] = [value]
            }
            guard call.filters().allSatisfy({ filter in Self.matchesTags(snapshot, filter.name, filter.values) ?? (values[filter.name] ?? []).contains { FilterMatch.matches($0, filter.values) } }) else { continue }
            items.append((id, item))
        }
        let missing = ids.filter { id in !items.contains { $0.0 == id } }
        if !missing.isEmpty { throw EC2Error.notFound("InvalidSnapshot", missing) }
        let (page, next) = try Self.page(items.sorted { $0.0 < $1.0 }, call)
        return [.set("snapshotSet", page.map(\.1))] + XMLNode.optional("nextToken", next)
    }

    func deleteSnapshot(_ call: EC2Call) throws -> [XMLNode] {
        let snapshot = try resource(try call.required("SnapshotId"), .snapshot, call, error: "InvalidSnapshot")
        try call.authorize(.snapshot, project: snapshot.key.project)
        // As on EC2, a snapshot that volumes are still being made from stays until they are made.
        for volume in try store.list(kind: .volume, project: snapshot.key.project) where !volume.isTerminating {
            if case .volume(let spec) = volume.resource.spec, spec.snapshot == snapshot.key.name, volume.resource.status?.details["backing"] == nil {
                throw EC2Error("InvalidSnapshot.InUse", "The snapshot \(snapshot.metadata.id ?? "") is in use by volume \(volume.metadata.id ?? "") being created")
            }
        }
        _ = try store.delete([snapshot.key], reason: "deleted by \(call.principal.user) through the EC2 API")
        return [.text("return", "true")]
    }
}
