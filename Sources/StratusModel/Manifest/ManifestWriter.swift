import Foundation
import Yams

/// Writes resources as YAML the way `stratus get -o yaml` shows them and `apply` reads them back.
public enum ManifestWriter {
    private static let envelopeOrder = ["apiVersion", "kind", "metadata", "spec", "status"]
    private static let metadataOrder = [
        "name", "project", "id", "labels", "annotations", "generation", "applySet", "manager",
        "creationTimestamp", "deletionTimestamp",
    ]

    /// One resource as a YAML document (without the `---` separator).
    public static func yaml(_ resource: Resource) throws -> String {
        try yaml(JSONValue(encoding: resource))
    }

    /// Any JSON tree as YAML, with the envelope's keys in their usual order.
    public static func yaml(_ value: JSONValue) throws -> String {
        try Yams.serialize(node: node(value, depth: 0, parent: nil), width: -1, allowUnicode: true)
    }

    /// The spec alone, as YAML lines, for the unified view of a diff.
    public static func specLines(_ spec: ResourceSpec) throws -> [String] {
        let text = try yaml(JSONValue(encoding: spec.body))
        return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
    }

    private static func node(_ value: JSONValue, depth: Int, parent: String?) -> Node {
        switch value {
        case .null: return Node("null", .implicit, .plain)
        case .bool(let value): return Node(value ? "true" : "false", .implicit, .plain)
        case .int(let value): return Node(String(value), .implicit, .plain)
        case .double(let value): return Node(String(value), .implicit, .plain)
        case .string(let value): return Node(value, .implicit, style(for: value))
        case .array(let values): return Node(values.map { node($0, depth: depth + 1, parent: nil) })
        case .object(let object):
            let order: [String]? = depth == 0 ? envelopeOrder : (depth == 1 && parent == "metadata" ? metadataOrder : nil)
            let keys = object.keys.sorted { a, b in
                let ia = order?.firstIndex(of: a) ?? Int.max
                let ib = order?.firstIndex(of: b) ?? Int.max
                return ia != ib ? ia < ib : a < b
            }
            return Node(keys.map { (Node($0, .implicit, style(for: $0)), node(object[$0]!, depth: depth + 1, parent: $0)) })
        }
    }

    /// Plain when the text reads back as the same string; double-quoted otherwise.
    static func style(for text: String) -> Node.Scalar.Style {
        if text.isEmpty || text.contains("\n") { return .doubleQuoted }
        let reserved: Set<String> = ["true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"]
        if reserved.contains(text.lowercased()) || Double(text) != nil || Int(text) != nil { return .doubleQuoted }
        let first = text.unicodeScalars.first!
        guard CharacterSet.letters.contains(first) || first == "/" || first == "_" || first == "." else { return .doubleQuoted }
        let safe = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: " ._/-@+=,()"))
        if text.hasSuffix(" ") || !text.unicodeScalars.allSatisfy({ safe.contains($0) }) { return .doubleQuoted }
        return .plain
    }
}
