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
    /// The access key id to use (16–128 of A–Z and 0–9); generated (`AKIA…`) when absent. Its secret is always generated.
    public var accessKey: String?

    public init(
        fullName: String? = nil,
        email: String? = nil,
        roles: [GlobalRole]? = nil,
        projects: [ProjectMembership]? = nil,
        disabled: Bool? = nil,
        accessKey: String? = nil
    ) {
        self.fullName = fullName
        self.email = email
        self.roles = roles
        self.projects = projects
        self.disabled = disabled
        self.accessKey = accessKey
    }

    /// Checks an access key id: 16–128 characters of A–Z and 0–9, as AWS issues them.
    public static func accessKeyProblem(_ key: String) -> String? {
        let valid = (16...128).contains(key.count) && key.utf8.allSatisfy { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
        return valid ? nil : "expected 16 to 128 characters of A-Z and 0-9 (like AKIAIOSFODNN7EXAMPLE), got \"\(key)\""
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
        if let accessKey, let problem = Self.accessKeyProblem(accessKey) { validator.fail([.key("accessKey")], problem) }
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
