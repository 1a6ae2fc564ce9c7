import Foundation
import StratusIdentity
import StratusModel
import StratusStore

extension EC2API {
    /// A device name as clients send it (`/dev/sdf`, `/dev/xvdf`, `/dev/vdf`) in the guest's
    /// virtio naming, which is how attachments are stored.
    static func linuxDevice(_ device: String) -> String {
        device.replacingOccurrences(of: "/dev/sd", with: "/dev/vd").replacingOccurrences(of: "/dev/xvd", with: "/dev/vd")
    }

    /// The volumes attached to `instance` (by their spec), by device.
    func attachedVolumes(of instance: StoredResource) throws -> [(device: String, volume: StoredResource, attachment: VolumeAttachment)] {
        try store.list(kind: .volume, project: instance.key.project).compactMap { volume in
            guard !volume.isTerminating, case .volume(let spec) = volume.resource.spec, let attachment = spec.attachment, attachment.instance == instance.key.name else { return nil }
            return (attachment.device ?? "/dev/vdb", volume, attachment)
        }.sorted { $0.device < $1.device }
    }

    /// An attached volume as EC2's `InstanceBlockDeviceMapping` item.
    static func blockDeviceItem(_ device: String, _ volume: StoredResource, _ attachment: VolumeAttachment) -> [XMLNode] {
        let attached = volume.resource.status?.details["attachment"]?.stringValue == "attached"
        return [.text("deviceName", device), .element("ebs", [
            .text("volumeId", volume.metadata.id ?? ""), .text("status", attached ? "attached" : "attaching"),
            .text("attachTime", timestamp(volume.metadata.creationTimestamp)), .text("deleteOnTermination", attachment.deleteOnTermination == true ? "true" : "false"),
        ])]
    }

    /// The attributes DescribeInstanceAttribute answers for.
    enum InstanceAttribute: String, CaseIterable {
        case instanceType, rootDeviceName, blockDeviceMapping, disableApiTermination, instanceInitiatedShutdownBehavior
    }

    func describeInstanceAttribute(_ call: EC2Call) throws -> [XMLNode] {
        let instance = try resource(try call.required("InstanceId"), .instance, call, error: "InvalidInstanceID")
        guard case .instance(let spec) = instance.resource.spec else { return [] }
        let name = try call.required("Attribute")
        guard let attribute = InstanceAttribute(rawValue: name) else {
            let known = ["kernel", "ramdisk", "userData", "productCodes", "sourceDestCheck", "groupSet", "ebsOptimized", "sriovNetSupport", "enaSupport", "enclaveOptions", "disableApiStop"]
            if known.contains(name) {
                throw EC2Error("UnsupportedOperation", "The attribute '\(name)' is not supported here; supported: \(InstanceAttribute.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            throw EC2Error.invalid("Attribute", name, "Expected one of: \(InstanceAttribute.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        let value: XMLNode
        switch attribute {
        case .instanceType: value = .element("instanceType", [.text("value", spec.instanceType)])
        case .rootDeviceName: value = .element("rootDeviceName", [.text("value", "/dev/vda")])
        case .disableApiTermination: value = .element("disableApiTermination", [.text("value", "false")])
        case .instanceInitiatedShutdownBehavior: value = .element("instanceInitiatedShutdownBehavior", [.text("value", "stop")])
        case .blockDeviceMapping: value = .set("blockDeviceMapping", try attachedVolumes(of: instance).map { Self.blockDeviceItem($0.device, $0.volume, $0.attachment) })
        }
        return [.text("instanceId", instance.metadata.id ?? ""), value]
    }

    /// ModifyInstanceAttribute: `BlockDeviceMapping.N.Ebs.DeleteOnTermination` of an attached
    /// volume, by its device (EC2's way to have a volume deleted with the instance).
    func modifyInstanceAttribute(_ call: EC2Call) throws -> [XMLNode] {
        let instance = try resource(try call.required("InstanceId"), .instance, call, error: "InvalidInstanceID")
        try call.authorize(.instance, project: instance.key.project)
        let mappings = call.indices("BlockDeviceMapping")
        let unsupported = ["Attribute", "Value", "SourceDestCheck", "DisableApiTermination", "DisableApiStop", "InstanceType", "Kernel", "Ramdisk", "UserData",
                           "InstanceInitiatedShutdownBehavior", "GroupId", "EbsOptimized", "SriovNetSupport", "EnaSupport"]
        let others = call.parameters.keys.compactMap { key in key.split(separator: ".").first.map(String.init) }.filter(unsupported.contains)
        guard !mappings.isEmpty else {
            if let other = others.sorted().first {
                throw EC2Error("UnsupportedOperation", "Modifying '\(other)' is not supported here; only BlockDeviceMapping.N.Ebs.DeleteOnTermination is.")
            }
            throw EC2Error("MissingParameter", "The request must contain an attribute to modify (BlockDeviceMapping).")
        }
        let attached = try attachedVolumes(of: instance)
        var changes: [(StoredResource, VolumeSpec)] = []
        for index in mappings {
            let prefix = "BlockDeviceMapping.\(index)."
            let device = try call.required(prefix + "DeviceName")
            guard let match = attached.first(where: { $0.device == Self.linuxDevice(device) }) else {
                throw EC2Error("InvalidInstanceAttributeValue", "No device is currently mapped at \(device)")
            }
            if let volumeId = call.string(prefix + "Ebs.VolumeId"), volumeId != match.volume.metadata.id {
                throw EC2Error("InvalidInstanceAttributeValue", "The volume at \(device) is \(match.volume.metadata.id ?? ""), not \(volumeId)")
            }
            guard let flag = call.string(prefix + "Ebs.DeleteOnTermination") else { continue }
            guard ["true", "false"].contains(flag.lowercased()) else { throw EC2Error.invalid(prefix + "Ebs.DeleteOnTermination", flag, "Expected true or false.") }
            guard case .volume(var spec) = match.volume.resource.spec else { continue }
            spec.attachment?.deleteOnTermination = flag.lowercased() == "true" ? true : nil
            changes.append((match.volume, spec))
        }
        for (volume, spec) in changes { try update(volume) { $0.spec = .volume(spec) } }
        return [.text("return", "true")]
    }
}
