import Foundation
import GRDB
import StratusControl
import StratusIdentity
import StratusModel
import StratusStore
import StratusTestSupport

/// `stratus-bench identity [N]`: N users with 3 project memberships each converged into an empty
/// slapd by the controller, then a no-change resync; against `ldapadd` of the same entries as one
/// LDIF into another empty slapd (the ceiling), in the same run.
enum IdentityBench {
    static let projects = ["alpha", "beta", "gamma"]

    static func run(users: Int) async throws {
        let manifest = manifestText(users: users)
        let documents = try ManifestLoader.load([ManifestSource(name: "identity.yaml", data: Data(manifest.utf8))])

        // Stratus: controller + identity reconciler from an empty directory.
        let slapd = try await Slapd.make(sizeLimit: "unlimited")
        defer { slapd.destroy() }
        let dataDirectory = NSTemporaryDirectory() + "stratus-bench-identity-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dataDirectory) }
        let store = try Store(dataDirectory: dataDirectory)
        let directory = LDAPDirectory(LDAPConfiguration(url: slapd.url, bindDN: slapd.bindDN, password: slapd.password, base: slapd.base))
        let identity = IdentityReconciler(store: store, directory: directory, base: slapd.base)
        let controller = Controller(store: store, reconcilers: [identity], resyncInterval: .seconds(3600), pollInterval: .milliseconds(5))
        let task = Task { try await controller.run() }
        let start = ContinuousClock.now
        try store.apply(documents, options: ApplyOptions())
        let total = documents.count
        while try store.phaseCounts(kind: .user)["Ready", default: 0] + store.phaseCounts(kind: .project)["Ready", default: 0] < total {
            try await Task.sleep(for: .milliseconds(20))
            if ContinuousClock.now - start > .seconds(3600) { throw TestSupportError("identities did not converge within an hour") }
        }
        let converge = (ContinuousClock.now - start).seconds
        task.cancel()
        let entries = try await slapd.dns("(objectClass=*)", base: slapd.base).count - 1

        // A no-change resync: every resource reconciled again (8 at once, as the controller does) plus the sweep.
        let resources = try store.list().filter { identity.kinds.contains($0.key.kind) }
        let resyncStart = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            func add() {
                guard next < resources.count else { return }
                let resource = resources[next]
                next += 1
                group.addTask {
                    if case .failed(let reason, let message, _) = await identity.reconcile(resource) { throw TestSupportError("\(reason): \(message)") }
                }
            }
            for _ in 0..<identity.concurrency { add() }
            while try await group.next() != nil { add() }
        }
        let removed = await identity.sweep(resources)
        let resync = (ContinuousClock.now - resyncStart).seconds
        guard removed.isEmpty else { throw TestSupportError("the no-change sweep removed \(removed.count) entries") }

        // The ceiling: the same entries as one LDIF through ldapadd.
        let ldif = try await exportLDIF(slapd)
        let ceiling = try await Slapd.make(sizeLimit: "unlimited")
        defer { ceiling.destroy() }
        let ldapaddStart = ContinuousClock.now
        try await ceiling.add(ldif)
        let ldapadd = (ContinuousClock.now - ldapaddStart).seconds
        let copied = try await ceiling.dns("(objectClass=*)", base: ceiling.base).count - 1

        let report = """
            | measurement (\(users) users × 3 memberships, \(projects.count) projects) | result |
            |---|---|
            | Stratus: apply → all Ready in an empty slapd (\(entries) entries) | \(String(format: "%.2f", converge)) s (\(Int(Double(entries) / converge)) entries/s) |
            | Stratus: no-change resync (reconcile all \(resources.count) resources + sweep) | \(String(format: "%.2f", resync)) s |
            | ldapadd of the same \(copied) entries as one LDIF (ceiling) | \(String(format: "%.2f", ldapadd)) s (\(Int(Double(copied) / ldapadd)) entries/s) |
            | ratio Stratus / ldapadd | \(String(format: "%.0f", 100 * (Double(entries) / converge) / (Double(copied) / ldapadd)))% |

            """
        FileHandle.standardOutput.write(Data(report.utf8))
    }

    static func manifestText(users: Int) -> String {
        var text = "apiVersion: stratus/v1\nkind: User\nmetadata: {name: u0}\nspec: {fullName: User Zero, email: u0@example.org, projects: [{project: alpha, roles: [sysadmin]}, {project: beta, roles: [netadmin]}, {project: gamma, roles: [developer]}]}\n"
        for project in projects { text += "---\napiVersion: stratus/v1\nkind: Project\nmetadata: {name: \(project)}\nspec: {manager: u0}\n" }
        for index in 1..<users {
            text += "---\napiVersion: stratus/v1\nkind: User\nmetadata: {name: u\(index)}\nspec: {fullName: User \(index), email: u\(index)@example.org, projects: [{project: alpha, roles: [sysadmin]}, {project: beta, roles: [netadmin]}, {project: gamma, roles: [developer]}]}\n"
        }
        return text
    }

    /// Every entry under the base as LDIF, parents first (ldapsearch's order is not guaranteed to be).
    static func exportLDIF(_ slapd: Slapd) async throws -> String {
        let text = try await slapd.search("(objectClass=*)", base: slapd.base, attributes: ["*"])
        let records = text.components(separatedBy: "\n\n").filter { $0.hasPrefix("dn: ") && !$0.hasPrefix("dn: \(slapd.base)\n") }
        return records.sorted { $0.prefix(while: { $0 != "\n" }).split(separator: ",").count < $1.prefix(while: { $0 != "\n" }).split(separator: ",").count }
            .joined(separator: "\n\n") + "\n"
    }
}
