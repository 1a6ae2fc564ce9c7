import Foundation
import StratusIdentity
import StratusModel
import StratusStore

extension EC2API {
    /// The caller's resources of a kind: their project's, or every project's for cloudadmin and itsec.
    ///
    /// A deleted resource is gone at once, as on EC2, except an instance, which shows `shutting-down`.
    func visible(_ kind: Kind, _ call: EC2Call, in reader: StoreReader? = nil) throws -> [StoredResource] {
        let all: [StoredResource]
        if call.seesAllProjects {
            all = try reader?.list(kind: kind) ?? store.list(kind: kind)
        } else if let project = call.principal.defaultProject {
            all = try reader?.list(kind: kind, project: project) ?? store.list(kind: kind, project: project)
        } else {
            return []
        }
        return kind == .instance ? all : all.filter { !$0.isTerminating }
    }

    /// A resource by EC2 id (`i-…`), checked for shape, kind and visibility.
    func resource(_ id: String, _ kind: Kind, _ call: EC2Call, error: String, in reader: StoreReader? = nil) throws -> StoredResource {
        guard let prefix = kind.idPrefix, Self.isId(id, prefix: prefix) else { throw EC2Error.malformed(Self.malformedCode[kind] ?? error, id) }
        let stored: StoredResource?
        if let reader { stored = try reader.get(ec2Id: id) } else { stored = try store.get(ec2Id: id) }
        guard let found = stored, found.key.kind == kind, call.visible(found.key.project), kind == .instance || !found.isTerminating else {
            throw EC2Error.notFound(error, [id])
        }
        return found
    }

    /// A malformed id's code where AWS spells it other than the not-found one (`InvalidVolumeID.Malformed`
    /// beside `InvalidVolume.NotFound`, `InvalidGroupId.Malformed` beside `InvalidGroup.NotFound`).
    static let malformedCode: [Kind: String] = [
        .instance: "InvalidInstanceID", .image: "InvalidAMIID", .volume: "InvalidVolumeID", .snapshot: "InvalidSnapshotID", .securityGroup: "InvalidGroupId",
    ]

    /// `prefix-` and 8 to 17 lowercase hex digits.
    static func isId(_ id: String, prefix: String) -> Bool {
        guard id.hasPrefix(prefix + "-") else { return false }
        let hex = id.dropFirst(prefix.count + 1)
        return (8...17).contains(hex.count) && hex.allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }

    /// The user whose request is being answered, for the field manager of what it writes.
    @TaskLocal static var caller: String?

    /// A fresh id for a resource the API creates (`i-0a1b2c3d`); the store refuses a duplicate.
    static func newId(_ prefix: String) -> String { "\(prefix)-" + String(format: "%08x", UInt32.random(in: 0...UInt32.max)) }

    /// Admits new or changed resources through the same pipeline as `stratus apply` (rules,
    /// defaults, references, quotas) in one transaction; problems become EC2 errors.
    @discardableResult
    /// - Parameter createOnly: the error when a resource of the write exists already (decided in
    ///   the write's transaction): a create must never turn into an update of another's resource.
    func write(_ resources: [Resource], presetIds: [ResourceKey: String] = [:], applySet: String? = nil, keepCreated: Bool = false, createOnly: EC2Error? = nil) throws -> ApplyPlan {
        // The field manager names who wrote: `api:alice` (what a GitSync's revert event names).
        let manager = Self.caller.map { "api:\($0)" } ?? "api"
        var options = applySet.map { ApplyOptions(applySet: $0, manager: manager) } ?? ApplyOptions(applySet: "", manager: manager)
        options.presetIds = presetIds
        options.keepCreated = keepCreated
        if let createOnly {
            // One being deleted may be made again, as on EC2 after a delete.
            options.authorize = { change in if change.action != .create && !change.notes.contains("deletion cancelled") { throw createOnly } }
        }
        do {
            return try store.apply(try resources.map { try Admission.document(for: $0) }, options: options)
        } catch let errors as ManifestErrors {
            throw Self.ec2Error(errors)  // actions catch EC2 codes (ImportKeyPair's InvalidKey.Format)
        }
    }

    /// Writes a changed copy of a stored resource, keeping the apply set it belongs to.
    func update(_ stored: StoredResource, _ change: (inout Resource) throws -> Void) throws {
        var resource = stored.resource
        resource.status = nil
        try change(&resource)
        try write([resource], applySet: stored.metadata.applySet ?? "")
    }

    /// EC2's `2026-11-25T01:02:03.000Z`.
    static func timestamp(_ text: String?) -> String {
        guard let text else { return "" }
        if text.hasSuffix("Z"), !text.contains(".") { return String(text.dropLast()) + ".000Z" }
        return text
    }

    /// Tags of a resource: its labels.
    static func tagSet(_ resource: StoredResource) -> XMLNode {
        .set("tagSet", resource.metadata.labels.sorted { $0.key < $1.key }.map { [.text("key", $0.key), .text("value", $0.value)] })
    }

    /// Whether a resource's tags pass `tag:Key`, `tag-key` and `tag-value` filters.
    static func matchesTags(_ resource: StoredResource, _ name: String, _ values: [String]) -> Bool? {
        let labels = resource.metadata.labels
        if name.hasPrefix("tag:") { return FilterMatch.matches(labels[String(name.dropFirst(4))], values) }
        if name == "tag-key" { return labels.keys.contains { FilterMatch.matches($0, values) } }
        if name == "tag-value" { return labels.values.contains { FilterMatch.matches($0, values) } }
        return nil
    }

    /// Applies MaxResults/NextToken to a sorted list: the page and the token of the next one.
    static func page<T>(_ items: [T], _ call: EC2Call, minimum: Int = 5) throws -> ([T], String?) {
        let offset = try call.string("NextToken").map { token -> Int in
            guard let data = Data(base64Encoded: token), let value = Int(String(decoding: data, as: UTF8.self)), value >= 0 else {
                throw EC2Error("InvalidParameterValue", "The token '\(token)' is invalid: pass the nextToken of the previous response.")
            }
            return value
        } ?? 0
        guard let max = try call.int("MaxResults") else { return (Array(items.dropFirst(offset)), nil) }
        guard (minimum...1000).contains(max) else {
            throw EC2Error.invalid("MaxResults", "\(max)", "It must be between \(minimum) and 1000.")
        }
        let end = min(items.count, offset + max)
        let slice = offset < items.count ? Array(items[offset..<end]) : []
        return (slice, end < items.count ? Data(String(end).utf8).base64EncodedString() : nil)
    }
}
