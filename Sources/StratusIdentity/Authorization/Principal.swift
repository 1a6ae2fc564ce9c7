import StratusModel

/// Who a signed request acts as: a user, their roles, and the project their key is bound to.
public struct Principal: Sendable, Equatable {
    public let user: String
    public let accessKey: String
    public let globalRoles: Set<GlobalRole>
    /// Project → roles in it; a key is in the map as soon as the user is a member (possibly with no roles).
    public let memberships: [String: Set<ProjectRole>]
    /// The project a project-bound key (or the user's first membership) acts in, for APIs without a project parameter (EC2).
    public let defaultProject: String?

    public init(user: String, accessKey: String, globalRoles: Set<GlobalRole>, memberships: [String: Set<ProjectRole>], defaultProject: String?) {
        self.user = user
        self.accessKey = accessKey
        self.globalRoles = globalRoles
        self.memberships = memberships
        self.defaultProject = defaultProject
    }

    /// Builds the principal of `user` from their spec and the projects they manage.
    public init(user: String, accessKey: String, spec: UserSpec, managerOf: [String], boundProject: String?) {
        var memberships: [String: Set<ProjectRole>] = [:]
        for membership in spec.projects ?? [] { memberships[membership.project, default: []].formUnion(membership.roles ?? []) }
        for project in managerOf { memberships[project, default: []].insert(.projectmanager) }
        self.init(
            user: user, accessKey: accessKey, globalRoles: Set(spec.roles ?? []), memberships: memberships,
            defaultProject: boundProject ?? spec.projects?.first?.project ?? managerOf.sorted().first
        )
    }

    /// The built-in administrator (`stratus credentials admin`).
    public static func root(accessKey: String) -> Principal {
        Principal(user: "admin", accessKey: accessKey, globalRoles: [.cloudadmin], memberships: [:], defaultProject: nil)
    }

    public var isCloudAdmin: Bool { globalRoles.contains(.cloudadmin) }

    /// Whether the principal may see everything in every project (cloudadmin, itsec).
    public var canReadEveryProject: Bool { isCloudAdmin || globalRoles.contains(.itsec) }

    /// Whether the principal may see everything in `project`.
    public func canRead(project: String) -> Bool {
        canReadEveryProject || memberships[project] != nil
    }

    /// Whether the principal may create, change or delete a resource of `kind` in `project` ("" for cluster-scoped kinds).
    public func canWrite(_ kind: Kind, project: String) -> Bool {
        if isCloudAdmin { return true }
        guard kind.scope == .project, let roles = memberships[project] else { return false }
        if globalRoles.contains(.itsec), kind == .securityGroup { return true }
        return !roles.isDisjoint(with: Self.writers(of: kind))
    }

    /// The roles that may change each project-scoped kind (the seed's: sysadmins run machines, netadmins own the network).
    public static func writers(of kind: Kind) -> Set<ProjectRole> {
        switch kind {
        case .instance, .volume, .snapshot, .image: [.projectmanager, .sysadmin]
        case .address, .securityGroup, .network: [.projectmanager, .netadmin]
        case .keyPair: [.projectmanager, .sysadmin, .netadmin, .developer]
        default: [.projectmanager]
        }
    }

    /// Whether the principal may create, replace or delete a key pair of `project` owned by `owner`
    /// (nil: the project's manager). A key pair belongs to its user: instances launched with it
    /// trust it, so only its owner, the project's manager or a cloudadmin may change it.
    public func canManageKeyPair(owner: String?, project: String) -> Bool {
        isCloudAdmin || memberships[project]?.contains(.projectmanager) == true || (owner != nil && owner == user)
    }

    /// Why a key-pair change is refused.
    public func keyPairDenial(owner: String?, project: String, name: String) -> String {
        guard let owner else {
            return "user \(user) may not set key pair \(name) of project \(project) without an owner (it would be the project manager's): set spec.user: \(user)"
        }
        return "key pair \(name) of project \(project) belongs to \(owner); only \(owner), the project's manager or a cloudadmin may replace or delete it"
    }

    /// Why a write is refused, in words that say what would allow it.
    public func denial(_ kind: Kind, project: String) -> String {
        if kind.scope != .project { return "user \(user) may not change \(kind.rawValue) resources: that needs the cloudadmin role" }
        guard memberships[project] != nil else { return "user \(user) is not a member of project \(project)" }
        let roles = Self.writers(of: kind).map(\.rawValue).sorted().joined(separator: " or ")
        return "user \(user) may not change \(kind.rawValue) resources in project \(project): that needs the \(roles) role"
    }
}
