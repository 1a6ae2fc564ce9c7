import Foundation
import GRDB
import StratusModel
import Synchronization

/// An access key and its secret: what `stratus credentials` prints and what signatures are checked against.
public struct Credential: Sendable, Equatable {
    public let accessKey: String
    /// The secret access key. Never log it; only `stratus credentials` shows it.
    public let secretKey: String
    public let user: String
    /// The project the key is bound to; "" for the user's own key (valid in each of their projects).
    public let project: String
}

/// What `Store.signer(accessKey:)` answers.
public struct Signer: Sendable {
    public var credential: Credential
    /// The user's spec; nil for the root user, or when the user is gone or being deleted.
    public var user: UserSpec?
    /// The projects whose `manager` the user is.
    public var manages: [String]
}

/// Signers by access key, all read at one identity version.
struct SignerCache: Sendable {
    static let capacity = 4096
    var version: Int64 = -1
    var entries: [String: Signer] = [:]
}

extension Store {
    /// The built-in cloud administrator: has `cloudadmin` whether or not a User resource of that name exists.
    public static let rootUser = "admin"

    /// The user's key (for `project`, or their own when it is ""), created on first request.
    ///
    /// A project key needs the user to be a member of the project. A user's own key uses the
    /// spec's `accessKey` when one is set.
    public func credential(user: String, project: String = "") throws -> Credential {
        try writing { db in
            if let existing = try fetchCredential(db, "user = ? AND project = ?", [user, project]) { return existing }
            var wanted: String?
            if user != Self.rootUser {
                guard let spec = try userSpec(db, user) else {
                    throw StoreError.notFound(message: "user \(user) not found; create it with `stratus apply` first")
                }
                if !project.isEmpty, !(spec.projects ?? []).contains(where: { $0.project == project }) {
                    let member = (spec.projects ?? []).map(\.project)
                    throw StoreError.conflict("user \(user) is not a member of project \(project)" + (member.isEmpty ? "" : " (member of: \(member.joined(separator: ", ")))"))
                }
                if project.isEmpty { wanted = spec.accessKey }
            }
            let accessKey = wanted ?? Self.newAccessKey()
            if let owner = try String.fetchOne(db, sql: "SELECT user FROM credential WHERE accessKey = ?", arguments: [accessKey]) {
                throw StoreError.conflict("access key \(accessKey) already belongs to user \(owner)")
            }
            let secret = Self.newSecret()
            try db.execute(
                sql: "INSERT INTO credential (accessKey, user, project, sealedSecret, createdAt) VALUES (?, ?, ?, ?, ?)",
                arguments: [accessKey, user, project, try secrets.seal(secret), Timestamp.string(Date())]
            )
            return Credential(accessKey: accessKey, secretKey: secret, user: user, project: project)
        }
    }

    /// Replaces the secret of the user's key; the old secret stops working at once.
    public func rotateCredential(user: String, project: String = "") throws -> Credential {
        let current = try credential(user: user, project: project)
        let secret = Self.newSecret()
        try writing { db in
            try db.execute(
                sql: "UPDATE credential SET sealedSecret = ?, rotatedAt = ? WHERE accessKey = ?",
                arguments: [try secrets.seal(secret), Timestamp.string(Date()), current.accessKey]
            )
        }
        return Credential(accessKey: current.accessKey, secretKey: secret, user: user, project: project)
    }

    /// What a request signed with an access key acts as, read in one transaction: the credential,
    /// its user's spec (nil when the user is gone or being deleted) and the projects they manage.
    ///
    /// Every signed request asks this, so answers are kept in memory for as long as the store's
    /// identity version is unchanged (migration v7: triggers bump it on every write to credentials,
    /// users and projects, from any process). A hit costs one single-row read instead of
    /// decoding a user spec, opening the sealed secret and scanning projects for their manager.
    public func signer(accessKey: String) throws -> Signer? {
        if let identityProbe {
            let version = try identityProbe.inDatabase { db in try Int64.fetchOne(db.cachedStatement(sql: "SELECT version FROM identityVersion")) } ?? 0
            if let known = signers.withLock({ $0.version == version ? $0.entries[accessKey] : nil }) { return known }
        }
        return try reading { db in
            let version = try Int64.fetchOne(db.cachedStatement(sql: "SELECT version FROM identityVersion")) ?? 0
            if let known = signers.withLock({ $0.version == version ? $0.entries[accessKey] : nil }) { return known }
            guard let credential = try fetchCredential(db, "accessKey = ?", [accessKey]) else { return nil }
            var found = Signer(credential: credential, user: nil, manages: [])
            if credential.user != Self.rootUser {
                let userSQL = "SELECT spec FROM resource WHERE kind = 'User' AND project = '' AND name = ? AND deletionTimestamp IS NULL"
                if let json = try String.fetchOne(db.cachedStatement(sql: userSQL), arguments: [credential.user]),
                    case .user(let spec) = try ResourceSpec.fromJSON(Data(json.utf8), kind: .user)
                {
                    found.user = spec
                }
                let managedSQL = "SELECT name FROM resource WHERE kind = 'Project' AND deletionTimestamp IS NULL AND json_extract(spec, '$.manager') = ? ORDER BY name"
                found.manages = try String.fetchAll(db.cachedStatement(sql: managedSQL), arguments: [credential.user])
            }
            signers.withLock { cache in
                // A reader of an older snapshot may come last; the entries always match `version`.
                if cache.version != version || cache.entries.count >= SignerCache.capacity { cache = SignerCache(version: version) }
                cache.entries[accessKey] = found
            }
            return found
        }
    }

    /// The access key of the user's own credential, if one was issued (the directory stores it).
    public func accessKey(user: String) throws -> String? {
        try reading { db in try String.fetchOne(db, sql: "SELECT accessKey FROM credential WHERE user = ? AND project = ''", arguments: [user]) }
    }

    /// Every access key of every user, for checks that span users.
    public func accessKeysByUser() throws -> [String: String] {
        try reading { db in
            var keys: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT accessKey, user FROM credential") { keys[row["accessKey"]] = row["user"] }
            return keys
        }
    }

    /// Forgets a deleted user's keys.
    public func deleteCredentials(user: String) throws {
        try writing { db in try db.execute(sql: "DELETE FROM credential WHERE user = ?", arguments: [user]) }
    }

    private func fetchCredential(_ db: Database, _ condition: String, _ arguments: StatementArguments) throws -> Credential? {
        let statement = try db.cachedStatement(sql: "SELECT accessKey, user, project, sealedSecret FROM credential WHERE \(condition)")
        guard let row = try Row.fetchOne(statement, arguments: arguments) else {
            return nil
        }
        return Credential(accessKey: row["accessKey"], secretKey: try secrets.open(row["sealedSecret"]), user: row["user"], project: row["project"])
    }

    func userSpec(_ db: Database, _ name: String) throws -> UserSpec? {
        guard let json = try String.fetchOne(db, sql: "SELECT spec FROM resource WHERE kind = ? AND project = '' AND name = ?", arguments: [Kind.user.rawValue, name]) else {
            return nil
        }
        guard case .user(let spec) = try ResourceSpec.fromJSON(Data(json.utf8), kind: .user) else { return nil }
        return spec
    }

    /// `AKIA` and 16 characters of A–Z2–7: the shape of an AWS access key id.
    static func newAccessKey() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var generator = SystemRandomNumberGenerator()
        return "AKIA" + String((0..<16).map { _ in alphabet[Int(generator.next(upperBound: UInt32(alphabet.count)))] })
    }

    /// 40 characters of base64 from 30 random bytes, as AWS secrets look.
    static func newSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<30).map { _ in UInt8.random(in: 0...255, using: &generator) }).base64EncodedString()
    }
}

extension Store {
    /// The members of a project and their roles there, read with SQLite's JSON functions (no decoding of every user).
    public func projectMembers(_ project: String) throws -> [(user: String, roles: [String])] {
        try reading { db in
            try Row.fetchAll(db, sql: """
                SELECT r.name AS user, json_extract(m.value, '$.roles') AS roles
                FROM resource r, json_each(r.spec, '$.projects') m
                WHERE r.kind = ? AND r.deletionTimestamp IS NULL AND json_extract(m.value, '$.project') = ?
                """, arguments: [Kind.user.rawValue, project]).map { row in
                let roles = (row["roles"] as String?).flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) } ?? []
                return (row["user"], roles)
            }
        }
    }
}

extension Store {
    /// How many live instances of each type a project has (for quotas), as the usage table keeps them.
    public func instanceTypeCounts(project: String) throws -> [String: Int] {
        try reading { db in try Self.instanceTypeCounts(db, project: project) }
    }

    static func instanceTypeCounts(_ db: Database, project: String) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        let statement = try db.cachedStatement(sql: "SELECT instanceType, count FROM instanceUsage WHERE project = ? AND count > 0")
        for row in try Row.fetchAll(statement, arguments: [project]) { counts[row[0]] = row[1] }
        return counts
    }
}
