/// One changed field between two JSON trees, as `spec.memory: 512 → 1024`.
public struct FieldChange: Sendable, Equatable, Codable {
    /// Dotted path with `[i]` for array elements, e.g. `spec.securityGroups[1]`.
    public var path: String
    /// The old value; absent when the field was added.
    public var old: JSONValue?
    /// The new value; absent when the field was removed.
    public var new: JSONValue?

    public init(path: String, old: JSONValue?, new: JSONValue?) {
        self.path = path
        self.old = old
        self.new = new
    }

    /// `spec.memory: 512 → 1024`, `spec.keyName: (none) → deploy`.
    public var summary: String {
        "\(path): \(old?.displayText ?? "(none)") → \(new?.displayText ?? "(none)")"
    }
}

/// Field-level differences between two JSON trees.
public enum FieldDiff {
    /// Lists the leaves that differ, in path order. Arrays of different length compare element-wise.
    public static func changes(from old: JSONValue?, to new: JSONValue?, path: String) -> [FieldChange] {
        var result: [FieldChange] = []
        collect(old, new, path, &result)
        return result
    }

    private static func collect(_ old: JSONValue?, _ new: JSONValue?, _ path: String, _ out: inout [FieldChange]) {
        if old == new { return }
        switch (old, new) {
        case (.object(let a)?, .object(let b)?):
            for key in Set(a.keys).union(b.keys).sorted() {
                collect(a[key], b[key], path.isEmpty ? key : "\(path).\(key)", &out)
            }
        case (.array(let a)?, .array(let b)?):
            for index in 0..<max(a.count, b.count) {
                collect(index < a.count ? a[index] : nil, index < b.count ? b[index] : nil, "\(path)[\(index)]", &out)
            }
        default:
            out.append(FieldChange(path: path, old: old, new: new))
        }
    }
}
