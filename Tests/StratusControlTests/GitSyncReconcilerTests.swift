import StratusIdentity
import StratusModel
import StratusStore
import Testing

@testable import StratusControl

/// The pieces of GitSync and of following the directory that decide who changed what.
@Suite struct GitSyncReconcilerTests {
    @Test("an event is a GitSync's own only when it names exactly that manager, not one whose name starts the same")
    func ownWrites() {
        #expect(GitSyncReconciler.writtenBy("git:site", "created by git:site"))
        #expect(GitSyncReconciler.writtenBy("git:site", "updated by git:site: spec.instanceType: a → b"))
        #expect(GitSyncReconciler.writtenBy("git:site", "updated by git:site (taken over from apply set \"hand\"): …"))
        #expect(!GitSyncReconciler.writtenBy("git:site", "updated by git:site-b: spec.instanceType: a → b"))
        #expect(!GitSyncReconciler.writtenBy("git:site", "updated by api:alice: metadata.labels.owner"))
    }

    @Test("a commit may not declare a GitSync, nor take a resource another GitSync manages")
    func refusals() {
        let web = ResourceKey(kind: .instance, project: "acme", name: "web")
        #expect(GitSyncReconciler.refusal(PlannedChange(action: .create, key: ResourceKey(kind: .gitSync, project: nil, name: "x")), manager: "git:site") != nil)
        #expect(GitSyncReconciler.refusal(PlannedChange(action: .update, key: web, previousManager: "git:other"), manager: "git:site")?.contains("belongs to git:other") == true)
        #expect(GitSyncReconciler.refusal(PlannedChange(action: .update, key: web, previousManager: "api:alice"), manager: "git:site") == nil)
        #expect(GitSyncReconciler.refusal(PlannedChange(action: .update, key: web, previousManager: "git:site"), manager: "git:site") == nil)
    }

    @Test("a changed entry's DN names the resource to reconcile, whatever its spacing and case")
    func directoryOwners() {
        let layout = DirectoryLayout(base: "dc=example,dc=org")
        #expect(layout.owner(of: "uid=alice,ou=Users,dc=example,dc=org") == .user("alice"))
        #expect(layout.owner(of: "UID=alice, ou=users, dc=Example, dc=org") == .user("alice"))
        #expect(layout.owner(of: "cn=acme.deploy,uid=alice,ou=Users,dc=example,dc=org") == .keyPair(project: "acme", name: "deploy"))
        #expect(layout.owner(of: "cn=acme,ou=Groups,dc=example,dc=org") == .project("acme"))
        #expect(layout.owner(of: "cn=sysadmin,cn=acme,ou=Groups,dc=example,dc=org") == .project("acme"))
        #expect(layout.owner(of: "cn=cloudadmin,ou=Groups,dc=example,dc=org") == .globalRole)
        #expect(layout.owner(of: "ou=Users,dc=example,dc=org") == .everything)
        #expect(layout.owner(of: "uid=x,ou=Elsewhere,dc=example,dc=org") == nil)
    }
}
