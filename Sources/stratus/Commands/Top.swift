import ArgumentParser
import Foundation
import StratusAPI
import StratusStore

extension Stratus {
    /// `stratus top nodes|instances`: the dashboard's usage figures in the terminal.
    struct Top: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what the nodes offer and hold, or what each project uses of its quotas.",
            discussion: """
                top nodes: each node's vCPUs and memory, what the instances placed there take of them \
                (as the scheduler counts), and how many instances run there. Needs the cloudadmin or itsec role \
                with --server: only they see every instance.

                top instances: each project's instances, vCPUs, RAM, volumes, gigabytes, addresses and security \
                groups against its quotas, as Horizon's overview shows them (the projects you may see).

                Examples:
                  stratus top nodes
                  stratus top instances -p acme
                  stratus top nodes --watch 2      # redraw every 2 s until Ctrl-C
                  stratus top instances -o json
                """
        )

        enum Subject: String, ExpressibleByArgument, CaseIterable {
            case nodes, instances
        }

        enum Format: String, ExpressibleByArgument, CaseIterable {
            case table, json
        }

        @Argument(help: "nodes or instances.")
        var subject: Subject

        @Option(name: .shortAndLong, help: "With instances: this project only.")
        var project: String?

        @Option(name: .shortAndLong, help: "table (default) or json.")
        var output: Format = .table

        @Option(help: ArgumentHelp("Redraw every N seconds until interrupted.", valueName: "seconds"))
        var watch: Int?

        @OptionGroup var storeOptions: StoreOptions

        func validate() throws {
            if let watch, watch < 1 { throw ValidationError("--watch: expected a whole number of seconds from 1, got \(watch)") }
            if watch != nil && output == .json { throw ValidationError("--watch redraws a table; leave out -o json") }
        }

        func run() async throws {
            try await reportingErrors {
                let backend = try storeOptions.openBackend()
                let out = Terminal.standardOutput
                repeat {
                    let usage = try await backend.usage(project: subject == .instances ? project : nil)
                    if output == .json {
                        let encoder = JSONEncoder()
                        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                        let data = subject == .nodes ? try encoder.encode(usage.nodes) : try encoder.encode(usage.projects)
                        out.line(String(decoding: data, as: UTF8.self))
                        return
                    }
                    if watch != nil { out.write("\u{1B}[H\u{1B}[2J") }  // home, clear
                    out.write(subject == .nodes ? Self.nodes(usage.nodes) : Self.projects(usage.projects))
                    out.flush()
                    if let watch { try await Task.sleep(for: .seconds(watch)) }
                } while watch != nil
            }
        }

        static func nodes(_ nodes: [NodeUsage]) -> String {
            guard !nodes.isEmpty else { return "No nodes to show (with --server, top nodes needs the cloudadmin or itsec role).\n" }
            var table = Table(headers: ["NODE", "READY", "INSTANCES", "VCPUS", "VCPU%", "MEMORY-MB", "MEMORY%"])
            for node in nodes.sorted(by: { $0.name < $1.name }) {
                table.rows.append([
                    node.name + (node.cordoned ? " (cordoned)" : ""), node.ready ? "True" : "False", "\(node.instances)",
                    "\(node.allocatedVcpus)/\(node.vcpus)", percent(node.allocatedVcpus, node.vcpus),
                    "\(node.allocatedMemoryMB)/\(node.memoryMB)", percent(node.allocatedMemoryMB, node.memoryMB),
                ])
            }
            return table.render()
        }

        static func projects(_ projects: [ProjectUsage]) -> String {
            guard let first = projects.first else { return "No projects to show.\n" }
            var table = Table(headers: ["PROJECT"] + first.quotas.map { header($0.field) })
            for project in projects {
                table.rows.append([project.project] + project.quotas.map { "\($0.used)/\($0.limit.map(String.init) ?? "∞")" })
            }
            return table.render()
        }

        static func header(_ field: String) -> String {
            switch field {
            case "ram": "RAM-MB"
            case "gigabytes": "VOLUME-GB"
            case "securityGroups": "SECURITY-GROUPS"
            default: field.uppercased()
            }
        }

        static func percent(_ used: Int, _ total: Int) -> String {
            total > 0 ? "\(used * 100 / total)%" : "-"
        }
    }

    /// `stratus dashboard`: a one-time sign-in link of the web dashboard.
    struct Dashboard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a one-time sign-in link of the web dashboard (/ui on the API's port).",
            discussion: """
                The link signs its first visitor in as the user, once, within five minutes; the browser then \
                holds an HttpOnly session cookie for eight hours (Sign out ends it). Without --user it signs in \
                as the caller: with the data directory that is admin, with --server the user of your key. Only \
                cloudadmins make links for others. The dashboard also takes an access key and secret key \
                (stratus credentials USER) on its sign-in page.

                Examples:
                  stratus dashboard
                  stratus dashboard --user alice
                  xdg-open "$(stratus dashboard -o url)"
                """
        )

        enum Format: String, ExpressibleByArgument, CaseIterable {
            case text, url, json
        }

        @Option(help: "The user to sign in as.")
        var user: String?

        @Option(name: .shortAndLong, help: "text (default), url (the link alone) or json.")
        var output: Format = .text

        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            try await reportingErrors {
                let link = try await storeOptions.openBackend().dashboardLink(user: user)
                let out = Terminal.standardOutput
                switch output {
                case .url: out.line(link.url ?? link.path)
                case .json:
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                    out.line(String(decoding: try encoder.encode(link), as: UTF8.self))
                case .text:
                    out.line("Open this link to sign in to the dashboard as \(link.user) (once, until \(link.expires)):")
                    out.line("  \(link.url ?? link.path)")
                }
            }
        }
    }
}
