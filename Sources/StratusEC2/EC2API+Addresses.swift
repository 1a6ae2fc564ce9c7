import Foundation
import StratusIdentity
import StratusModel
import StratusStore

extension EC2API {
    /// The public IP an address resource holds: its spec's, or the one allocated to it (at
    /// AllocateAddress, or by the address reconciler for a manifest's).
    func publicIp(_ address: StoredResource) -> String { Self.publicIp(address, store: store) }

    static func publicIp(_ address: StoredResource, store: Store) -> String {
        if case .address(let spec) = address.resource.spec, let ip = spec.publicIp { return ip }
        if let ip = address.resource.status?.details["publicIp"]?.stringValue { return ip }
        return (try? store.allocation(pool: Store.publicIpPool, owner: address.key)) ?? ""
    }

    /// The public IP of each instance with an associated address (DescribeInstances' `ipAddress`).
    func publicIpsByInstance(_ call: EC2Call) throws -> [ResourceKey: String] {
        var found: [ResourceKey: String] = [:]
        for address in try visible(.address, call) where !address.isTerminating {
            guard case .address(let spec) = address.resource.spec, let name = spec.instance else { continue }
            let ip = publicIp(address)
            if !ip.isEmpty { found[ResourceKey(kind: .instance, project: address.key.project, name: name)] = ip }
        }
        return found
    }

    func describeAddresses(_ call: EC2Call) throws -> [XMLNode] {
        let ips = call.list("PublicIp")
        let ids = call.list("AllocationId")
        var items: [(String, [XMLNode])] = []
        for address in try visible(.address, call) {
            guard case .address(let spec) = address.resource.spec, let id = address.metadata.id else { continue }
            let ip = publicIp(address)
            guard ips.isEmpty || ips.contains(ip), ids.isEmpty || ids.contains(id) else { continue }
            let instanceId = spec.instance.flatMap { (try? store.get(ResourceKey(kind: .instance, project: address.key.project, name: $0)))??.metadata.id }
            let values: [String: [String]] = ["public-ip": [ip], "allocation-id": [id], "instance-id": instanceId.map { [$0] } ?? [], "domain": ["standard"]]
            guard call.filters().allSatisfy({ filter in Self.matchesTags(address, filter.name, filter.values) ?? (values[filter.name] ?? []).contains { FilterMatch.matches($0, filter.values) } }) else { continue }
            items.append((id, [.text("publicIp", ip), .text("allocationId", id), .text("domain", "standard")] + XMLNode.optional("instanceId", instanceId) + [Self.tagSet(address)]))
        }
        let missing = ips.filter { ip in !items.contains { item in item.1.contains { if case .text("publicIp", ip) = $0 { true } else { false } } } }
        if !missing.isEmpty { throw EC2Error("InvalidAddress.NotFound", "Address '\(missing[0])' not found.") }
        return [.set("addressesSet", items.sorted { $0.0 < $1.0 }.map(\.1))]
    }

    func allocateAddress(_ call: EC2Call) throws -> [XMLNode] {
        let project = try call.project()
        try call.authorize(.address, project: project)
        let id = Self.newId("eipalloc")
        let key = ResourceKey(kind: .address, project: project, name: id)
        let claimed = call.string("Address")
        if let claimed, !(IPv4Address(claimed).map(publicRange.contains) ?? false) {
            throw EC2Error.invalid("Address", claimed, "Expected an IPv4 address of the public range \(publicRange).")
        }
        // The public IP is the caller's at once, as on EC2: taken before the address is written
        // (so a full pool writes nothing), given back if the write fails.
        guard let ip = try store.allocatePublicIp(claimed, range: publicRange, owner: key) else {
            if let claimed { throw EC2Error("InvalidAddress.InUse", "Address \(claimed) is allocated to another account or address.") }
            throw EC2Error("AddressLimitExceeded", "Every address of the public range \(publicRange) is allocated; release one (ReleaseAddress).")
        }
        do {
            try write([Resource(metadata: ObjectMeta(name: id, project: project), spec: .address(AddressSpec(publicIp: claimed)))], presetIds: [key: id])
        } catch {
            try? store.release(pool: Store.publicIpPool, owner: key)
            throw error
        }
        return [.text("publicIp", ip), .text("allocationId", id), .text("domain", "standard")]
    }

    /// The address named by `AllocationId` or `PublicIp`.
    func namedAddress(_ call: EC2Call) throws -> StoredResource {
        if let id = call.string("AllocationId") { return try resource(id, .address, call, error: "InvalidAllocationID") }
        let ip = try call.required("PublicIp")
        guard let address = try visible(.address, call).first(where: { publicIp($0) == ip }) else {
            throw EC2Error("InvalidAddress.NotFound", "Address '\(ip)' not found.")
        }
        return address
    }

    func releaseAddress(_ call: EC2Call) throws -> [XMLNode] {
        let address = try namedAddress(call)
        try call.authorize(.address, project: address.key.project)
        _ = try store.delete([address.key], reason: "released by \(call.principal.user) through the EC2 API")
        // The IP is free at once, as on EC2; the terminating address is already out of the filter.
        try store.release(pool: Store.publicIpPool, owner: address.key)
        return [.text("return", "true")]
    }

    func associateAddress(_ call: EC2Call, associate: Bool) throws -> [XMLNode] {
        let address: StoredResource
        if !associate, let id = call.string("AssociationId") {
            address = try resource("eipalloc-" + id.dropFirst("eipassoc-".count), .address, call, error: "InvalidAssociationID")
        } else {
            address = try namedAddress(call)
        }
        try call.authorize(.address, project: address.key.project)
        guard case .address(var spec) = address.resource.spec else { return [] }
        if associate {
            let instance = try resource(try call.required("InstanceId"), .instance, call, error: "InvalidInstanceID")
            guard instance.key.project == address.key.project else { throw EC2Error.notFound("InvalidInstanceID", [instance.metadata.id ?? ""]) }
            // EC2-classic: an instance has one elastic address; associating another moves it.
            for other in try store.list(kind: .address, project: address.key.project) where other.key != address.key && !other.isTerminating {
                guard case .address(var held) = other.resource.spec, held.instance == instance.key.name else { continue }
                held.instance = nil
                try update(other) { $0.spec = .address(held) }
            }
            spec.instance = instance.key.name
        } else {
            spec.instance = nil
        }
        try update(address) { $0.spec = .address(spec) }
        let association = "eipassoc-" + (address.metadata.id ?? "").dropFirst("eipalloc-".count)
        return [.text("return", "true")] + (associate ? [.text("associationId", association)] : [])
    }
}
