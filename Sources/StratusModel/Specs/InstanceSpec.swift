/// A virtual machine: a libvirt domain on some node.
public struct InstanceSpec: SpecBody {
    public static let kind = Kind.instance

    /// An image of the same project, or `project/name` of a public image.
    public var image: String
    public var instanceType: String
    public var keyName: String?
    public var securityGroups: [String]?
    /// Data handed to the guest through the metadata service (`/latest/user-data`).
    public var userData: String?
    public var powerState: PowerState?
    /// A zone to place the instance in; any zone when absent.
    public var availabilityZone: String?
    /// A network of the project; the project's only network when absent.
    public var network: String?
    /// What happens when the instance's node is lost: it waits for the node (`stay`, the
    /// default), or starts again on another node (`reschedule`, from its image: what was on its
    /// disk stays on the lost node, which removes its copy when it comes back).
    public var restartPolicy: RestartPolicy?

    public init(
        image: String,
        instanceType: String,
        keyName: String? = nil,
        securityGroups: [String]? = nil,
        userData: String? = nil,
        powerState: PowerState? = nil,
        availabilityZone: String? = nil,
        network: String? = nil,
        restartPolicy: RestartPolicy? = nil
    ) {
        self.image = image
        self.instanceType = instanceType
        self.keyName = keyName
        self.securityGroups = securityGroups
        self.userData = userData
        self.powerState = powerState
        self.availabilityZone = availabilityZone
        self.network = network
        self.restartPolicy = restartPolicy
    }

    public mutating func applyDefaults() {
        if securityGroups == nil { securityGroups = [] }
        if powerState == nil { powerState = .running }
    }

    public func validate(_ validator: inout Validator) {
        let parts = image.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count > 2 {
            validator.fail([.key("image")], "expected an image name or project/name, got \"\(image)\"")
        } else {
            for part in parts { validator.name(String(part), at: [.key("image")]) }
        }
        validator.name(instanceType, at: [.key("instanceType")], dotted: true)
        validator.name(keyName, at: [.key("keyName")])
        validator.name(network, at: [.key("network")])
        validator.name(availabilityZone, at: [.key("availabilityZone")])
        var seen = Set<String>()
        for (index, group) in (securityGroups ?? []).enumerated() {
            validator.name(group, at: [.key("securityGroups"), .index(index)])
            if !seen.insert(group).inserted {
                validator.fail([.key("securityGroups"), .index(index)], "security group \"\(group)\" is listed twice")
            }
        }
        if let userData, userData.utf8.count > 16384 {
            validator.fail([.key("userData")], "must be at most 16384 bytes (EC2's limit), got \(userData.utf8.count)")
        }
    }

    public func references(project: String?) -> [Reference] {
        var references: [Reference] = []
        let parts = image.split(separator: "/")
        if parts.count == 2 {
            references.append(Reference(kind: .image, project: String(parts[0]), name: String(parts[1]), path: [.key("image")], allowsPublicImage: true))
        } else {
            references.append(Reference(kind: .image, project: project, name: image, path: [.key("image")]))
        }
        references.append(Reference(kind: .instanceType, project: nil, name: instanceType, path: [.key("instanceType")]))
        if let keyName { references.append(Reference(kind: .keyPair, project: project, name: keyName, path: [.key("keyName")])) }
        for (index, group) in (securityGroups ?? []).enumerated() {
            references.append(Reference(kind: .securityGroup, project: project, name: group, path: [.key("securityGroups"), .index(index)]))
        }
        if let network { references.append(Reference(kind: .network, project: project, name: network, path: [.key("network")])) }
        return references
    }
}

/// Whether an instance should be running.
public enum PowerState: String, ManifestEnum, AnyManifestEnum {
    case running
    case stopped
}

/// What an instance does when its node is lost.
public enum RestartPolicy: String, ManifestEnum, AnyManifestEnum {
    /// Waits for its node (`Ready=False, NodeLost`).
    case stay
    /// Starts again on another node that fits.
    case reschedule
}
