/// The kinds of resource Stratus manages, one per thing a user owns.
public enum Kind: String, CaseIterable, Sendable, Codable, Hashable, Comparable {
    case user = "User"
    case project = "Project"
    case keyPair = "KeyPair"
    case network = "Network"
    case securityGroup = "SecurityGroup"
    case address = "Address"
    case image = "Image"
    case instanceType = "InstanceType"
    case instance = "Instance"
    case volume = "Volume"
    case snapshot = "Snapshot"
    case node = "Node"
    case gitSync = "GitSync"

    /// Whether resources of this kind live inside a project or in the whole cluster.
    public var scope: Scope {
        switch self {
        case .user, .project, .instanceType, .node, .gitSync: .cluster
        default: .project
        }
    }

    /// The prefix of the EC2-style id (`i-0123abcd`) the kind is given, if EC2 knows it by id.
    public var idPrefix: String? {
        switch self {
        case .instance: "i"
        case .volume: "vol"
        case .snapshot: "snap"
        case .image: "ami"
        case .securityGroup: "sg"
        case .address: "eipalloc"
        default: nil
        }
    }

    /// Lower-case plural, as `stratus get` prints and accepts it.
    public var plural: String {
        switch self {
        case .address: "addresses"
        default: rawValue.lowercased() + "s"
        }
    }

    /// Every spelling the command line accepts for this kind.
    public var aliases: [String] {
        let base = [rawValue.lowercased(), plural]
        switch self {
        case .instance: return base + ["inst"]
        case .volume: return base + ["vol"]
        case .snapshot: return base + ["snap"]
        case .image: return base + ["img", "ami"]
        case .network: return base + ["net"]
        case .securityGroup: return base + ["sg", "security-group", "security-groups"]
        case .address: return base + ["addr", "eip"]
        case .keyPair: return base + ["key", "keys", "key-pair", "key-pairs"]
        case .instanceType: return base + ["type", "types", "flavor", "flavors", "instance-type", "instance-types"]
        case .gitSync: return base + ["git-sync", "git-syncs", "gitsync", "gitsyncs"]
        case .node, .project, .user: return base
        }
    }

    /// Order in which kinds are applied and listed: what others refer to comes first.
    public var order: Int { Kind.allCases.firstIndex(of: self)! }

    public static func < (lhs: Kind, rhs: Kind) -> Bool { lhs.order < rhs.order }

    /// Finds a kind by its manifest name or any command-line alias, ignoring case.
    public static func named(_ text: String) -> Kind? {
        let lowered = text.lowercased()
        return allCases.first { $0.rawValue.lowercased() == lowered || $0.aliases.contains(lowered) }
    }

    /// Where a kind's resources live.
    public enum Scope: String, Sendable {
        case cluster
        case project
    }
}
