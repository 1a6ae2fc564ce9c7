import ArgumentParser
import Foundation
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
                KIND is a kind name, plural or short alias: instances, volumes, images, networks,
                securitygroups (sg), addresses (eip), keypairs, instancetypes (types, flavors), nodes,
                projects, users. NAME may also be an EC2 id (i-…, vol-…, ami-…).

                Examples:
                  stratus get instances -p acme
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

        @Option(name: .shortAndLong, help: "Output format: table, wide, yaml or json.")
        var output: GetFormat = .table

        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            try await reportingErrors {
                let kind = try parseKind(kind)
                let backend = try storeOptions.openBackend()
                var resources: [StoredResource] = []
                if names.isEmpty {
                    resources = try await backend.list(kind: kind, project: project)
                } else {
                    for name in names { resources.append(try await backend.lookup(kind: kind, name: name, project: project)) }
                }
                let out = Terminal.standardOutput
                switch output {
                case .table, .wide:
                    if resources.isEmpty {
                        Terminal.standardError.line("No \(kind.plural) found\(project.map { " in project \($0)" } ?? "").")
                    } else {
                        out.write(ResourceColumns.table(resources, kind: kind, wide: output == .wide).render())
                    }
                case .yaml:
                    out.write(try resources.map { try ManifestWriter.yaml($0.resource) }.map { $0.hasSuffix("\n") ? $0 : $0 + "\n" }.joined(separator: "---\n"))
                case .json:
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                    if names.count == 1 {
                        out.line(String(decoding: try encoder.encode(resources[0].resource), as: UTF8.self))
                    } else {
                        out.line(String(decoding: try encoder.encode(ResourceList(items: resources.map(\.resource))), as: UTF8.self))
                    }
                }
            }
        }
    }
}

/// `{"apiVersion":"stratus/v1","kind":"List","items":[…]}`.
struct ResourceList: Encodable {
    var apiVersion = Resource.apiVersion
    var kind = "List"
    var items: [Resource]
}

