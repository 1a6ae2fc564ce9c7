import ArgumentParser
import Foundation
import StratusModel
import StratusStore

extension Stratus {
    /// `stratus cordon NODE`: nothing new is placed on the node.
    struct Cordon: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mark a node unschedulable: it keeps what it runs, and gets nothing new.",
            discussion: """
                Sets spec.cordoned on the Node (as `apply` of the same Node with cordoned: true would), in \
                the apply set that registered it. The scheduler then leaves the node out and says why \
                ("n1: cordoned") when an instance fits nowhere else. `stratus uncordon NODE` undoes it.

                Examples:
                  stratus cordon n1
                  stratus get nodes          # CORDONED true
                  stratus uncordon n1
                """
        )

        @Argument(help: "The node's name.")
        var node: String

        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            try await reportingErrors { try await setCordoned(node, true, storeOptions: storeOptions) }
        }
    }

    /// `stratus uncordon NODE`: the node takes new instances again.
    struct Uncordon: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mark a cordoned node schedulable again.",
            discussion: "Example: stratus uncordon n1"
        )

        @Argument(help: "The node's name.")
        var node: String

        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            try await reportingErrors { try await setCordoned(node, false, storeOptions: storeOptions) }
        }
    }
}

/// Applies the node's own spec with `cordoned` changed, in its apply set.
private func setCordoned(_ name: String, _ cordoned: Bool, storeOptions: StoreOptions, quiet: Bool = false) async throws {
    let backend = try storeOptions.openBackend()
    let stored = try await backend.lookup(kind: .node, name: name, project: nil)
    guard case .node(var spec) = stored.resource.spec else { throw CLIError("\(name) is not a node") }
    let out = Terminal.standardOutput
    if spec.cordoned == cordoned {
        if !quiet { out.line("Node \(name) already \(cordoned ? "cordoned" : "schedulable")") }
        return
    }
    spec.cordoned = cordoned
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    // JSON is YAML: the spec and labels as they are, one field changed.
    let specText = String(decoding: try encoder.encode(spec), as: UTF8.self)
    let labels = String(decoding: try encoder.encode(stored.metadata.labels), as: UTF8.self)
    let annotations = String(decoding: try encoder.encode(stored.metadata.annotations), as: UTF8.self)
    let quotedName = String(decoding: try encoder.encode(name), as: UTF8.self)
    let text = "apiVersion: stratus/v1\nkind: Node\nmetadata: {\"name\": \(quotedName), \"labels\": \(labels), \"annotations\": \(annotations)}\nspec: \(specText)\n"
    _ = try await backend.apply(text: text, name: "<\(cordoned ? "cordon" : "uncordon") \(name)>", options: ApplyOptions(applySet: stored.metadata.applySet ?? "default"))
    if !quiet { out.line("Node \(name) \(cordoned ? "cordoned: nothing new is placed on it" : "uncordoned: it takes new instances again")") }
}

extension Stratus {
    /// `stratus drain NODE`: cordon, then move what can move and say what cannot.
    struct Drain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cordon a node and move its instances that may move to other nodes; report the rest.",
            discussion: """
                Instances with spec.restartPolicy: reschedule start again on another node that fits (from \
                their image: what was on their disk stays behind) and their copy on this node is removed; \
                the others keep running here, each with the reason. Needs the cloudadmin role and a running \
                `stratus serve` (the one on the data directory, or --server). Exits 1 when something stays.

                Examples:
                  stratus drain n1
                  stratus drain n1 -o json
                """
        )

        @Argument(help: "The node's name.")
        var node: String

        @Option(name: .shortAndLong, help: "Output: table or json.")
        var output: String = "table"

        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            guard ["table", "json"].contains(output) else { throw ValidationError("--output: expected table or json, got \"\(output)\"") }
            let outcomes = try await reportingErrors { () async throws -> [DrainOutcome] in
                try await setCordoned(node, true, storeOptions: storeOptions, quiet: output == "json")
                return try await storeOptions.openBackend().drain(node: node)
            }
            let out = Terminal.standardOutput
            if output == "json" {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                out.line(String(decoding: try encoder.encode(outcomes), as: UTF8.self))
            } else {
                var table = Table(headers: ["INSTANCE", "RESULT"])
                for outcome in outcomes {
                    let result = outcome.moved ? "moved to \(outcome.to ?? "?")" + (outcome.reason.map { " (\($0))" } ?? "") : "stays: \(outcome.reason ?? "")"
                    table.rows.append([outcome.instance, result])
                }
                if !outcomes.isEmpty { out.line(table.render()) }
                let moved = outcomes.filter(\.moved).count
                out.line("Node \(node) drained: \(moved) of \(outcomes.count) instances moved")
            }
            out.flush()
            if outcomes.contains(where: { !$0.moved }) { throw ExitCode(1) }
        }
    }
}
