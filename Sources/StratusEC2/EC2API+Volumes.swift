import Foundation
import StratusIdentity
import StratusModel
import StratusStore

extension EC2API {
    /// EC2's volume status: creating until a storage reconciler reports it available, in-use when attached.
    static func volumeStatus(_ volume: StoredResource) -> String {
        if volume.isTerminating { return "deleting" }
        guard case .volume(let spec) = volume.resource.spec else { return "creating" }
        switch volume.resource.status?.phase {
        case "Attached", "Detaching": return "in-use"
        case "Available", "Ready": return spec.attachment == nil ? "available" : "in-use"
        default: return spec.attachment == nil ? "creating" : "in-use"
        }
    }

    func describeVolumes(_ call: EC2Call) throws -> [XMLNode] {
        let ids = call.list("VolumeId")
        for id in ids where !Self.isId(id, prefix: "vol") { throw EC2Error.malformed("InvalidVolumeID", id) }
        var items: [(String, [XMLNode])] = []
        for volume in try visible(.volume, call) {
            guard case .volume(let spec) = volume.resource.spec, let id = volume.metadata.id, ids.isEmpty || ids.contains(id) else { continue }
            let status = Self.volumeStatus(volume)
            let zone = spec.availabilityZone ?? NodeSpec.defaultZone
            var attachments: [[XMLNode]] = []
            var attachedTo: [String] = []
            if let attachment = spec.attachment {
                let instanceId = (try? store.get(ResourceKey(kind: .instance, project: volume.key.project, name: attachment.instance)))??.metadata.id ?? attachment.instance
                attachedTo = [instanceId]
                attachments = [[.text("volumeId", id), .text("instanceId", instanceId), .text("device", attachment.device ?? "/dev/vdb"), .text("status", volume.resource.status?.details["attachment"]?.stringValue == "attached" ? "attached" : "attaching"), .text("attachTime", Self.timestamp(volume.metadata.creationTimestamp)), .text("deleteOnTermination", attachment.deleteOnTermination == true ? "true" : "false")]]
            }
            let values: [String: [String]] = ["volume-id": [id], "status": [status], "availability-zone": [zone], "attachment.instance-id": attachedTo, "size": ["\(spec.sizeGB)"]]
            guard call.filters().allSatisfy({ filter in Self.matchesTags(volume, filter.name, filter.values) ?? (values[filter.name] ?? []).contains { FilterMatch.matches($0, filter.values) } }) else { continue }
            items.append((id, [
                .text("volumeId", id), .text("size", "\(spec.sizeGB)"), .text("availabilityZone", zone), .text("status", status),
                .text("createTime", Self.timestamp(volume.metadata.creationTimestamp)), .set("attachmentSet", attachments), .text("volumeType", "standard"), Self.tagSet(volume),
            ] + XMLNode.optional("snapshotId", spec.snapshot.flatMap { name in (try? store.get(ResourceKey(kind: .snapshot, project: volume.key.project, name: name)))??.metadata.id })))
        }
        let missing = ids.filter { id in !items.contains { $0.0 == id } }
        if !missing.isEmpty { throw EC2Error.notFound("InvalidVolume", missing) }
        let (page, next) = try Self.page(items.sorted { $0.0 < $1.0 }, call)
        return [.set("volumeSet", page.map(\.1))] + XMLNode.optional("nextToken", next)
    }

    func createVolume(_ call: EC2Call) throws -> [XMLNode] {
        let project = try call.project()
        try call.authorize(.volume, project: project)
        var snapshotName: String?
        var size = try call.int("Size")
        if let snapshotId = call.string("SnapshotId") {
            let snapshot = try resource(snapshotId, .snapshot, call, error: "InvalidSnapshot")
            guard snapshot.key.project == project else { throw EC2Error.notFound("InvalidSnapshot", [snapshotId]) }
            guard snapshot.resource.status?.phase == "Completed", let taken = snapshot.resource.status?.details["sizeGB"]?.stringValue.flatMap(Int.init) else {
                throw EC2Error("IncorrectState", "Snapshot \(snapshotId) is not completed yet.")
            }
            if let asked = size, asked < taken { throw EC2Error("InvalidParameterValue", "Volume of \(asked)GiB is too small; minimum is \(taken)GiB.") }
            size = size ?? taken
            snapshotName = snapshot.key.name
        }
        guard let size else { throw EC2Error("MissingParameter", "The request must contain the parameter size or snapshotId") }
        let zone = try call.string("AvailabilityZone") ?? NodeSpec.defaultZone
        guard try zones().contains(zone) else { throw EC2Error.invalid("AvailabilityZone", zone, "Known zones: \(try zones().joined(separator: ", ")).") }
        let id = Self.newId("vol")
        let labels = try Self.tagSpecification(call, resourceType: "volume")
        let key = ResourceKey(kind: .volume, project: project, name: id)
        try write([Resource(metadata: ObjectMeta(name: id, project: project, labels: labels), spec: .volume(VolumeSpec(sizeGB: size, availabilityZone: zone, snapshot: snapshotName)))], presetIds: [key: id])
        guard let volume = try store.get(key) else { throw EC2Error("InternalError", "the volume vanished", status: 500) }
        return [.text("volumeId", id), .text("size", "\(size)"), .text("availabilityZone", zone), .text("status", Self.volumeStatus(volume)), .text("createTime", Self.timestamp(volume.metadata.creationTimestamp)), .text("volumeType", "standard")]
            + XMLNode.optional("snapshotId", snapshotName.flatMap { name in (try? store.get(ResourceKey(kind: .snapshot, project: project, name: name)))??.metadata.id })
    }

    /// ModifyVolume: a larger size (a volume only grows, as on EBS). The node grows the backing file
    /// and exports it again; the modification is reported `completed` once the spec says so.
    func modifyVolume(_ call: EC2Call) throws -> [XMLNode] {
        let volume = try resource(try call.required("VolumeId"), .volume, call, error: "InvalidVolume")
        try call.authorize(.volume, project: volume.key.project)
        guard case .volume(var spec) = volume.resource.spec else { return [] }
        let original = spec.sizeGB
        if let size = try call.int("Size") {
            guard size >= original else { throw EC2Error("InvalidParameterValue", "New size cannot be smaller than existing size (\(original) GiB).") }
            guard size <= 16384 else { throw EC2Error("InvalidParameterValue", "Volume of \(size)GiB is too large; maximum is 16384GiB.") }
            spec.sizeGB = size
        }
        if spec.sizeGB != original { try update(volume) { $0.spec = .volume(spec) } }
        return [.element("volumeModification", [
            .text("volumeId", volume.metadata.id ?? ""), .text("modificationState", "completed"), .text("targetSize", "\(spec.sizeGB)"),
            .text("originalSize", "\(original)"), .text("targetVolumeType", "standard"), .text("originalVolumeType", "standard"),
            .text("progress", "100"), .text("startTime", Self.timestamp(Timestamp.string(Date()))), .text("endTime", Self.timestamp(Timestamp.string(Date()))),
        ])]
    }

    func deleteVolume(_ call: EC2Call) throws -> [XMLNode] {
        let volume = try resource(try call.required("VolumeId"), .volume, call, error: "InvalidVolume")
        try call.authorize(.volume, project: volume.key.project)
        if volume.resource.status?.phase == "Detaching" {
            throw EC2Error("VolumeInUse", "Volume \(volume.metadata.id ?? "") is still detaching from its instance")
        }
        if case .volume(let spec) = volume.resource.spec, spec.attachment != nil {
            throw EC2Error("VolumeInUse", "Volume \(volume.metadata.id ?? "") is currently attached to \(spec.attachment!.instance)")
        }
        _ = try store.delete([volume.key], reason: "deleted by \(call.principal.user) through the EC2 API")
        return [.text("return", "true")]
    }

    func attachVolume(_ call: EC2Call, attach: Bool) throws -> [XMLNode] {
        let volume = try resource(try call.required("VolumeId"), .volume, call, error: "InvalidVolume")
        try call.authorize(.volume, project: volume.key.project)
        guard case .volume(var spec) = volume.resource.spec else { return [] }
        var instanceId = call.string("InstanceId")
        var device = call.string("Device")
        if attach {
            let instance = try resource(try call.required("InstanceId"), .instance, call, error: "InvalidInstanceID")
            guard instance.key.project == volume.key.project else { throw EC2Error.notFound("InvalidInstanceID", [instanceId ?? ""]) }
            if let current = spec.attachment { throw EC2Error("VolumeInUse", "\(volume.metadata.id ?? "") is already attached to an instance (\(current.instance))") }
            if volume.resource.status?.phase == "Detaching" { throw EC2Error("VolumeInUse", "\(volume.metadata.id ?? "") is still detaching from its previous instance") }
            let linux = device.map(Self.linuxDevice) ?? "/dev/vdb"
            for other in try store.list(kind: .volume, project: volume.key.project) where other.key != volume.key && !other.isTerminating {
                if case .volume(let otherSpec) = other.resource.spec, let taken = otherSpec.attachment, taken.instance == instance.key.name, (taken.device ?? "/dev/vdb") == linux {
                    throw EC2Error("InvalidParameterValue", "Invalid value '\(device ?? linux)' for unixDevice. Attachment point \(device ?? linux) is already in use")
                }
            }
            spec.attachment = VolumeAttachment(instance: instance.key.name, device: linux)
            device = linux
        } else {
            guard let current = spec.attachment else { throw EC2Error("IncorrectState", "Volume \(volume.metadata.id ?? "") is in the 'available' state.") }
            instanceId = (try store.get(ResourceKey(kind: .instance, project: volume.key.project, name: current.instance)))?.metadata.id ?? current.instance
            device = current.device
            spec.attachment = nil
        }
        try update(volume) { $0.spec = .volume(spec) }
        return [
            .text("volumeId", volume.metadata.id ?? ""), .text("instanceId", instanceId ?? ""), .text("device", device ?? ""),
            .text("status", attach ? "attaching" : "detaching"), .text("attachTime", Self.timestamp(Timestamp.string(Date()))),
        ]
    }

    /// As on EC2, terminating an instance detaches its volumes (AttachVolume's DeleteOnTermination
    /// is false): they become available once the guest is gone. Those with deleteOnTermination
    /// were marked for deletion with the instance (`Store.delete`). Volumes of manifests keep their
    /// spec; their attachment names an instance that no longer exists and they say so.
    func detachVolumes(of instances: [StoredResource]) throws {
        for project in Set(instances.map(\.key.project)) {
            let names = Set(instances.filter { $0.key.project == project }.map(\.key.name))
            for volume in try store.list(kind: .volume, project: project) where !volume.isTerminating && volume.metadata.applySet == nil {
                guard case .volume(var spec) = volume.resource.spec, let attachment = spec.attachment, names.contains(attachment.instance) else { continue }
                spec.attachment = nil
                try update(volume) { $0.spec = .volume(spec) }
            }
        }
    }
}
