import Foundation
import StratusIdentity
import StratusModel
import StratusStore

extension EC2API {
    static let taggable: [(prefix: String, kind: Kind, error: String, type: String)] = [
        ("i", .instance, "InvalidInstanceID", "instance"), ("vol", .volume, "InvalidVolume", "volume"), ("ami", .image, "InvalidAMIID", "image"),
        ("sg", .securityGroup, "InvalidGroup", "security-group"), ("eipalloc", .address, "InvalidAllocationID", "elastic-ip"),
        ("snap", .snapshot, "InvalidSnapshot", "snapshot"), ("key", .keyPair, "InvalidKeyPair", "key-pair"),
    ]

    /// The other resource types RunInstances may be sent tags for (it makes none of them here).
    static let alsoTaggedAtLaunch: Set<String> = ["volume", "network-interface", "spot-instances-request", "elastic-gpu"]

    /// The EC2 id of a taggable resource (key pairs have none stored: theirs is derived).
    static func tagId(_ stored: StoredResource) -> String? {
        stored.key.kind == .keyPair ? keyPairId(stored) : stored.metadata.id
    }

    /// The tags of a create's `TagSpecification.N` for `resourceType` (a specification without a
    /// type is this resource's), checked as CreateTags checks them. Another type is refused, as on
    /// EC2, except by RunInstances, whose call also makes volumes and interfaces.
    static func tagSpecification(_ call: EC2Call, resourceType: String, othersAllowed: Bool = false) throws -> [String: String] {
        var labels: [String: String] = [:]
        for index in call.indices("TagSpecification") {
            let type = call.string("TagSpecification.\(index).ResourceType") ?? resourceType
            guard type == resourceType else {
                if othersAllowed, Self.alsoTaggedAtLaunch.contains(type) { continue }
                throw EC2Error.invalid("TagSpecification.\(index).ResourceType", type, "This action tags resources of type \(resourceType) only.")
            }
            for tag in call.tags("TagSpecification.\(index).Tag") {
                if tag.key.hasPrefix("aws:") { throw EC2Error.invalid("TagSpecification.\(index).Tag.Key", tag.key, "Tag keys starting with 'aws:' are reserved.") }
                labels[tag.key] = tag.value ?? ""
            }
        }
        return labels
    }

    func taggedResources(_ call: EC2Call) throws -> [StoredResource] {
        let ids = call.list("ResourceId")
        guard !ids.isEmpty else { throw EC2Error.missing("ResourceId") }
        return try ids.map { id in
            guard let type = Self.taggable.first(where: { id.hasPrefix($0.prefix + "-") }) else {
                throw EC2Error("InvalidID", "The ID '\(id)' is not valid")
            }
            guard type.kind == .keyPair else { return try resource(id, type.kind, call, error: type.error) }
            // AWS has no `InvalidKeyPair.Malformed`: an id of another shape is not found.
            guard let pair = try visible(.keyPair, call).first(where: { Self.keyPairId($0) == id }) else { throw EC2Error.notFound(type.error, [id]) }
            return pair
        }
    }

    /// Tagging is writing: the kind's role, and for a key pair its owner's right, as DeleteKeyPair checks.
    func authorizeTagging(_ stored: StoredResource, _ call: EC2Call) throws {
        try call.authorize(stored.key.kind, project: stored.key.project)
        if case .keyPair(let spec) = stored.resource.spec, !call.principal.canManageKeyPair(owner: spec.user, project: stored.key.project) {
            throw EC2Error.unauthorized(call.principal.keyPairDenial(owner: spec.user, project: stored.key.project, name: EC2Name.of(stored.metadata)))
        }
    }

    func createTags(_ call: EC2Call) throws -> [XMLNode] {
        let resources = try taggedResources(call)
        let tags = call.tags()
        guard !tags.isEmpty else { throw EC2Error.missing("Tag") }
        for tag in tags where tag.key.hasPrefix("aws:") { throw EC2Error.invalid("Tag.Key", tag.key, "Tag keys starting with 'aws:' are reserved.") }
        for stored in resources {
            try authorizeTagging(stored, call)
            try update(stored) { resource in for tag in tags { resource.metadata.labels[tag.key] = tag.value ?? "" } }
        }
        return [.text("return", "true")]
    }

    func deleteTags(_ call: EC2Call) throws -> [XMLNode] {
        let resources = try taggedResources(call)
        let tags = call.tags()
        for stored in resources {
            try authorizeTagging(stored, call)
            try update(stored) { resource in
                if tags.isEmpty { resource.metadata.labels = [:] }
                // A tag given with a value is deleted only when the value matches, as on EC2.
                for tag in tags where tag.value == nil || resource.metadata.labels[tag.key] == tag.value { resource.metadata.labels[tag.key] = nil }
            }
        }
        return [.text("return", "true")]
    }

    func describeTags(_ call: EC2Call) throws -> [XMLNode] {
        var items: [(String, [XMLNode])] = []
        for type in Self.taggable {
            for stored in try visible(type.kind, call) {
                guard let id = Self.tagId(stored) else { continue }
                for (key, value) in stored.metadata.labels {
                    let values = ["resource-id": [id], "resource-type": [type.type], "key": [key], "value": [value]]
                    guard call.filters().allSatisfy({ filter in (values[filter.name] ?? []).contains { FilterMatch.matches($0, filter.values) } }) else { continue }
                    items.append(("\(id)/\(key)", [.text("resourceId", id), .text("resourceType", type.type), .text("key", key), .text("value", value)]))
                }
            }
        }
        let (page, next) = try Self.page(items.sorted { $0.0 < $1.0 }, call)
        return [.set("tagSet", page.map(\.1))] + XMLNode.optional("nextToken", next)
    }
}
