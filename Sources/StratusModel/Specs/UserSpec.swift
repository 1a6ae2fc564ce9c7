/// A person (or robot) with access keys and roles: an LDAP `uid=…,ou=Users` entry.
public struct UserSpec: SpecBody {
    public static let kind = Kind.user

    public var fullName: String?
    public var email: String?
    /// Global roles.
    public var roles: [GlobalRole]?
    /// Project memberships with per-project roles.
    public var projects: [ProjectMembership]?
    public var disabled: Bool?

    public init(
        fullName: String? = nil,
        email: String? = nil,
        roles: [GlobalRole]? = nil,
        projects: [ProjectMembership]? = nil,
        disabled: Bool? = nil
    ) {
        self.fullName = fullName
        self.email = email
        self.roles = roles
        self.projects = projects
        self.disabled = disabled
    }

    public mutating func applyDefaults() {
        if roles == nil { roles = [] }
        if projects == nil { projects = [] }
        for index in projects!.indices where projects![index].roles == nil { projects![index].roles = [] }
        if disabled == nil { disabled = false }
    }

    public func validate(_ validator: inout Validator) {
        if let email, !email.contains("@") || email.hasPrefix("@") || email.hasSuffix("@") {
            validator.fail([.key("email")], "expected an e-mail address like alice@example.org, got \"\(email)\"")
        }
        var seen = Set<String>()
        for (index, membership) in (projects ?? []).enumerated() {
            validator.name(membership.project, at: [.key("projects"), .index(index), .key("project")])
            if !seen.insert(membership.project).inserted {
                validator.fail([.key("projects"), .index(index), .key("project")], "project \"\(membership.project)\" is listed twice")
            }
        }
    }

    public func references(project: String?) -> [Reference] {
        (projects ?? []).enumerated().map { index, membership in
            Reference(kind: .project, project: nil, name: membership.project, path: [.key("projects"), .index(index), .key("project")])
        }
    }
}

/// Roles that apply across the cloud.
public enum GlobalRole: String, ManifestEnum, AnyManifestEnum {
    case cloudadmin
    case itsec
}

/// Roles inside one project.
public enum ProjectRole: String, ManifestEnum, AnyManifestEnum {
    case projectmanager
    case sysadmin
    case netadmin
    case developer
}

/// Membership of a user in a project.
public struct ProjectMembership: Codable, Sendable, Equatable {
    public var project: String
    public var roles: [ProjectRole]?

    public init(project: String, roles: [ProjectRole]? = nil) {
        self.project = project
        self.roles = roles
    }
}
