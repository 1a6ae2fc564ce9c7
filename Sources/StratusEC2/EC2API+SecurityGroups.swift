import Foundation
import StratusIdentity
import StratusModel
import StratusStore

extension EC2API {
    func describeSecurityGroups(_ call: EC2Call) throws -> [XMLNode] {
        let names = call.list("GroupName")
        let ids = call.list("GroupId")
        for id in ids where !Self.isId(id, prefix: "sg") { throw EC2Error.malformed("InvalidGroupId", id) }
        var items: [(String, [XMLNode])] = []
        let groups = try visible(.securityGroup, call)
        let book = EC2NameBook(groups)
        for group in groups {
            guard case .securityGroup(let spec) = group.resource.spec, let id = group.metadata.id else { continue }
            let name = EC2Name.of(group.metadata)
            guard names.isEmpty || names.contains(name), ids.isEmpty || ids.contains(id) else { continue }
            let values = ["group-name": [name], "group-id": [id], "description": [spec.description ?? ""], "owner-id": [group.key.project]]
            guard call.filters().allSatisfy({ filter in Self.matchesTags(group, filter.name, filter.values) ?? (values[filter.name] ?? []).contains { FilterMatch.matches($0, filter.values) } }) else { continue }
            items.append((id, [
                .text("ownerId", group.key.project), .text("groupId", id), .text("groupName", name),
                .text("groupDescription", spec.description ?? ""),
                .set("ipPermissions", (spec.ingress ?? []).map { Self.permission($0, project: group.key.project, book) }), .set("ipPermissionsEgress", []), Self.tagSet(group),
            ]))
        }
        let missing = names.filter { name in !items.contains { item in item.1.contains { if case .text("groupName", name) = $0 { true } else { false } } } }
            + ids.filter { id in !items.contains { $0.0 == id } }
        if !missing.isEmpty { throw EC2Error("InvalidGroup.NotFound", "The security group '\(missing[0])' does not exist") }
        return [.set("securityGroupInfo", items.sorted { $0.0 < $1.0 }.map(\.1))]
    }

    static func permission(_ rule: IngressRule, project: String, _ book: EC2NameBook) -> [XMLNode] {
        let proto = rule.protocol == .all ? "-1" : rule.protocol.rawValue
        var item: [XMLNode] = [.text("ipProtocol", proto)]
        if let from = rule.fromPort { item.append(.text("fromPort", "\(from)")) }
        if let to = rule.toPort { item.append(.text("toPort", "\(to)")) }
        item.append(.set("groups", rule.sourceGroup.map { source in
            let group = book.group(source, project: project)
            return [[.text("groupName", group.name)] + XMLNode.optional("groupId", group.id)]
        } ?? []))
        item.append(.set("ipRanges", rule.cidr.map { [[.text("cidrIp", $0)]] } ?? []))
        return item
    }

    func createSecurityGroup(_ call: EC2Call) throws -> [XMLNode] {
        let project = try call.project()
        try call.authorize(.securityGroup, project: project)
        let name = try Self.ec2Name(call, "GroupName")
        let description = try call.required("GroupDescription")
        if name == Store.defaultGroup {
            throw EC2Error("InvalidGroup.Reserved", "The security group 'default' is reserved: every project has it already, and it cannot be made again.")
        }
        let labels = try Self.tagSpecification(call, resourceType: "security-group")
        if try store.named(.securityGroup, ec2Name: name, project: project) != nil {
            throw EC2Error("InvalidGroup.Duplicate", "The security group '\(name)' already exists")
        }
        var metadata = Self.metadata(ec2Name: name, project: project)
        metadata.labels = labels
        try write([Resource(metadata: metadata, spec: .securityGroup(SecurityGroupSpec(description: description)))],
                  createOnly: EC2Error("InvalidGroup.Duplicate", "The security group '\(name)' already exists\(metadata.name == name ? "" : " (its resource name \(metadata.name) is taken)")"))
        let stored = try store.get(ResourceKey(kind: .securityGroup, project: project, name: metadata.name))
        return [.text("return", "true"), .text("groupId", stored?.metadata.id ?? "")]
    }

    /// The group named by `GroupId` or `GroupName`.
    func namedGroup(_ call: EC2Call) throws -> StoredResource {
        if let id = call.string("GroupId") { return try resource(id, .securityGroup, call, error: "InvalidGroup") }
        let name = try call.required("GroupName")
        let project = try call.project()
        guard let group = try store.named(.securityGroup, ec2Name: name, project: project) else {
            throw EC2Error("InvalidGroup.NotFound", "The security group '\(name)' does not exist")
        }
        return group
    }

    func deleteSecurityGroup(_ call: EC2Call) throws -> [XMLNode] {
        let group = try namedGroup(call)
        try call.authorize(.securityGroup, project: group.key.project)
        if group.key.name == Store.defaultGroup {
            throw EC2Error("CannotDelete", "the specified group: \"default\" name: \"\(EC2Name.of(group.metadata))\" owner: \"\(group.key.project)\" cannot be deleted by a user; it goes with its project")
        }
        let users = try store.list(kind: .instance, project: group.key.project).filter { instance in
            if case .instance(let spec) = instance.resource.spec { return (spec.securityGroups ?? []).contains(group.key.name) && !instance.isTerminating }
            return false
        }
        if let user = users.first { throw EC2Error("DependencyViolation", "resource \(group.metadata.id ?? "") has a dependent object (instance \(user.metadata.id ?? ""))") }
        _ = try store.delete([group.key], reason: "deleted by \(call.principal.user) through the EC2 API")
        return [.text("return", "true"), .text("groupId", group.metadata.id ?? "")]
    }

    /// The rules of `IpPermissions.N…` (boto3, awscli) or the flat legacy parameters (boto 2, euca2ools).
    func rules(_ call: EC2Call, project: String) throws -> [IngressRule] {
        /// A source group named by EC2 name or id, as the resource name rules keep.
        func source(name: String?, id: String?) throws -> String? {
            if let id {
                let group = try resource(id, .securityGroup, call, error: "InvalidGroup")
                guard group.key.project == project else { throw EC2Error.notFound("InvalidGroup", [id]) }
                return group.key.name
            }
            guard let name else { return nil }
            guard let group = try store.named(.securityGroup, ec2Name: name, project: project) else {
                throw EC2Error("InvalidGroup.NotFound", "The security group '\(name)' does not exist")
            }
            return group.key.name
        }
        func rule(_ proto: String?, _ from: Int?, _ to: Int?, cidr: String?, group: String?) throws -> IngressRule {
            let name = proto ?? "tcp"
            let ipProtocol: IPProtocol? = switch name.lowercased() {
            case "-1", "all": .all
            case "tcp", "6": .tcp
            case "udp", "17": .udp
            case "icmp", "1": .icmp
            default: nil
            }
            guard let ipProtocol else { throw EC2Error.invalid("IpProtocol", name, "Use tcp, udp, icmp or -1.") }
            let ports = ipProtocol == .all
            return IngressRule(protocol: ipProtocol, fromPort: ports ? nil : from, toPort: ports ? nil : to, cidr: cidr, sourceGroup: group)
        }
        var result: [IngressRule] = []
        for index in call.indices("IpPermissions") {
            let base = "IpPermissions.\(index)"
            let proto = call.string("\(base).IpProtocol")
            let from = try call.int("\(base).FromPort")
            let to = try call.int("\(base).ToPort")
            let cidrs = call.indices("\(base).IpRanges").compactMap { call.string("\(base).IpRanges.\($0).CidrIp") }
            let groups = try call.indices("\(base).Groups").compactMap {
                try source(name: call.string("\(base).Groups.\($0).GroupName"), id: call.string("\(base).Groups.\($0).GroupId"))
            }
            for cidr in cidrs { result.append(try rule(proto, from, to, cidr: cidr, group: nil)) }
            for group in groups { result.append(try rule(proto, from, to, cidr: nil, group: group)) }
            if cidrs.isEmpty && groups.isEmpty { result.append(try rule(proto, from, to, cidr: "0.0.0.0/0", group: nil)) }
        }
        if result.isEmpty, call.string("IpProtocol") != nil || call.string("CidrIp") != nil || call.string("SourceSecurityGroupName") != nil {
            let group = try source(name: call.string("SourceSecurityGroupName"), id: nil)
            result.append(try rule(call.string("IpProtocol"), try call.int("FromPort"), try call.int("ToPort"), cidr: group == nil ? (call.string("CidrIp") ?? "0.0.0.0/0") : nil, group: group))
        }
        guard !result.isEmpty else { throw EC2Error.missing("IpPermissions") }
        return result
    }

    func changeIngress(_ call: EC2Call, authorize: Bool) throws -> [XMLNode] {
        let group = try namedGroup(call)
        try call.authorize(.securityGroup, project: group.key.project)
        let changes = try rules(call, project: group.key.project)
        guard case .securityGroup(var spec) = group.resource.spec else { return [] }
        var ingress = spec.ingress ?? []
        for rule in changes {
            if authorize {
                if ingress.contains(rule) {
                    throw EC2Error("InvalidPermission.Duplicate", "the specified rule \"peer: \(rule.cidr ?? rule.sourceGroup ?? ""), \(rule.protocol.rawValue.uppercased()), from port: \(rule.fromPort ?? -1), to port: \(rule.toPort ?? -1), ALLOW\" already exists")
                }
                ingress.append(rule)
            } else {
                guard let index = ingress.firstIndex(of: rule) else {
                    throw EC2Error("InvalidPermission.NotFound", "The specified rule does not exist in this security group.")
                }
                ingress.remove(at: index)
            }
        }
        spec.ingress = ingress
        try update(group) { $0.spec = .securityGroup(spec) }
        return [.text("return", "true")]
    }
}
