import ArgumentParser
import Foundation
import StratusAPI
import StratusModel
import StratusStore

/// How `get` prints resources.
enum GetFormat: String, ExpressibleByArgument, CaseIterable {
    case table
    case wide
    case yaml
    case json
}

extension Stratus {
    /// `stratus get`: lists resources of a kind, or shows one.
    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List resources of a kind, or show one.",
            discussion: """
                KIND is a kind name, plural or short alias: instances, volumes, images, networks, \
                securitygroups (sg), addresses (eip), keypairs, instancetypes (types, flavors), nodes, projects, \
                users. NAME may also be an EC2 id (i-…, vol-…, ami-…).

                Without -p, the list spans every project you may see. -A says so explicitly, as kubectl's does: \
                the table starts with a PROJECT column, and a NAME shows every resource of that name (or id) in \
                those projects instead of asking for -p.

                Examples:
                  stratus get instances -p acme
                  stratus get instances -A
                  stratus get instance web-1 -p acme -o yaml
                  stratus get types -o json
                """
        )

        @Argument(help: "The kind to list.")
        var kind: String

        @Argument(help: "Names (or EC2 ids) to show; all when omitted.")
        var names: [String] = []

        @Option(name: .shortAndLong, help: "Only this project (project-scoped kinds).")
        var project: String?

        @Flag(name: [.customShort("A"), .long], help: "Every project you may see, with a PROJECT column first.")
        var allProjects = false

        @Option(name: .shortAndLong, help: "Output format: table, wide, yaml or json.")
        var output: GetFormat = .table

        @OptionGroup var storeOptions: StoreOptions

        func validate() throws {
            try validateProjectScope(project: project, allProjects: allProjects)
        }

        func run() async throws {
            try await reportingErrors {
                let kind = try parseKind(kind)
                let backend = try storeOptions.openBackend()
                // Cluster-scoped kinds belong to no project: -A changes nothing for them.
                let acrossProjects = allProjects && kind.scope == .project
                var resources: [StoredResource] = []
                if acrossProjects {
                    resources = try Self.named(names, in: try await backend.list(kind: kind, project: nil), kind: kind)
                } else if names.isEmpty {
                    resources = try await backend.list(kind: kind, project: project)
                } else {
                    for name in names { resources.append(try await backend.lookup(kind: kind, name: name, project: project)) }
                }
                if kind == .node { resources = try await NodeAllocation.annotate(resources, backend: backend) }
                let out = Terminal.standardOutput
                switch output {
                case .table, .wide:
                    if resources.isEmpty {
                        let scope = acrossProjects ? " in any project" : project.map { " in project \($0)" } ?? ""
                        Terminal.standardError.line("No \(kind.plural) found\(scope).")
                    } else {
                        out.write(ResourceColumns.table(resources, kind: kind, wide: output == .wide, projectFirst: acrossProjects).render())
                    }
                case .yaml:
                    out.write(try resources.map { try ManifestWriter.yaml($0.resource) }.map { $0.hasSuffix("\n") ? $0 : $0 + "\n" }.joined(separator: "---\n"))
                case .json:
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                    if names.count == 1 && !acrossProjects {
                        out.line(String(decoding: try encoder.encode(resources[0].resource), as: UTF8.self))
                    } else {
                        out.line(String(decoding: try encoder.encode(ResourceList(items: resources.map(\.resource))), as: UTF8.self))
                    }
                }
            }
        }

        /// The resources called by one of `names` (all of them when none is given), in the order
        /// the names are given; a name that matches nothing is an error, as it is with -p.
        static func named(_ names: [String], in resources: [StoredResource], kind: Kind) throws -> [StoredResource] {
            guard !names.isEmpty else { return resources }
            var chosen: [StoredResource] = []
            for name in names {
                let matches = resources.filter { $0.isCalled(name) }
                if matches.isEmpty { throw StoreError.notFound(message: "\(kind.rawValue) \(name) not found in any project") }
                chosen += matches.filter { match in !chosen.contains { $0.key == match.key } }
            }
            return chosen
        }
    }
}

/// `{"apiVersion":"stratus/v1","kind":"List","items":[…]}`.
struct ResourceList: Encodable {
    var apiVersion = Resource.apiVersion
    var kind = "List"
    var items: [Resource]
}

