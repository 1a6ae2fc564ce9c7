import Foundation
import StratusModel
import StratusStore

extension EC2API {
    /// An EC2 name parameter (`KeyName`, `GroupName`): required, and a valid EC2 name.
    static func ec2Name(_ call: EC2Call, _ parameter: String) throws -> String {
        let name = try call.required(parameter)
        if let problem = EC2Name.problem(with: name) { throw EC2Error.invalid(parameter, name, problem + ".") }
        return name
    }

    /// The metadata of a resource the API makes under an EC2 name: the resource name it maps to,
    /// and the EC2 name in its annotation when the two differ.
    static func metadata(ec2Name: String, project: String) -> ObjectMeta {
        let name = EC2Name.resourceName(for: ec2Name)
        return ObjectMeta(name: name, project: project, annotations: name == ec2Name ? [:] : [EC2Name.annotation: ec2Name])
    }
}

/// The EC2 names and ids of the key pairs and security groups one answer mentions, read once
/// (instances refer to them by resource name).
struct EC2NameBook {
    var groups: [ResourceKey: (id: String, name: String)] = [:]
    var keyNames: [ResourceKey: String] = [:]

    /// Reads the groups and key names of `project`, or of every project when nil.
    init(_ reader: StoreReader, project: String?, groups wantGroups: Bool = true, keys wantKeys: Bool = true) throws {
        if wantGroups {
            let names = try reader.ec2Names(kind: .securityGroup, project: project)
            for group in try reader.ec2Ids(kind: .securityGroup, project: project) {
                let key = ResourceKey(kind: .securityGroup, project: group.project, name: group.name)
                groups[key] = (group.id, names[key] ?? group.name)
            }
        }
        if wantKeys { keyNames = try reader.ec2Names(kind: .keyPair, project: project) }
    }

    init() {}

    /// The book of these groups (already read).
    init(_ groups: [StoredResource]) {
        for group in groups {
            if let id = group.metadata.id { self.groups[group.key] = (id, EC2Name.of(group.metadata)) }
        }
    }

    func group(_ name: String, project: String) -> (id: String?, name: String) {
        let found = groups[ResourceKey(kind: .securityGroup, project: project, name: name)]
        return (found?.id, found?.name ?? name)
    }

    func keyName(_ name: String, project: String) -> String {
        keyNames[ResourceKey(kind: .keyPair, project: project, name: name)] ?? name
    }
}
