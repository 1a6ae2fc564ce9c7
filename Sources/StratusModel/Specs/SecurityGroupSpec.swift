/// Firewall rules applied to the instances that name the group.
public struct SecurityGroupSpec: SpecBody {
    public static let kind = Kind.securityGroup

    public var description: String?
    public var ingress: [IngressRule]?

    /// AWS's default quota of inbound rules per security group.
    public static let maximumRules = 60

    public init(description: String? = nil, ingress: [IngressRule]? = nil) {
        self.description = description
        self.ingress = ingress
    }

    public mutating func applyDefaults() {
        if description == nil { description = "" }
        if ingress == nil { ingress = [] }
        for index in ingress!.indices where ingress![index].cidr == nil && ingress![index].sourceGroup == nil {
            ingress![index].cidr = "0.0.0.0/0"
        }
    }

    /// AWS's bound on GroupDescription.
    public static let maximumDescription = 255

    public func validate(_ validator: inout Validator) {
        if let description {
            if description.count > Self.maximumDescription {
                validator.fail([.key("description")], "at most \(Self.maximumDescription) characters, got \(description.count)")
            } else if description.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                validator.fail([.key("description")], "control characters are not allowed")
            }
        }
        if let count = ingress?.count, count > Self.maximumRules {
            validator.fail([.key("ingress")], "a security group holds at most \(Self.maximumRules) rules, got \(count)", hint: "merge rules (port ranges, wider CIDRs) or use another group", code: "RulesPerSecurityGroupLimitExceeded")
        }
        for (index, rule) in (ingress ?? []).enumerated() {
            let at: [PathElement] = [.key("ingress"), .index(index)]
            switch rule.protocol {
            case .tcp, .udp:
                if rule.fromPort == nil { validator.fail(at + [.key("fromPort")], "required for protocol \(rule.protocol.rawValue)") }
                if rule.toPort == nil { validator.fail(at + [.key("toPort")], "required for protocol \(rule.protocol.rawValue)") }
                validator.range(rule.fromPort, 0...65535, at: at + [.key("fromPort")])
                validator.range(rule.toPort, 0...65535, at: at + [.key("toPort")])
                if let from = rule.fromPort, let to = rule.toPort, from > to {
                    validator.fail(at + [.key("toPort")], "must not be below fromPort (\(from)), got \(to)")
                }
            case .icmp:
                validator.range(rule.fromPort, -1...255, at: at + [.key("fromPort")], unit: " (ICMP type, -1 for all)")
                validator.range(rule.toPort, -1...255, at: at + [.key("toPort")], unit: " (ICMP code, -1 for all)")
            case .all:
                if rule.fromPort != nil || rule.toPort != nil {
                    validator.fail(at + [.key("fromPort")], "ports do not apply to protocol all; remove fromPort and toPort")
                }
            }
            if rule.cidr != nil && rule.sourceGroup != nil {
                validator.fail(at + [.key("sourceGroup")], "give either cidr or sourceGroup, not both")
            }
            validator.cidr(rule.cidr, at: at + [.key("cidr")])
            validator.name(rule.sourceGroup, at: at + [.key("sourceGroup")])
        }
    }

    public func references(project: String?) -> [Reference] {
        (ingress ?? []).enumerated().compactMap { index, rule in
            rule.sourceGroup.map {
                Reference(kind: .securityGroup, project: project, name: $0, path: [.key("ingress"), .index(index), .key("sourceGroup")])
            }
        }
    }
}

/// One allowed inbound flow.
public struct IngressRule: Codable, Sendable, Equatable {
    public var `protocol`: IPProtocol
    public var fromPort: Int?
    public var toPort: Int?
    /// Source addresses; `0.0.0.0/0` when neither this nor `sourceGroup` is given.
    public var cidr: String?
    /// Instances of this security group (same project) as the source.
    public var sourceGroup: String?

    public init(protocol: IPProtocol, fromPort: Int? = nil, toPort: Int? = nil, cidr: String? = nil, sourceGroup: String? = nil) {
        self.protocol = `protocol`
        self.fromPort = fromPort
        self.toPort = toPort
        self.cidr = cidr
        self.sourceGroup = sourceGroup
    }
}

/// IP protocols a rule can match.
public enum IPProtocol: String, ManifestEnum, AnyManifestEnum {
    case tcp
    case udp
    case icmp
    case all
}
