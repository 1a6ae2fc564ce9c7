import Foundation
import Logging
import StratusIdentity
import Synchronization
import StratusModel
import StratusStore

/// Converges users, projects and key pairs: their credentials in the store and, when a directory
/// is configured, their LDAP entries and group memberships (docs/LDAP.md).
///
/// Only the attributes Stratus owns are written; a password or phone number set by hand stays.
/// Entries Stratus created carry the `stratusManaged` class, so the sweep can remove the ones no
/// resource wants and leave the rest alone (they are reported as drift instead).
///
/// A user's reconcile writes their entry and global role groups; a project's reconcile writes
/// its group and role groups with their whole member lists, one modify per group. A user whose
/// memberships changed queues the projects concerned. (Adding members one by one from each
/// user rewrites a 10,000-member group 30,000 times: quadratic.)
public struct IdentityReconciler: Reconciler {
    public let name = "identity"
    public let kinds: Set<Kind> = [.user, .project, .keyPair]
    public var concurrency: Int { 8 }

    let store: Store
    let directory: (any Directory)?
    let layout: DirectoryLayout
    let logger: Logger
    /// The controller's enqueue function, handed over in `watch`.
    private let enqueue = EnqueueBox()

    final class EnqueueBox: Sendable {
        let function = Mutex<(@Sendable (ResourceKey) async -> Void)?>(nil)
    }

    public init(store: Store, directory: (any Directory)?, base: String = "", logger: Logger = Logger(label: "stratus.identity")) {
        self.store = store
        self.directory = directory
        self.layout = DirectoryLayout(base: base)
        self.logger = logger
    }

    public func reconcile(_ resource: StoredResource) async -> ReconcileResult {
        do {
            let message: String
            switch resource.resource.spec {
            case .user(let spec):
                let credential = try store.credential(user: resource.key.name)
                message = try await converge(user: resource.key.name, spec, accessKey: credential.accessKey)
            case .project(let spec):
                message = try await converge(project: resource.key.name, spec)
            case .keyPair(let spec):
                guard let publicKey = spec.publicKey else {
                    return .failed(reason: .publicKeyRequired, message: "spec.publicKey is required: paste an OpenSSH public key line (ssh-keygen -y -f KEY)", retryable: false)
                }
                message = try await converge(keyPair: resource.key, spec, publicKey: publicKey)
            default:
                return .failed(reason: .wrongKind, message: "the identity reconciler does not handle \(resource.key.kind.rawValue)", retryable: false)
            }
            var status = resource.resource.status ?? ResourceStatus()
            status.phase = "Ready"
            status.setCondition(Condition(type: .ready, status: .true, reason: directory == nil ? .inStore : .inDirectory, message: message, lastTransitionTime: Timestamp.string(Date())))
            return .done(status)
        } catch let error as DirectoryError where error.isUnavailable {
            return .failed(reason: .directoryUnavailable, message: "\(error.message); retrying", retryable: true)
        } catch let error as IdentityError {
            return .failed(reason: error.reason, message: error.message, retryable: error.retryable)
        } catch {
            return .failed(reason: .directoryError, message: "\(error)", retryable: true)
        }
    }

    public func finalize(_ resource: StoredResource) async -> ReconcileResult {
        do {
            switch resource.key.kind {
            case .user:
                if let directory {
                    let dn = layout.userDN(resource.key.name)
                    for group in try await groups(containing: dn) { try await removeMember(dn, from: group) }
                    try await deleteSubtree(dn, directory)
                }
                try store.deleteCredentials(user: resource.key.name)
            case .project:
                if let directory { try await deleteSubtree(layout.projectDN(resource.key.name), directory) }
            case .keyPair:
                if let directory, let project = resource.key.project.nilIfEmpty {
                    for entry in try await keyPairEntries(project: project, name: resource.key.name) { try await ignoringMissing { try await directory.delete(entry.dn) } }
                }
            default:
                break
            }
            return .done(ResourceStatus())
        } catch let error as DirectoryError where error.isUnavailable {
            return .failed(reason: .directoryUnavailable, message: "\(error.message); retrying", retryable: true)
        } catch {
            return .failed(reason: .directoryError, message: "\(error)", retryable: true)
        }
    }

    public func watch(_ enqueue: @escaping @Sendable (ResourceKey) async -> Void) async {
        self.enqueue.function.withLock { $0 = enqueue }
        // Changes made to the directory by hand arrive within milliseconds where the server
        // offers content synchronization (slapd's syncprov); else the resync finds them.
        guard let directory, !layout.base.isEmpty else { return }
        let (changes, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(10_000))
        await withDiscardingTaskGroup { group in
            group.addTask {
                if await directory.follow(base: self.layout.base, { continuation.yield($0) }) {
                    self.logger.debug("followed the directory's changes until shutdown")
                }
                continuation.finish()
            }
            group.addTask {
                for await dn in changes {
                    for key in self.owners(ofChanged: dn) { await enqueue(key) }
                }
            }
        }
    }

    /// The resources to reconcile when the entry `dn` changed.
    func owners(ofChanged dn: String) -> [ResourceKey] {
        switch layout.owner(of: dn) {
        case nil: return []
        case .user(let name): return [ResourceKey(kind: .user, project: nil, name: name)]
        case .project(let name): return [ResourceKey(kind: .project, project: nil, name: name)]
        case .keyPair(let project, let name): return [ResourceKey(kind: .keyPair, project: project, name: name)]
        case .everything, .globalRole:
            let all = (try? store.list().filter { kinds.contains($0.key.kind) && !$0.isTerminating }) ?? []
            return all.filter { layout.owner(of: dn) == .everything || $0.key.kind == .user }.map(\.key)
        }
    }

    /// Removes managed entries that no resource describes (children first).
    public func sweep(_ wanted: [StoredResource]) async -> [String] {
        guard let directory else { return [] }
        do {
            let described = try describedDNs(wanted)
            var managed = try await directory.search(base: layout.usersDN, scope: .subtree, filter: "(objectClass=stratusManaged)", attributes: ["1.1"])
            managed += try await directory.search(base: layout.groupsDN, scope: .subtree, filter: "(objectClass=stratusManaged)", attributes: ["1.1"])
            var removed: [String] = []
            for entry in managed.sorted(by: { $0.dn.split(separator: ",").count > $1.dn.split(separator: ",").count })
            where !described.contains(DirectoryLayout.normalize(entry.dn)) {
                try await ignoringMissing { try await directory.delete(entry.dn) }
                removed.append(entry.dn)
            }
            return removed
        } catch {
            logger.warning("directory sweep failed", metadata: ["stratus.error": "\(error)"])
            return []
        }
    }

    // MARK: - Users

    private func converge(user name: String, _ spec: UserSpec, accessKey: String) async throws -> String {
        guard let directory else { return "access key \(accessKey) (identities in the store; no directory configured)" }
        try await ensureOrganizationalUnits(directory)
        let desired = layout.userEntry(name, spec, accessKey: accessKey)
        try await put(desired, owned: DirectoryLayout.userAttributes, directory)
        let wantedGroups = Set(layout.groups(of: name, spec, managerOf: try managedProjects(of: name)).map(DirectoryLayout.normalize))
        let current = try await groups(containing: desired.dn)
        let currentSet = Set(current.map(DirectoryLayout.normalize))
        let globalRoles = Set(GlobalRole.allCases.map { DirectoryLayout.normalize(layout.globalRoleDN($0)) })
        for group in wantedGroups.intersection(globalRoles).subtracting(currentSet).sorted() {
            try await addMember(desired.dn, to: group, directory)
        }
        for group in current where globalRoles.contains(DirectoryLayout.normalize(group)) && !wantedGroups.contains(DirectoryLayout.normalize(group)) {
            try await removeMember(desired.dn, from: group)
        }
        // Project groups are written by their Project's reconcile; queue those this user's membership changes.
        let projectsDN = "," + DirectoryLayout.normalize(layout.groupsDN)
        var projects = Set<String>()
        for group in wantedGroups.symmetricDifference(currentSet) where !globalRoles.contains(group) && group.hasSuffix(projectsDN) {
            if let project = group.dropLast(projectsDN.count).split(separator: ",").last.map({ String($0.dropFirst(3)) }) { projects.insert(project) }
        }
        if !projects.isEmpty, let enqueue = enqueue.function.withLock({ $0 }) {
            for project in projects.sorted() { await enqueue(ResourceKey(kind: .project, project: nil, name: project)) }
        }
        return "\(desired.dn), \(wantedGroups.count) groups"
    }

    /// The projects `user` manages.
    private func managedProjects(of user: String) throws -> [String] {
        try store.list(kind: .project).compactMap { resource in
            if case .project(let spec) = resource.resource.spec, spec.manager == user, !resource.isTerminating { return resource.key.name }
            return nil
        }
    }

    /// The groups under ou=Groups that list `dn` as a member.
    private func groups(containing dn: String) async throws -> [String] {
        guard let directory else { return [] }
        return try await directory.search(base: layout.groupsDN, scope: .subtree, filter: "(member=\(Self.filterEscape(dn)))", attributes: ["1.1"]).map(\.dn)
    }

    private func addMember(_ member: String, to group: String, _ directory: any Directory) async throws {
        do {
            try await directory.modify(group, [.add("member", [member])])
        } catch let error as DirectoryError where error.isValueExists {
            return
        } catch let error as DirectoryError where error.isNoSuchObject {
            guard isRoleGroup(group) else {
                throw IdentityError(reason: .projectNotInDirectory, message: "\(group) is not in the directory yet; waiting for its Project", retryable: true)
            }
            do {
                try await directory.add(layout.roleEntry(dn: group, members: [member]))
            } catch let error as DirectoryError where error.isAlreadyExists {
                try await addMember(member, to: group, directory)
            } catch let error as DirectoryError where error.isNoSuchObject {
                throw IdentityError(reason: .projectNotInDirectory, message: "the project group above \(group) is not in the directory yet; waiting for its Project", retryable: true)
            }
        }
    }

    private func removeMember(_ member: String, from group: String) async throws {
        guard let directory else { return }
        do {
            try await directory.modify(group, [.deleteValues("member", [member])])
        } catch let error as DirectoryError where error.isNoSuchAttribute || error.isNoSuchObject {
            return
        } catch let error as DirectoryError where error.isObjectClassViolation {
            // The last member of a role group: the group goes (groupOfNames needs a member).
            if isRoleGroup(group) { try await ignoringMissing { try await directory.delete(group) } }
        }
    }

    /// Global role groups and project role groups, as opposed to a project's own group.
    private func isRoleGroup(_ dn: String) -> Bool {
        let first = dn.prefix(while: { $0 != "," }).dropFirst(3).lowercased()
        let isRole = GlobalRole(rawValue: first) != nil || ProjectRole(rawValue: first) != nil
        let depth = dn.split(separator: ",").count - layout.groupsDN.split(separator: ",").count
        return isRole && (depth == 1 && GlobalRole(rawValue: first) != nil || depth == 2)
    }

    // MARK: - Projects

    private func converge(project name: String, _ spec: ProjectSpec) async throws -> String {
        guard let directory else { return "project \(name) (identities in the store; no directory configured)" }
        try await ensureOrganizationalUnits(directory)
        // Who belongs where, from the store: members (and the manager) and each role's holders.
        var members = Set([layout.userDN(spec.manager)])
        var roles: [ProjectRole: Set<String>] = [.projectmanager: [layout.userDN(spec.manager)]]
        for (user, roleNames) in try store.projectMembers(name) {
            members.insert(layout.userDN(user))
            for role in roleNames.compactMap(ProjectRole.init(rawValue:)) { roles[role, default: []].insert(layout.userDN(user)) }
        }
        var desired = layout.projectEntry(name, spec)
        desired.attributes["member"] = members.sorted()
        let existing = try await directory.search(base: desired.dn, scope: .subtree, filter: "(objectClass=*)", attributes: nil)
        let byDN = Dictionary(existing.map { (DirectoryLayout.normalize($0.dn), $0) }, uniquingKeysWith: { first, _ in first })
        try await putGroup(desired, existing: byDN[DirectoryLayout.normalize(desired.dn)], owned: DirectoryLayout.projectAttributes, directory)
        for role in ProjectRole.allCases {
            let dn = layout.projectRoleDN(role, project: name)
            let holders = roles[role] ?? []
            let current = byDN[DirectoryLayout.normalize(dn)]
            if holders.isEmpty {
                if current != nil { try await ignoringMissing { try await directory.delete(dn) } }
            } else {
                try await putGroup(layout.roleEntry(dn: dn, members: holders.sorted()), existing: current, owned: [], directory)
            }
        }
        return "\(desired.dn), \(members.count) members"
    }

    /// Adds a group, or brings an existing one's owned attributes and member list in line in one modify.
    private func putGroup(_ desired: DirectoryEntry, existing: DirectoryEntry?, owned: [String], _ directory: any Directory) async throws {
        guard let existing else {
            do {
                try await directory.add(desired)
                return
            } catch let error as DirectoryError where error.isAlreadyExists {
                guard let found = try await entry(desired.dn, directory) else { throw error }
                return try await putGroup(desired, existing: found, owned: owned, directory)
            }
        }
        var changes = DirectoryLayout.changes(from: existing, to: desired, owned: owned)
        let want = Dictionary(desired["member"].map { (DirectoryLayout.normalize($0), $0) }, uniquingKeysWith: { first, _ in first })
        let have = Dictionary(existing["member"].map { (DirectoryLayout.normalize($0), $0) }, uniquingKeysWith: { first, _ in first })
        let added = want.filter { have[$0.key] == nil }.map(\.value).sorted()
        let removed = have.filter { want[$0.key] == nil }.map(\.value).sorted()
        if !added.isEmpty { changes.append(.add("member", added)) }
        if !removed.isEmpty { changes.append(.deleteValues("member", removed)) }
        try await directory.modify(desired.dn, changes)
    }

    // MARK: - Key pairs

    private func converge(keyPair key: ResourceKey, _ spec: KeyPairSpec, publicKey: String) async throws -> String {
        guard let directory else { return "fingerprint \(DirectoryLayout.fingerprint(publicKey))" }
        try await ensureOrganizationalUnits(directory)
        let owner = try spec.user ?? manager(of: key.project)
        let desired = layout.keyPairEntry(owner: owner, project: key.project, name: key.name, publicKey: publicKey)
        // A key that moved to another owner leaves its old entry behind; remove it.
        for stale in try await keyPairEntries(project: key.project, name: key.name)
        where DirectoryLayout.normalize(stale.dn) != DirectoryLayout.normalize(desired.dn) {
            try await ignoringMissing { try await directory.delete(stale.dn) }
        }
        do {
            try await put(desired, owned: DirectoryLayout.keyPairAttributes, directory)
        } catch let error as DirectoryError where error.isNoSuchObject {
            throw IdentityError(reason: .ownerNotInDirectory, message: "user \(owner) is not in the directory yet; waiting for it", retryable: true)
        }
        return desired.dn
    }

    private func manager(of project: String) throws -> String {
        guard let stored = try store.get(ResourceKey(kind: .project, project: "", name: project)), case .project(let spec) = stored.resource.spec else {
            throw IdentityError(reason: .projectNotFound, message: "project \(project) does not exist", retryable: true)
        }
        return spec.manager
    }

    private func keyPairEntries(project: String, name: String) async throws -> [DirectoryEntry] {
        guard let directory else { return [] }
        let filter = "(&(objectClass=stratusKeyPair)(stratusProject=\(Self.filterEscape(project)))(stratusKeyName=\(Self.filterEscape(name))))"
        return try await directory.search(base: layout.usersDN, scope: .subtree, filter: filter, attributes: ["1.1"])
    }

    // MARK: - Entries

    /// Adds the entry, or changes only the owned attributes that differ.
    private func put(_ desired: DirectoryEntry, owned: [String], _ directory: any Directory) async throws {
        if let existing = try await entry(desired.dn, directory) {
            try await directory.modify(desired.dn, DirectoryLayout.changes(from: existing, to: desired, owned: owned))
        } else {
            do {
                try await directory.add(desired)
            } catch let error as DirectoryError where error.isAlreadyExists {
                try await put(desired, owned: owned, directory)
            }
        }
    }

    private func entry(_ dn: String, _ directory: any Directory) async throws -> DirectoryEntry? {
        try await directory.search(base: dn, scope: .base, filter: "(objectClass=*)", attributes: nil).first
    }

    private func ensureOrganizationalUnits(_ directory: any Directory) async throws {
        for unit in layout.organizationalUnits where try await entry(unit.dn, directory) == nil {
            do {
                try await directory.add(unit)
            } catch let error as DirectoryError where error.isAlreadyExists {
                continue
            } catch let error as DirectoryError where error.isNoSuchObject {
                throw IdentityError(reason: .baseNotInDirectory, message: "the base \(layout.base) does not exist in the directory; create it (or fix --ldap-base)", retryable: true)
            }
        }
    }

    private func deleteSubtree(_ dn: String, _ directory: any Directory) async throws {
        let entries = try await directory.search(base: dn, scope: .subtree, filter: "(objectClass=*)", attributes: ["1.1"])
        for entry in entries.sorted(by: { $0.dn.split(separator: ",").count > $1.dn.split(separator: ",").count }) {
            try await ignoringMissing { try await directory.delete(entry.dn) }
        }
    }

    private func ignoringMissing(_ body: () async throws -> Void) async throws {
        do { try await body() } catch let error as DirectoryError where error.isNoSuchObject {}
    }

    /// The DNs the wanted resources describe (normalized), including role groups that have members.
    func describedDNs(_ wanted: [StoredResource]) throws -> Set<String> {
        var dns = Set<String>()
        var managers: [String: String] = [:]
        for resource in wanted where resource.key.kind == .project {
            if case .project(let spec) = resource.resource.spec { managers[resource.key.name] = spec.manager }
        }
        for resource in wanted {
            switch resource.resource.spec {
            case .user(let spec):
                dns.insert(layout.userDN(resource.key.name))
                let managed = managers.filter { $0.value == resource.key.name }.map(\.key)
                dns.formUnion(layout.groups(of: resource.key.name, spec, managerOf: managed))
            case .project:
                dns.insert(layout.projectDN(resource.key.name))
                dns.insert(layout.projectRoleDN(.projectmanager, project: resource.key.name))
            case .keyPair(let spec):
                if let owner = spec.user ?? managers[resource.key.project] {
                    dns.insert(layout.keyPairDN(owner: owner, project: resource.key.project, name: resource.key.name))
                }
            default:
                break
            }
        }
        return Set(dns.map(DirectoryLayout.normalize))
    }

    /// Escapes a value for an LDAP search filter (RFC 4515).
    static func filterEscape(_ value: String) -> String {
        var out = ""
        for character in value {
            switch character {
            case "*": out += "\\2a"
            case "(": out += "\\28"
            case ")": out += "\\29"
            case "\\": out += "\\5c"
            case "\0": out += "\\00"
            default: out.append(character)
            }
        }
        return out
    }
}

/// A reason the identity reconciler cannot converge yet.
struct IdentityError: Error {
    let reason: ConditionReason
    let message: String
    let retryable: Bool
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}

extension IdentityReconciler {
    /// How the directory differs from the store (`stratus diff --drift`): missing or edited entries,
    /// wrong memberships, and entries under the managed OUs that no resource describes.
    public func drift() async throws -> [DriftFinding] {
        guard let directory else { return [] }
        var findings: [DriftFinding] = []
        let resources = try store.list().filter { kinds.contains($0.key.kind) && !$0.isTerminating }
        var managers: [String: String] = [:]
        for resource in resources { if case .project(let spec) = resource.resource.spec { managers[resource.key.name] = spec.manager } }
        func compare(_ object: String, _ desired: DirectoryEntry, owned: [String]) async throws {
            guard let actual = try await entry(desired.dn, directory) else {
                findings.append(DriftFinding(object: object, domain: desired.dn, problem: "missing from the directory"))
                return
            }
            for change in DirectoryLayout.changes(from: actual, to: desired, owned: owned) {
                let problem = switch change {
                case .replace(let name, let values): "\(name) is \(actual[name].joined(separator: ", ")), want \(values.joined(separator: ", "))"
                case .add(let name, let values): "\(name) lacks \(values.joined(separator: ", "))"
                case .delete(let name): "\(name) is set by hand (\(actual[name].joined(separator: ", ")))"
                case .deleteValues(let name, let values): "\(name) has extra \(values.joined(separator: ", "))"
                }
                findings.append(DriftFinding(object: object, domain: desired.dn, problem: problem))
            }
        }
        for resource in resources {
            let object = "\(resource.key.kind.rawValue) \(resource.key.project.isEmpty ? "" : resource.key.project + "/")\(resource.key.name)"
            switch resource.resource.spec {
            case .user(let spec):
                let desired = layout.userEntry(resource.key.name, spec, accessKey: try store.accessKey(user: resource.key.name))
                try await compare(object, desired, owned: DirectoryLayout.userAttributes.filter { $0 != "stratusaccesskey" || desired["stratusaccesskey"].count > 0 })
                let wanted = Set(layout.groups(of: resource.key.name, spec, managerOf: managers.filter { $0.value == resource.key.name }.map(\.key)).map(DirectoryLayout.normalize))
                let actual = Set(try await groups(containing: desired.dn).map(DirectoryLayout.normalize))
                for group in wanted.subtracting(actual).sorted() { findings.append(DriftFinding(object: object, domain: group, problem: "not a member of \(group)")) }
                for group in actual.subtracting(wanted).sorted() { findings.append(DriftFinding(object: object, domain: group, problem: "member of \(group) without a role for it")) }
            case .project(let spec):
                try await compare(object, layout.projectEntry(resource.key.name, spec), owned: DirectoryLayout.projectAttributes)
            case .keyPair(let spec):
                guard let publicKey = spec.publicKey, let owner = spec.user ?? managers[resource.key.project] else { continue }
                try await compare(object, layout.keyPairEntry(owner: owner, project: resource.key.project, name: resource.key.name, publicKey: publicKey), owned: DirectoryLayout.keyPairAttributes)
            default:
                break
            }
        }
        let described = try describedDNs(resources)
        let units = Set(layout.organizationalUnits.map { DirectoryLayout.normalize($0.dn) })
        for base in [layout.usersDN, layout.groupsDN] {
            for entry in try await directory.search(base: base, scope: .subtree, filter: "(objectClass=*)", attributes: ["objectClass"]) {
                let dn = DirectoryLayout.normalize(entry.dn)
                guard !units.contains(dn), !described.contains(dn) else { continue }
                let managed = entry["objectclass"].contains { $0.lowercased() == "stratusmanaged" }
                findings.append(DriftFinding(
                    object: managed ? "orphan" : "unmanaged", domain: entry.dn,
                    problem: managed ? "no resource describes it; the next resync removes it" : "created outside Stratus; no resource describes it (left alone)"
                ))
            }
        }
        return findings
    }
}
