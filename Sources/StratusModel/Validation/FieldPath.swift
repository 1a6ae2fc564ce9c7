/// One step in a path to a field: a mapping key or a sequence index.
public enum PathElement: Sendable, Hashable {
    case key(String)
    case index(Int)
}

/// Renders `[.key("spec"), .key("ingress"), .index(0), .key("toPort")]` as `spec.ingress[0].toPort`.
public func renderPath(_ path: [PathElement]) -> String {
    var text = ""
    for element in path {
        switch element {
        case .key(let key): text += text.isEmpty ? key : ".\(key)"
        case .index(let index): text += "[\(index)]"
        }
    }
    return text
}
