import ArgumentParser
import Foundation
import StratusModel
import StratusStore

extension Stratus {
    /// `stratus describe`: everything about one resource, for a person.
    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one resource's spec, status, conditions and recent events.",
            discussion: """
                Without -p, NAME is looked for in every project you may see, and must be in only one. With -A, \
                every resource of the kind called NAME in those projects is described, one after another; \
                without a NAME, every resource of the kind.

                Examples:
                  stratus describe instance web-1 -p acme
                  stratus describe instance web-1 -A
                  stratus describe instances -A
                """
        )

        @Argument(help: "The kind.")
        var kind: String

        @Argument(help: "The name or EC2 id (optional with -A).")
        var name: String?

        @Option(name: .shortAndLong, help: "The project (project-scoped kinds).")
        var project: String?

        @Flag(name: [.customShort("A"), .long], help: "Every project you may see: each match of NAME, or every resource of the kind.")
        var allProjects = false

        @OptionGroup var storeOptions: StoreOptions

        func validate() throws {
            try validateProjectScope(project: project, allProjects: allProjects)
            if name == nil && !allProjects { throw ValidationError("give the NAME to describe, or -A to describe every \(kind) in every project you may see") }
        }

        func run() async throws {
            try await reportingErrors {
                let kind = try parseKind(kind)
                let backend = try storeOptions.openBackend()
                guard allProjects else {
                    let (stored, events) = try await backend.describe(kind: kind, name: name ?? "", project: project)
                    return Terminal.standardOutput.write(Self.render(stored, events: events))
                }
                let described = try await backend.describeAll(kind: kind, name: name)
                if described.isEmpty {
                    let scope = kind.scope == .project ? " in any project" : ""
                    guard let name else { return Terminal.standardError.line("No \(kind.plural) found\(scope).") }
                    throw StoreError.notFound(message: "\(kind.rawValue) \(name) not found\(scope)")
                }
                // A blank line between resources, as kubectl separates them.
                Terminal.standardOutput.write(described.map { Self.render($0.0, events: $0.1) }.joined(separator: "\n"))
            }
        }

        /// Each spec field and label present now, with who set it last: `git 1a2b3c4d5e6f (GitSync
        /// site)`, `apply:default`, `api:alice`.
        static func fieldOwners(_ stored: StoredResource, _ managers: [String: String]) -> [(String, String)] {
            var fields: [String] = []
            if case .object(let spec)? = try? JSONValue(encoding: stored.resource.spec.body) {
                fields += spec.filter { $0.value != .null }.keys.sorted().map { "spec.\($0)" }
            }
            fields += stored.metadata.labels.keys.sorted().map { "metadata.labels.\($0)" }
            return fields.map { ($0, displayManager(managers[$0] ?? managers["*"] ?? "?")) }
        }

        static func displayManager(_ manager: String) -> String {
            guard manager.hasPrefix("git:"), let at = manager.firstIndex(of: "@") else { return manager }
            let name = manager[manager.index(manager.startIndex, offsetBy: 4)..<at]
            return "git \(manager[manager.index(after: at)...].prefix(12)) (GitSync \(name))"
        }

        static func render(_ stored: StoredResource, events: [StoredEvent]) -> String {
            let meta = stored.metadata
            var lines: [String] = []
            func field(_ name: String, _ value: String) { lines.append((name + ":").padding(toLength: 14, withPad: " ", startingAt: 0) + value) }
            field("Name", meta.name)
            if let project = meta.project { field("Project", project) }
            field("Kind", stored.key.kind.rawValue)
            if let id = meta.id { field("ID", id) }
            field("Labels", meta.labels.isEmpty ? "<none>" : meta.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
            field("Annotations", meta.annotations.isEmpty ? "<none>" : meta.annotations.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
            let observed = stored.resource.status?.observedGeneration.map { " (observed: \($0))" } ?? " (not yet observed)"
            field("Generation", "\(stored.generation)\(observed)")
            field("Apply set", "\(meta.applySet ?? "<none>") (manager \(meta.manager ?? "?"))")
            field("Created", meta.creationTimestamp ?? "?")
            if let deletion = meta.deletionTimestamp { field("Deleting since", deletion) }
            field("Status", stored.displayPhase)
            lines.append("Spec:")
            let specLines = (try? ManifestWriter.specLines(stored.resource.spec)) ?? []
            lines += specLines.map { "  " + $0 }
            if let details = stored.resource.status?.details, !details.isEmpty {
                lines.append("Observed:")
                lines += details.sorted { $0.key < $1.key }.map { "  \($0.key): \($0.value.displayText)" }
            }
            if let managers = stored.fieldManagers, !managers.isEmpty {
                lines.append("Field managers:")
                var table = Table(headers: ["FIELD", "SET BY"])
                table.rows = fieldOwners(stored, managers).map { [$0.0, $0.1] }
                lines += table.render().split(separator: "\n").map { "  " + $0 }
            }
            lines.append("Conditions:")
            let conditions = stored.resource.status?.conditions ?? []
            if conditions.isEmpty {
                lines.append("  <none>")
            } else {
                var table = Table(headers: ["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"])
                table.rows = conditions.map { [$0.type.rawValue, $0.status.rawValue, $0.reason.rawValue, Timestamp.age(since: $0.lastTransitionTime), $0.message ?? ""] }
                lines += table.render().split(separator: "\n").map { "  " + $0 }
            }
            lines.append("Events:")
            if events.isEmpty {
                lines.append("  <none>")
            } else {
                var table = Table(headers: ["AGE", "TYPE", "REASON", "MESSAGE"])
                table.rows = events.map { [Timestamp.age(since: $0.time), $0.type, $0.reason, $0.message] }
                lines += table.render().split(separator: "\n").map { "  " + $0 }
            }
            return lines.joined(separator: "\n") + "\n"
        }
    }
}
