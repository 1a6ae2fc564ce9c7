import Foundation
import StratusIdentity
import StratusModel
import StratusStore

extension EC2API {
    func describeImages(_ call: EC2Call) throws -> [XMLNode] {
        let ids = call.list("ImageId")
        for id in ids where !Self.isId(id, prefix: "ami") { throw EC2Error.malformed("InvalidAMIID", id) }
        let owners = call.list("Owner")
        var items: [(String, [XMLNode])] = []
        for image in try store.list(kind: .image) {
            guard case .image(let spec) = image.resource.spec, let id = image.metadata.id, !image.isTerminating else { continue }
            guard call.visible(image.key.project) || spec.public == true else { continue }
            guard ids.isEmpty || ids.contains(id) else { continue }
            if !owners.isEmpty, !owners.contains(image.key.project), !(owners.contains("self") && call.visible(image.key.project) && image.key.project == call.principal.defaultProject) { continue }
            let (state, reason) = Self.imageState(image, spec)
            let kernel = spec.kernel.map { _ in "aki-" + id.dropFirst(4) }
            let ramdisk = spec.ramdisk.map { _ in "ari-" + id.dropFirst(4) }
            let values: [String: [String]] = [
                "image-id": [id], "name": [image.key.name], "owner-id": [image.key.project], "is-public": [spec.public == true ? "true" : "false"],
                "state": [state], "architecture": [spec.architecture?.rawValue ?? "x86_64"], "image-type": ["machine"],
            ]
            guard call.filters().allSatisfy({ filter in Self.matchesTags(image, filter.name, filter.values) ?? (values[filter.name] ?? []).contains { FilterMatch.matches($0, filter.values) } }) else { continue }
            items.append((id, [
                .text("imageId", id), .text("imageLocation", spec.source.hasPrefix("s3://") ? String(spec.source.dropFirst(5)) : "\(image.key.project)/\(image.key.name)"), .text("imageState", state),
                .text("imageOwnerId", image.key.project), .text("isPublic", spec.public == true ? "true" : "false"),
                .text("architecture", spec.architecture?.rawValue ?? "x86_64"), .text("imageType", "machine"), .text("name", image.key.name),
                .text("rootDeviceType", "instance-store"), .text("virtualizationType", "hvm"), .text("hypervisor", "xen"),
                .text("creationDate", Self.timestamp(image.metadata.creationTimestamp)), Self.tagSet(image),
            ] + XMLNode.optional("kernelId", kernel) + XMLNode.optional("ramdiskId", ramdisk)
                + (reason.map { [.element("stateReason", [.text("code", "pending"), .text("message", $0)])] } ?? [])))
        }
        let missing = ids.filter { id in !items.contains { $0.0 == id } }
        if !missing.isEmpty { throw EC2Error.notFound("InvalidAMIID", missing) }
        return [.set("imagesSet", items.sorted { $0.0 < $1.0 }.map(\.1))]
    }

    /// EC2's image state from the image reconciler's status: `pending` (with why) until each
    /// object-store file exists, then `available`; an image with local files only is available.
    static func imageState(_ image: StoredResource, _ spec: ImageSpec) -> (state: String, reason: String?) {
        switch image.resource.status?.phase {
        case "Available": return ("available", nil)
        case "Pending": return ("pending", image.resource.status?.condition(.ready)?.message)
        case "Failed": return ("failed", image.resource.status?.condition(.ready)?.message)
        default:
            let fromStore = [spec.source, spec.kernel, spec.ramdisk].contains { $0?.hasPrefix("s3://") == true }
            return fromStore ? ("pending", "not looked at yet") : ("available", nil)
        }
    }

    func registerImage(_ call: EC2Call) throws -> [XMLNode] {
        let project = try call.project()
        try call.authorize(.image, project: project)
        let location = try call.string("ImageLocation") ?? call.required("Name")
        let name = call.string("Name") ?? String(location.split(separator: "/").last ?? "image")
            .replacingOccurrences(of: ".manifest.xml", with: "").lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }.map(String.init).joined()
        if try store.get(ResourceKey(kind: .image, project: project, name: name)) != nil {
            throw EC2Error("InvalidAMIName.Duplicate", "AMI name \(name) is already in use by an AMI in project \(project)")
        }
        let source = location.hasPrefix("/") || location.hasPrefix("s3://") ? location : "s3://\(location)"
        // EC2 has no disk format parameter: a .qcow2 file is qcow2, anything else a raw disk.
        var spec = ImageSpec(source: source, format: source.lowercased().hasSuffix(".qcow2") ? .qcow2 : .raw)
        spec.kernel = try bootFile(call, "KernelId", prefix: "aki", project: project) { $0.kernel }
        spec.ramdisk = try bootFile(call, "RamdiskId", prefix: "ari", project: project) { $0.ramdisk }
        try write([Resource(metadata: ObjectMeta(name: name, project: project), spec: .image(spec))])
        return [.text("imageId", try store.get(ResourceKey(kind: .image, project: project, name: name))?.metadata.id ?? "")]
    }

    /// The kernel or ramdisk a RegisterImage names by id (`aki-`/`ari-` and the hex of an image
    /// the caller may launch that has one): the new image boots the same file.
    private func bootFile(_ call: EC2Call, _ parameter: String, prefix: String, project: String, _ file: (ImageSpec) -> String?) throws -> String? {
        guard let id = call.string(parameter) else { return nil }
        guard Self.isId(id, prefix: prefix) else { throw EC2Error.invalid(parameter, id, "Expected \(prefix)- and 8 to 17 lowercase hex digits.") }
        guard let image = try store.liveSpec(ec2Id: "ami-" + id.dropFirst(4)), case .image(let spec) = image.spec,
            call.visible(image.key.project) || spec.public == true, let path = file(spec)
        else { throw EC2Error.invalid(parameter, id, "No image you may launch has this \(prefix == "aki" ? "kernel" : "ramdisk"); DescribeImages shows the ids there are.") }
        return path
    }

    func deregisterImage(_ call: EC2Call) throws -> [XMLNode] {
        let image = try resource(try call.required("ImageId"), .image, call, error: "InvalidAMIID")
        try call.authorize(.image, project: image.key.project)
        // A manifest's instance would fail to converge the next time it is built; the API's own
        // instances keep the files they were built from, as on EC2.
        let named = try store.list(kind: .instance).filter { instance in
            guard case .instance(let spec) = instance.resource.spec, instance.metadata.applySet != nil, !instance.isTerminating else { return false }
            return spec.image == image.key.name && instance.key.project == image.key.project || spec.image == "\(image.key.project)/\(image.key.name)"
        }
        if let first = named.first {
            throw EC2Error("OperationNotPermitted", "Image \(image.metadata.id ?? image.key.name) is named by instance \(first.key.name) of project \(first.key.project), applied from manifest set \(first.metadata.applySet ?? "?")\(named.count > 1 ? " (and \(named.count - 1) more)" : ""); change or delete those instances in the manifests first.")
        }
        _ = try store.delete([image.key], reason: "deregistered by \(call.principal.user) through the EC2 API")
        return [.text("return", "true")]
    }

    func describeImageAttribute(_ call: EC2Call) throws -> [XMLNode] {
        let image = try resource(try call.required("ImageId"), .image, call, error: "InvalidAMIID")
        let attribute = try call.required("Attribute")
        guard case .image(let spec) = image.resource.spec else { return [] }
        switch attribute {
        case "launchPermission":
            return [.text("imageId", image.metadata.id ?? ""), .set("launchPermission", spec.public == true ? [[.text("group", "all")]] : [])]
        case "kernel":
            return [.text("imageId", image.metadata.id ?? ""), .element("kernel", XMLNode.optional("value", spec.kernel))]
        case "ramdisk":
            return [.text("imageId", image.metadata.id ?? ""), .element("ramdisk", XMLNode.optional("value", spec.ramdisk))]
        default:
            throw EC2Error.invalid("Attribute", attribute, "Supported: launchPermission, kernel, ramdisk.")
        }
    }

    func modifyImageAttribute(_ call: EC2Call) throws -> [XMLNode] {
        let image = try resource(try call.required("ImageId"), .image, call, error: "InvalidAMIID")
        try call.authorize(.image, project: image.key.project)
        var makePublic: Bool?
        // boto3/awscli: LaunchPermission.Add.N.Group=all; boto 2/euca2ools: Attribute=launchPermission, OperationType, UserGroup.N.
        for index in call.indices("LaunchPermission.Add") where call.string("LaunchPermission.Add.\(index).Group") == "all" { makePublic = true }
        for index in call.indices("LaunchPermission.Remove") where call.string("LaunchPermission.Remove.\(index).Group") == "all" { makePublic = false }
        if makePublic == nil, call.string("Attribute") == "launchPermission", call.list("UserGroup").contains("all") {
            makePublic = call.string("OperationType") == "add" ? true : call.string("OperationType") == "remove" ? false : nil
        }
        if !call.list("UserId").isEmpty || call.indices("LaunchPermission.Add").contains(where: { call.string("LaunchPermission.Add.\($0).UserId") != nil }) {
            throw EC2Error("Unsupported", "Launch permissions for single accounts are not supported; use Group=all to make an image public.")
        }
        guard let makePublic else { throw EC2Error.missing("LaunchPermission") }
        try update(image) { resource in
            guard case .image(var spec) = resource.spec else { return }
            spec.public = makePublic
            resource.spec = .image(spec)
        }
        return [.text("return", "true")]
    }
}
