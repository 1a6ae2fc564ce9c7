import Foundation
import StratusAccess
import StratusModel
import StratusServer
import StratusStore

/// What `stratus serve` prints once every listener is up: where the APIs are, three commands
/// a newcomer can paste into another terminal (naming an instance and project that exist), and
/// the one that prints a sign-in link of the dashboard.
struct NextSteps {
    /// The lines, for an instance of the initial apply (else of the store), its project and the project's manager.
    static func lines(server: StratusServer, info: ServeInfo, command: String) -> [String] {
        let stratus = command
        // Each command's own option (not the root command's), so it goes after the subcommand.
        let data = server.configuration.dataDir == ".stratus" ? "" : " --data-dir \(shellQuoted(server.configuration.dataDir))"
        var lines = ["stratus serve is ready: resource API \(info.apiURL ?? "?"), EC2 API \(info.ec2URL ?? "?"), S3 API \(info.s3URL ?? "?"). Next, in another terminal:"]
        guard let instance = try? exampleInstance(server), !instance.project.isEmpty else {
            lines.append("  \(stratus) apply -f examples/\(data)")
            lines.append("  \(stratus) get instances\(data)")
            lines.append("  eval \"$(\(stratus) credentials admin\(data))\" && aws --endpoint-url \"$EC2_URL\" ec2 describe-instances")
            lines.append("  \(stratus) dashboard\(data)      # a sign-in link of the web dashboard")
            return lines
        }
        let project = instance.project
        let manager = (try? server.store.get(ResourceKey(kind: .project, project: nil, name: project))).flatMap { stored -> String? in
            guard case .project(let spec)? = stored?.resource.spec else { return nil }
            return spec.manager
        } ?? "admin"
        lines.append("  \(stratus) get instances -p \(project)\(data)")
        lines.append("  \(stratus) console \(instance.name) -p \(project)\(data)")
        lines.append("  eval \"$(\(stratus) credentials \(manager) -p \(project)\(data))\" && aws --endpoint-url \"$EC2_URL\" ec2 describe-instances")
        lines.append("  \(stratus) dashboard\(data)      # a sign-in link of the web dashboard")
        return lines
    }

    /// The first instance `--apply` named, in file order; else the first stored one.
    private static func exampleInstance(_ server: StratusServer) throws -> ResourceKey? {
        if let applied = server.initialApply?.changes.first(where: { $0.key.kind == .instance && $0.action != .delete })?.key { return applied }
        return try server.store.list(kind: .instance).first { !$0.isTerminating }?.key
    }

    private static func shellQuoted(_ text: String) -> String {
        text.allSatisfy { $0.isLetter || $0.isNumber || "-_./".contains($0) } ? text : "'\(text.replacingOccurrences(of: "'", with: "'\\''"))'"
    }
}
