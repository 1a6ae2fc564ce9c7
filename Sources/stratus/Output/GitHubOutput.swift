import Foundation
import StratusModel
import StratusStore

/// GitHub Actions' workflow commands and a Markdown job summary, for `diff -o github` and
/// `validate -o github`: errors become annotations on the lines of the pull request.
enum GitHubOutput {
    /// `::error file=site/web.yaml,line=4,col=16,title=Volume acme/v::spec.sizeGB: expected …`
    static func annotation(_ error: ManifestError, level: String = "error") -> String {
        var properties: [String] = []
        if let location = error.location {
            properties += ["file=\(property(location.file))", "line=\(location.line)", "col=\(location.column)"]
        }
        if let resource = error.resource { properties.append("title=\(property(resource))") }
        var text = error.path.map { $0.isEmpty ? "" : "\($0): " } ?? ""
        text += error.message + (error.hint.map { "; \($0)" } ?? "")
        return "::\(level)\(properties.isEmpty ? "" : " " + properties.joined(separator: ","))::\(message(text))"
    }

    /// A message of a workflow command: `%`, CR and LF escaped.
    static func message(_ text: String) -> String {
        text.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "\r", with: "%0D").replacingOccurrences(of: "\n", with: "%0A")
    }

    /// A property value: also `:` and `,`.
    static func property(_ text: String) -> String {
        message(text).replacingOccurrences(of: ":", with: "%3A").replacingOccurrences(of: ",", with: "%2C")
    }

    /// A Markdown summary of a plan: counts, then a table of what changes.
    static func summary(_ plan: ApplyPlan, applySet: String) -> String {
        var lines = [
            "### Stratus plan for apply set `\(applySet)`", "",
            "**\(plan.count(.create)) to create, \(plan.count(.update)) to update, \(plan.count(.delete)) to delete**, \(plan.count(.unchanged)) unchanged.",
        ]
        let changes = plan.changes.filter { $0.action != .unchanged }
        if !changes.isEmpty {
            lines += ["", "| | resource | changes |", "|---|---|---|"]
            for change in changes.prefix(200) {
                let symbol = switch change.action {
                case .create: "➕ create"
                case .update: "✏️ update"
                case .delete: "🗑️ delete"
                case .unchanged: ""
                }
                let fields = change.fields.prefix(5).map { "`\(cell($0.summary))`" }.joined(separator: "<br>") + (change.fields.count > 5 ? "<br>… \(change.fields.count - 5) more" : "")
                let notes = change.notes.isEmpty ? "" : (fields.isEmpty ? "" : "<br>") + change.notes.map(cell).joined(separator: ", ")
                lines.append("| \(symbol) | `\(cell(change.key.description))`\(change.id.map { " (\($0))" } ?? "") | \(fields)\(notes) |")
            }
            if changes.count > 200 { lines.append("| | … \(changes.count - 200) more | |") }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func cell(_ text: String) -> String { text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ") }

    /// Appends the summary to `$GITHUB_STEP_SUMMARY` when the job has one.
    static func appendToStepSummary(_ text: String) {
        guard let path = ProcessInfo.processInfo.environment["GITHUB_STEP_SUMMARY"], !path.isEmpty, let handle = FileHandle(forWritingAtPath: path) else { return }
        handle.seekToEndOfFile()
        handle.write(Data(text.utf8))
        try? handle.close()
    }
}
