import Crypto
import Foundation
import StratusModel

/// Where Stratus keeps identities in a directory, and what each entry holds (docs/LDAP.md).
///
/// ```
/// ou=Users,BASE                      organizationalUnit
///   uid=alice,ou=Users,BASE          inetOrgPerson + stratusUser + stratusManaged
///     cn=acme.deploy,uid=alice,…     stratusKeyPair + stratusManaged
/// ou=Groups,BASE                     organizationalUnit
///   cn=cloudadmin,ou=Groups,BASE     groupOfNames (global role)
///   cn=acme,ou=Groups,BASE           groupOfNames: members, owner = manager
///     cn=sysadmin,cn=acme,ou=Groups  groupOfNames (project role)
/// ```
public struct DirectoryLayout: Sendable {
    public let base: String

    public init(base: String) { self.base = base }

    public var usersDN: String { "ou=Users,\(base)" }
    public var groupsDN: String { "ou=Groups,\(base)" }

    public func userDN(_ user: String) -> String { "uid=\(Self.escape(user)),\(usersDN)" }
    public func projectDN(_ project: String) -> String { "cn=\(Self.escape(project)),\(groupsDN)" }
    public func globalRoleDN(_ role: GlobalRole) -> String { "cn=\(role.rawValue),\(groupsDN)" }
    public func projectRoleDN(_ role: ProjectRole, project: String) -> String { "cn=\(role.rawValue),\(projectDN(project))" }
    public func keyPairDN(owner: String, project: String, name: String) -> String { "cn=\(Self.escape("\(project).\(name)")),\(userDN(owner))" }

    /// The two organizational units everything else lives under.
    public var organizationalUnits: [DirectoryEntry] {
        [
            DirectoryEntry(dn: usersDN, attributes: ["objectClass": ["organizationalUnit"], "ou": ["Users"]]),
            DirectoryEntry(dn: groupsDN, attributes: ["objectClass": ["organizationalUnit"], "ou": ["Groups"]]),
        ]
    }

    /// The attributes the reconciler owns on each kind of entry; others (a password set by hand) are left alone.
    public static let userAttributes = ["uid", "cn", "sn", "mail", "displayname", "stratusaccesskey", "stratusdisabled"]
    public static let projectAttributes = ["cn", "owner", "description"]
    public static let keyPairAttributes = ["cn", "stratuspublickey", "stratuskeyfingerprint", "stratusproject", "stratuskeyname"]

    /// The object classes each kind of entry must have (extra ones added by hand stay).
    public static let userClasses = ["inetOrgPerson", "stratusUser", "stratusManaged"]
    public static let groupClasses = ["groupOfNames", "stratusManaged"]
    public static let keyPairClasses = ["stratusKeyPair", "stratusManaged"]

    /// A user's entry.
    public func userEntry(_ name: String, _ spec: UserSpec, accessKey: String?) -> DirectoryEntry {
        let fullName = spec.fullName.flatMap { $0.isEmpty ? nil : $0 } ?? name
        var attributes: [String: [String]] = [
            "objectClass": Self.userClasses,
            "uid": [name],
            "cn": [fullName],
            "sn": [fullName.split(separator: " ").last.map(String.init) ?? name],
            "displayName": [fullName],
            "stratusDisabled": [spec.disabled == true ? "TRUE" : "FALSE"],
        ]
        if let email = spec.email, !email.isEmpty { attributes["mail"] = [email] }
        if let accessKey { attributes["stratusAccessKey"] = [accessKey] }
        return DirectoryEntry(dn: userDN(name), attributes: attributes)
    }

    /// A project's group; the manager is its owner and always a member.
    public func projectEntry(_ name: String, _ spec: ProjectSpec) -> DirectoryEntry {
        var attributes: [String: [String]] = [
            "objectClass": Self.groupClasses,
            "cn": [name],
            "owner": [userDN(spec.manager)],
            "member": [userDN(spec.manager)],
        ]
        if let description = spec.description, !description.isEmpty { attributes["description"] = [description] }
        return DirectoryEntry(dn: projectDN(name), attributes: attributes)
    }

    /// A role group (global or per project) with its members.
    public func roleEntry(dn: String, members: [String]) -> DirectoryEntry {
        let cn = String(dn.prefix(while: { $0 != "," }).dropFirst(3))
        return DirectoryEntry(dn: dn, attributes: ["objectClass": Self.groupClasses, "cn": [cn], "member": members])
    }

    /// A key pair's entry under its owner.
    public func keyPairEntry(owner: String, project: String, name: String, publicKey: String) -> DirectoryEntry {
        DirectoryEntry(dn: keyPairDN(owner: owner, project: project, name: name), attributes: [
            "objectClass": Self.keyPairClasses,
            "cn": ["\(project).\(name)"],
            "stratusPublicKey": [publicKey],
            "stratusKeyFingerprint": [Self.fingerprint(publicKey)],
            "stratusProject": [project],
            "stratusKeyName": [name],
        ])
    }

    /// The groups a user belongs to: global roles, each project (as member or manager) and each project role.
    public func groups(of user: String, _ spec: UserSpec, managerOf projects: [String]) -> Set<String> {
        var groups = Set((spec.roles ?? []).map(globalRoleDN))
        for membership in spec.projects ?? [] {
            groups.insert(projectDN(membership.project))
            for role in membership.roles ?? [] { groups.insert(projectRoleDN(role, project: membership.project)) }
        }
        for project in projects {
            groups.insert(projectDN(project))
            groups.insert(projectRoleDN(.projectmanager, project: project))
        }
        return groups
    }

    /// `SHA256:…` as `ssh-keygen -l` prints it, or "" when the key data is not base64.
    public static func fingerprint(_ publicKey: String) -> String {
        let fields = publicKey.split(whereSeparator: \.isWhitespace)
        guard fields.count >= 2, let data = Data(base64Encoded: String(fields[1])) else { return "" }
        var text = Data(SHA256.hash(data: data)).base64EncodedString()
        while text.hasSuffix("=") { text.removeLast() }
        return "SHA256:" + text
    }

    /// Escapes a value for use in a DN (RFC 4514).
    /// What a changed entry's DN belongs to, for following the directory's changes.
    public enum Owner: Equatable, Sendable {
        /// The base or an OU: anything may have changed.
        case everything
        case user(String)
        case project(String)
        case keyPair(project: String, name: String)
        /// A global role's group: every user may be a member.
        case globalRole
    }

    /// The resource a DN under this layout belongs to; nil outside it.
    public func owner(of dn: String) -> Owner? {
        let normalized = Self.normalize(dn)
        let users = Self.normalize(usersDN)
        let groups = Self.normalize(groupsDN)
        if [Self.normalize(base), users, groups].contains(normalized) { return .everything }
        func values(under suffix: String) -> [String]? {
            guard normalized.hasSuffix("," + suffix) else { return nil }
            return Self.rdnValues(String(normalized.dropLast(suffix.count + 1)))
        }
        if let rdns = values(under: users) {
            switch rdns.count {
            case 1: return .user(rdns[0])
            case 2:
                guard let dot = rdns[0].firstIndex(of: ".") else { return .user(rdns[1]) }
                return .keyPair(project: String(rdns[0][..<dot]), name: String(rdns[0][rdns[0].index(after: dot)...]))
            default: return nil
            }
        }
        if let rdns = values(under: groups) {
            switch rdns.count {
            case 1: return GlobalRole(rawValue: rdns[0]) != nil ? .globalRole : .project(rdns[0])
            case 2: return .project(rdns[1])
            default: return nil
            }
        }
        return nil
    }

    /// The values of a DN's RDNs, left to right, unescaped (`uid=alice,cn=x` → [alice, x]).
    static func rdnValues(_ dn: String) -> [String] {
        var values: [String] = []
        var current = ""
        var escaped = false
        for character in dn {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "," {
                values.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        values.append(current)
        return values.map { rdn in rdn.split(separator: "=", maxSplits: 1).last.map { String($0).trimmingCharacters(in: .whitespaces).lowercased() } ?? "" }
    }

    public static func escape(_ value: String) -> String {
        var out = ""
        for (index, character) in value.enumerated() {
            if ",+\"\\<>;=".contains(character) || (index == 0 && (character == "#" || character == " ")) || (index == value.count - 1 && character == " ") {
                out.append("\\")
            }
            out.append(character)
        }
        return out
    }

    /// A DN in the form entries are compared by (lowercase, no spaces after commas).
    public static func normalize(_ dn: String) -> String {
        dn.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.joined(separator: ",")
    }

    /// The changes that bring `actual` to `desired` for the `owned` attributes, adding missing object classes.
    public static func changes(from actual: DirectoryEntry, to desired: DirectoryEntry, owned: [String]) -> [DirectoryChange] {
        var changes: [DirectoryChange] = []
        let missingClasses = desired["objectclass"].filter { wanted in !actual["objectclass"].contains { $0.lowercased() == wanted.lowercased() } }
        if !missingClasses.isEmpty { changes.append(.add("objectClass", missingClasses)) }
        for name in owned {
            let want = desired[name]
            let have = actual[name]
            if name == "member" || name == "owner" {
                if Set(want.map(normalize)) == Set(have.map(normalize)) { continue }
            } else if want == have {
                continue
            }
            if want.isEmpty {
                changes.append(.delete(name))
            } else {
                changes.append(.replace(name, want))
            }
        }
        return changes
    }
}
