import Foundation
import GRDB
import StratusIdentity
import StratusModel
import StratusStore
import StratusTestSupport
import Testing

@testable import StratusControl

/// Users, projects and key pairs converged into a real slapd (RECIPES §3), read back with ldapsearch.
@Suite(.serialized) struct IdentityTests {
    static let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ2Yk1cVpgZVDSkqMJYmfb0zI6D/6s8vGN0wVxyjG2k alice@laptop"

    static func identities(aliceMail: String = "alice@example.org", bobRoles: String = "[itsec]", bobProjects: String = "[{project: acme, roles: [developer]}]", withBob: Bool = true) throws -> [ManifestDocument] {
        var text = """
            apiVersion: stratus/v1
            kind: User
            metadata: {name: alice}
            spec: {fullName: Alice Example, email: \(aliceMail), projects: [{project: acme, roles: [sysadmin, netadmin]}]}
            ---
            apiVersion: stratus/v1
            kind: Project
            metadata: {name: acme}
            spec: {manager: alice, description: The example project}
            ---
            apiVersion: stratus/v1
            kind: KeyPair
            metadata: {name: deploy, project: acme}
            spec: {publicKey: \(key)}

            """
        if withBob {
            text += """
                ---
                apiVersion: stratus/v1
                kind: User
                metadata: {name: bob}
                spec: {roles: \(bobRoles), projects: \(bobProjects)}

                """
        }
        return try ManifestLoader.load([ManifestSource(name: "identity.yaml", data: Data(text.utf8))])
    }

    func withSlapd(sizeLimit: String = "500", _ body: (Slapd) async throws -> Void) async throws {
        guard Slapd.isInstalled else {
            Issue.record("slapd is not installed (/usr/sbin/slapd): run `make install-deps`; the LDAP tests cannot run")
            return
        }
        let slapd = try await Slapd.make(sizeLimit: sizeLimit)
        defer { slapd.destroy() }
        try await body(slapd)
    }

    func directory(_ slapd: Slapd) -> LDAPDirectory {
        LDAPDirectory(LDAPConfiguration(url: slapd.url, bindDN: slapd.bindDN, password: slapd.password, base: slapd.base, timeout: 2))
    }

    func ready(_ store: Store, _ kind: Kind, _ name: String, project: String? = nil) throws -> Bool {
        try store.get(ResourceKey(kind: kind, project: project, name: name))?.resource.status?.condition(.ready)?.status == .true
    }

    @Test("a paged search returns all 1,200 entries although the server answers at most 500 per search")
    func pagedSearch() async throws {
        try await withSlapd(sizeLimit: "size.soft=500 size.hard=unlimited size.prtotal=unlimited") { slapd in
            var ldif = "dn: cn=reader,\(slapd.base)\nobjectClass: person\ncn: reader\nsn: reader\nuserPassword: pw\n\ndn: ou=People,\(slapd.base)\nobjectClass: organizationalUnit\nou: People\n\n"
            for index in 0..<1200 { ldif += "dn: uid=u\(index),ou=People,\(slapd.base)\nobjectClass: inetOrgPerson\nuid: u\(index)\ncn: u\(index)\nsn: u\(index)\n\n" }
            try await slapd.add(ldif)
            // A plain user is subject to the size limit (the root DN is not).
            let reader = LDAPDirectory(LDAPConfiguration(url: slapd.url, bindDN: "cn=reader,\(slapd.base)", password: "pw", base: slapd.base))
            let entries = try await reader.search(base: "ou=People,\(slapd.base)", scope: .oneLevel, filter: "(objectClass=inetOrgPerson)", attributes: ["uid"])
            #expect(entries.count == 1200)
            #expect(Set(entries.flatMap { $0["uid"] }).count == 1200)
        }
    }

    @Test("users, projects, memberships, roles and keys appear in LDAP, change with the spec, and leave when deleted")
    func converge() async throws {
        try await withSlapd { slapd in
            let store = try Store(writer: DatabaseQueue())
            let identity = IdentityReconciler(store: store, directory: directory(slapd), base: slapd.base)
            let controller = Controller(store: store, reconcilers: [identity], resyncInterval: .seconds(3600), pollInterval: .milliseconds(10))
            let task = Task { try await controller.run() }
            defer { task.cancel() }
            try store.apply(try Self.identities(), options: ApplyOptions())
            #expect(try await eventually { try ready(store, .user, "alice") && ready(store, .user, "bob") && ready(store, .project, "acme") && ready(store, .keyPair, "deploy", project: "acme") })

            let alice = "uid=alice,ou=Users,\(slapd.base)"
            #expect(try await slapd.values("mail", of: alice) == ["alice@example.org"])
            #expect(try await slapd.values("cn", of: alice) == ["Alice Example"])
            #expect(try await slapd.values("stratusAccessKey", of: alice) == [try #require(try store.accessKey(user: "alice"))])
            #expect(try await slapd.values("member", of: "cn=acme,ou=Groups,\(slapd.base)").sorted() == [alice, "uid=bob,ou=Users,\(slapd.base)"])
            #expect(try await slapd.values("owner", of: "cn=acme,ou=Groups,\(slapd.base)") == [alice])
            #expect(try await slapd.values("member", of: "cn=sysadmin,cn=acme,ou=Groups,\(slapd.base)") == [alice])
            #expect(try await slapd.values("member", of: "cn=projectmanager,cn=acme,ou=Groups,\(slapd.base)") == [alice])
            #expect(try await slapd.values("member", of: "cn=developer,cn=acme,ou=Groups,\(slapd.base)") == ["uid=bob,ou=Users,\(slapd.base)"])
            #expect(try await slapd.values("member", of: "cn=itsec,ou=Groups,\(slapd.base)") == ["uid=bob,ou=Users,\(slapd.base)"])
            #expect(try await slapd.values("stratusKeyFingerprint", of: "cn=acme.deploy,\(alice)") == [DirectoryLayout.fingerprint(Self.key)])
            #expect(try await slapd.search("(objectClass=*)").contains("secret") == false, "no secret in the directory")

            // A spec change: alice's mail, bob loses itsec (its group loses its last member and goes).
            try store.apply(try Self.identities(aliceMail: "alice@acme.example", bobRoles: "[]"), options: ApplyOptions())
            #expect(try await eventually { try await slapd.values("mail", of: alice) == ["alice@acme.example"] })
            #expect(try await eventually { try await slapd.dns("(cn=itsec)").isEmpty })

            // bob leaves acme: his reconcile queues the project, whose reconcile drops him from its groups.
            try store.apply(try Self.identities(aliceMail: "alice@acme.example", bobRoles: "[]", bobProjects: "[]"), options: ApplyOptions())
            #expect(try await eventually { try await slapd.values("member", of: "cn=acme,ou=Groups,\(slapd.base)") == [alice] })
            #expect(try await eventually { try await slapd.dns("(cn=developer)").isEmpty })
            try store.apply(try Self.identities(aliceMail: "alice@acme.example", bobRoles: "[]"), options: ApplyOptions())
            #expect(try await eventually { try await slapd.values("member", of: "cn=developer,cn=acme,ou=Groups,\(slapd.base)") == ["uid=bob,ou=Users,\(slapd.base)"] })

            // Deleting bob removes his entry and his memberships.
            _ = try store.delete([ResourceKey(kind: .user, project: nil, name: "bob")])
            #expect(try await eventually { try await slapd.dns("(uid=bob)").isEmpty })
            #expect(try await slapd.values("member", of: "cn=acme,ou=Groups,\(slapd.base)") == [alice])
            #expect(try await slapd.dns("(cn=developer)").isEmpty)
            #expect(try store.accessKey(user: "bob") == nil)
        }
    }

    @Test("an entry edited, deleted or added by hand is reported as drift; the resync puts Stratus's back and leaves the stranger")
    func driftIsReverted() async throws {
        try await withSlapd { slapd in
            let store = try Store(writer: DatabaseQueue())
            let identity = IdentityReconciler(store: store, directory: directory(slapd), base: slapd.base)
            let first = Task { try await Controller(store: store, reconcilers: [identity], pollInterval: .milliseconds(10)).run() }
            try store.apply(try Self.identities(), options: ApplyOptions())
            #expect(try await eventually { try ready(store, .user, "alice") && ready(store, .user, "bob") && ready(store, .keyPair, "deploy", project: "acme") })
            #expect(try await identity.drift().isEmpty)
            // Stopped while the directory is changed by hand, so no resync repairs it before drift() looks.
            first.cancel()
            _ = await first.result

            let alice = "uid=alice,ou=Users,\(slapd.base)"
            try await slapd.modify("dn: \(alice)\nchangetype: modify\nreplace: mail\nmail: mallory@evil.example\n")
            try await slapd.modify("dn: cn=itsec,ou=Groups,\(slapd.base)\nchangetype: modify\nadd: member\nmember: \(alice)\n")
            try await slapd.delete("cn=acme.deploy,\(alice)")
            try await slapd.add("dn: uid=mallory,ou=Users,\(slapd.base)\nobjectClass: inetOrgPerson\nuid: mallory\ncn: Mallory\nsn: Mallory\n")
            // The stratusManaged stray: looks like Stratus's own, but no resource wants it.
            try await slapd.add("dn: uid=ghost,ou=Users,\(slapd.base)\nobjectClass: inetOrgPerson\nobjectClass: stratusManaged\nuid: ghost\ncn: Ghost\nsn: Ghost\n")

            let findings = try await identity.drift()
            let problems = findings.map { "\($0.object): \($0.problem)" }
            #expect(problems.contains { $0.hasPrefix("User alice: mail is mallory@evil.example, want alice@example.org") }, "\(problems)")
            #expect(problems.contains { $0.hasPrefix("User alice: member of cn=itsec") }, "\(problems)")
            #expect(problems.contains { $0.hasPrefix("KeyPair acme/deploy: missing from the directory") }, "\(problems)")
            #expect(findings.contains { $0.object == "unmanaged" && $0.domain.hasPrefix("uid=mallory") }, "\(problems)")
            #expect(findings.contains { $0.object == "orphan" && $0.domain.hasPrefix("uid=ghost") }, "\(problems)")

            let controller = Controller(store: store, reconcilers: [identity], resyncInterval: .seconds(1), pollInterval: .milliseconds(10))
            let task = Task { try await controller.run() }
            defer { task.cancel() }
            #expect(try await eventually(timeout: .seconds(60)) { try await identity.drift().map(\.object) == ["unmanaged"] })
            #expect(try await slapd.values("mail", of: alice) == ["alice@example.org"])
            #expect(try await slapd.dns("(uid=mallory)").count == 1, "an entry Stratus did not create is left alone")
            #expect(try await slapd.dns("(uid=ghost)").isEmpty, "a managed entry nobody wants is swept")
        }
    }

    @Test("an entry deleted or edited by hand is put back within 2 s by following the directory's changes (syncprov), not the resync; without syncprov the resync still does")
    func handChangesFollowed() async throws {
        for syncprov in [true, false] {
            guard Slapd.isInstalled else {
                Issue.record("slapd is not installed (/usr/sbin/slapd): run `make install-deps`; the LDAP tests cannot run")
                return
            }
            let slapd = try await Slapd.make(syncprov: syncprov)
            defer { slapd.destroy() }
            let store = try Store(writer: DatabaseQueue())
            let identity = IdentityReconciler(store: store, directory: directory(slapd), base: slapd.base)
            // With syncprov no resync can be what repairs it within the test: one an hour.
            let controller = Controller(store: store, reconcilers: [identity], resyncInterval: .seconds(syncprov ? 3600 : 2), pollInterval: .milliseconds(10))
            let task = Task { try await controller.run() }
            defer { task.cancel() }
            try store.apply(try Self.identities(), options: ApplyOptions())
            #expect(try await eventually { try ready(store, .user, "alice") && ready(store, .keyPair, "deploy", project: "acme") })
            try await Task.sleep(for: .milliseconds(500))  // the follower's refresh is done
            let alice = "uid=alice,ou=Users,\(slapd.base)"

            let deleted = ContinuousClock.now
            try await slapd.delete("cn=acme.deploy,\(alice)")
            #expect(try await eventually(timeout: .seconds(syncprov ? 2 : 10)) { try await slapd.dns("(cn=acme.deploy)").count == 1 }, "syncprov \(syncprov)")
            print("IdentityTests: a key pair's entry deleted by hand was back after \(ContinuousClock.now - deleted) (syncprov: \(syncprov))")

            let edited = ContinuousClock.now
            try await slapd.modify("dn: \(alice)\nchangetype: modify\nreplace: mail\nmail: mallory@evil.example\n")
            #expect(try await eventually(timeout: .seconds(syncprov ? 2 : 10)) { try await slapd.values("mail", of: alice) == ["alice@example.org"] }, "syncprov \(syncprov)")
            print("IdentityTests: a mail edited by hand was put back after \(ContinuousClock.now - edited) (syncprov: \(syncprov))")

            try await slapd.delete("cn=itsec,ou=Groups,\(slapd.base)")
            #expect(try await eventually(timeout: .seconds(syncprov ? 2 : 10)) { try await slapd.dns("(cn=itsec)").count == 1 }, "a global role's group: syncprov \(syncprov)")
            task.cancel()
            _ = await task.result
        }
    }

    @Test("with slapd stopped mid-apply, resources are Synced=False DirectoryUnavailable, and catch up when it is back")
    func directoryOutage() async throws {
        try await withSlapd { slapd in
            let store = try Store(writer: DatabaseQueue())
            let identity = IdentityReconciler(store: store, directory: directory(slapd), base: slapd.base)
            let controller = Controller(
                store: store, reconcilers: [identity], resyncInterval: .seconds(3600), pollInterval: .milliseconds(10),
                queue: WorkQueue(baseDelay: .milliseconds(100), maxDelay: .milliseconds(500))
            )
            let task = Task { try await controller.run() }
            defer { task.cancel() }
            try store.apply(try Self.identities(withBob: false), options: ApplyOptions())
            #expect(try await eventually { try ready(store, .user, "alice") })
            slapd.stop()
            try store.apply(try Self.identities(withBob: true), options: ApplyOptions())
            let bob = ResourceKey(kind: .user, project: nil, name: "bob")
            #expect(try await eventually { try store.get(bob)?.resource.status?.condition(.synced)?.reason == .directoryUnavailable })
            #expect(try store.events(for: bob).contains { $0.type == "Warning" && $0.reason == "DirectoryUnavailable" })
            try await slapd.start()
            #expect(try await eventually(timeout: .seconds(60)) { try ready(store, .user, "bob") })
            #expect(try await slapd.dns("(uid=bob)") == ["uid=bob,ou=Users,\(slapd.base)"])
            #expect(try await slapd.values("member", of: "cn=itsec,ou=Groups,\(slapd.base)") == ["uid=bob,ou=Users,\(slapd.base)"])
        }
    }
}
