import Foundation
import StratusModel
import StratusStore

/// The machine form of a plan, shared by `apply -o json` and `diff -o json` (schema in README).
struct ChangeReport: Codable {
    struct Summary: Codable {
        var create = 0
        var update = 0
        var delete = 0
        var unchanged = 0
    }

    struct Change: Codable {
        var action: String
        var kind: String
        var project: String?
        var name: String
        var id: String?
        var fields: [FieldChange]
        var notes: [String]
    }

    var apiVersion = Resource.apiVersion
    var kind = "ChangeReport"
    var applySet: String
    var dryRun: Bool
    var summary: Summary
    var changes: [Change]
    /// Resources of the same projects that belong to no apply set (made through the EC2 API): listed, not compared.
    var outsideSet: [Outside]?

    struct Outside: Codable {
        var kind: String
        var project: String?
        var name: String
        var id: String?
        var manager: String
    }

    init(plan: ApplyPlan, applySet: String, dryRun: Bool, includeUnchanged: Bool) {
        self.applySet = applySet
        self.dryRun = dryRun
        summary = Summary(create: plan.count(.create), update: plan.count(.update), delete: plan.count(.delete), unchanged: plan.count(.unchanged))
        changes = plan.changes.filter { includeUnchanged || $0.action != .unchanged }.map { change in
            var fields = change.fields
            if change.action == .create, let spec = change.newSpec, let json = try? JSONValue(encoding: spec.body) {
                fields = FieldDiff.changes(from: nil, to: json, path: "spec")
            }
            return Change(
                action: change.action.rawValue, kind: change.key.kind.rawValue,
                project: change.key.project.isEmpty ? nil : change.key.project, name: change.key.name,
                id: change.id, fields: fields, notes: change.notes
            )
        }
    }

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}

/// Human output of plans: one line per resource for `apply`, a unified diff per resource for `diff`.
struct ChangePrinter {
    var out: Terminal
    var paint: Paint

    /// `Instance acme/web-1 created (i-0a1b2c3d)` and so on, then a summary line.
    func printApplied(_ plan: ApplyPlan, applySet: String, dryRun: Bool) {
        let suffix = dryRun ? " (dry run)" : ""
        for change in plan.changes {
            let key = change.key.description
            switch change.action {
            case .create:
                let id = change.id.map { " (\($0))" } ?? ""
                out.line("\(key) \(paint.green("created"))\(id)\(suffix)")
            case .update:
                let notes = change.notes.isEmpty ? "" : " (\(change.notes.joined(separator: ", ")))"
                out.line("\(key) \(paint.yellow("configured"))\(notes)\(suffix)")
                for field in change.fields { out.line("    \(field.summary)") }
            case .delete:
                out.line("\(key) \(paint.red("pruned"))\(dryRun ? suffix : " (Terminating)")")
            case .unchanged:
                out.line("\(key) \(paint.dim("unchanged"))")
            }
        }
        let verb = dryRun ? "Would apply" : "Applied"
        out.line("\(verb) set \"\(applySet)\": \(plan.count(.create)) created, \(plan.count(.update)) configured, \(plan.count(.delete)) pruned, \(plan.count(.unchanged)) unchanged.")
        if dryRun { out.line("Nothing was changed (dry run).") }
    }

    /// A unified diff of each changing resource's spec, its field-level changes, and a plan line.
    func printDiff(_ plan: ApplyPlan) {
        for change in plan.changes where change.action != .unchanged {
            let header = change.key.description + (change.id.map { " (\($0))" } ?? "")
            switch change.action {
            case .create:
                out.line(paint.green("+ \(header): create"))
                for line in (try? ManifestWriter.specLines(change.newSpec!)) ?? [] { out.line(paint.green("    + \(line)")) }
            case .delete:
                out.line(paint.red("- \(header): delete (pruned from the apply set)"))
                for line in (try? ManifestWriter.specLines(change.oldSpec!)) ?? [] { out.line(paint.red("    - \(line)")) }
            case .update:
                let notes = change.notes.isEmpty ? "" : " (\(change.notes.joined(separator: ", ")))"
                out.line(paint.yellow("~ \(header): update\(notes)"))
                if let old = change.oldSpec, let new = change.newSpec {
                    let oldLines = (try? ManifestWriter.specLines(old)) ?? []
                    let newLines = (try? ManifestWriter.specLines(new)) ?? []
                    for line in LineDiff.diff(oldLines, newLines) {
                        switch line {
                        case .same(let text): out.line("      \(text)")
                        case .removed(let text): out.line(paint.red("    - \(text)"))
                        case .added(let text): out.line(paint.green("    + \(text)"))
                        }
                    }
                }
                for field in change.fields { out.line("    \(paint.bold(field.summary))") }
            case .unchanged:
                break
            }
        }
        out.line("Plan: \(plan.count(.create)) to create, \(plan.count(.update)) to update, \(plan.count(.delete)) to delete, \(plan.count(.unchanged)) unchanged.")
    }
}
