import ArgumentParser
import Foundation
import StratusModel
import StratusStore

extension Stratus {
    /// `stratus events`: the change feed, newest last.
    struct Events: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show recent events (the change feed the controller follows).",
            discussion: """
                Without -p, the events of every project you may see (and of cluster-scoped resources) are \
                shown. -A says so explicitly and starts the table with a PROJECT column ("-" for cluster-scoped \
                resources), as kubectl's does.

                Examples:
                  stratus events
                  stratus events -p acme --kind instance
                  stratus events -A --kind instance
                  stratus events --after 120 -o json
                """
        )

        @Option(name: .shortAndLong, help: "Only events of this project.")
        var project: String?

        @Flag(name: [.customShort("A"), .long], help: "Every project you may see, with a PROJECT column first.")
        var allProjects = false

        @Option(help: "Only events of this kind.")
        var kind: String?

        @Option(help: "Only events after this sequence number.")
        var after: Int64 = 0

        @Option(help: "At most this many events (the newest).")
        var limit = 100

        @Option(name: .shortAndLong, help: "Output format: table or json.")
        var output: GetFormat = .table

        @Flag(name: .shortAndLong, help: "Keep printing new events as they happen (one line each; JSON lines with -o json) until interrupted.")
        var watch = false

        @OptionGroup var storeOptions: StoreOptions

        func validate() throws {
            try validateProjectScope(project: project, allProjects: allProjects)
        }

        func run() async throws {
            try await reportingErrors {
                let kind = try kind.map(parseKind)
                let backend = try storeOptions.openBackend()
                var events: [StoredEvent] = []
                var cursor = after
                while true {
                    let batch = try await backend.events(after: cursor, limit: 5000)
                    events += batch.filter { (project == nil || $0.project == project) && (kind == nil || $0.kind == kind!.rawValue) }
                    if events.count > limit { events.removeFirst(events.count - limit) }
                    guard let last = batch.last?.seq else { break }
                    cursor = last
                }
                let out = Terminal.standardOutput
                switch output {
                case .json, .yaml:
                    let encoder = JSONEncoder()
                    if watch {
                        // A stream: one JSON object per line, now and later.
                        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                        for event in events { out.line(String(decoding: try encoder.encode(event), as: UTF8.self)) }
                    } else {
                        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                        out.line(String(decoding: try encoder.encode(events), as: UTF8.self))
                    }
                case .table, .wide:
                    var table = Table(headers: (allProjects ? ["PROJECT"] : []) + ["SEQ", "AGE", "TYPE", "REASON", "OBJECT", "MESSAGE"])
                    table.rows = events.map { event in
                        (allProjects ? [Self.project(of: event)] : [])
                            + [String(event.seq ?? 0), Timestamp.age(since: event.time), event.type, event.reason, object(of: event), event.message]
                    }
                    if events.isEmpty && !watch { Terminal.standardError.line("No events.") } else if !events.isEmpty { out.write(table.render()) }
                }
                guard watch else { return }
                out.flush()
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                while !Task.isCancelled {
                    let batch = try await backend.events(after: cursor, limit: 1000)
                    for event in batch where (project == nil || event.project == project) && (kind == nil || event.kind == kind!.rawValue) {
                        if output == .json || output == .yaml {
                            out.line(String(decoding: try encoder.encode(event), as: UTF8.self))
                        } else {
                            let project = allProjects ? "\(Self.project(of: event))   " : ""
                            out.line("\(project)\(event.seq ?? 0)   \(event.time)   \(event.type)   \(event.reason)   \(object(of: event))   \(event.message)")
                        }
                    }
                    out.flush()
                    if let last = batch.last?.seq { cursor = last } else { try await Task.sleep(for: .milliseconds(500)) }
                }
            }
        }

        /// What the OBJECT column names: the kind and name, with the project unless a PROJECT column shows it.
        func object(of event: StoredEvent) -> String {
            guard let key = event.key else { return "\(event.kind) \(event.name)" }
            return allProjects ? "\(key.kind.rawValue) \(key.name)" : key.description
        }

        /// The PROJECT cell: "-" for a cluster-scoped resource, which belongs to none.
        static func project(of event: StoredEvent) -> String { event.project.isEmpty ? "-" : event.project }
    }
}
