/// A small XML tree for EC2 responses: elements with text or children, escaped on output.
public indirect enum XMLNode: Sendable {
    case text(String, String)
    case element(String, [XMLNode])

    /// `<name>value</name>` for an optional value; nothing when nil.
    static func optional(_ name: String, _ value: String?) -> [XMLNode] { value.map { [.text(name, $0)] } ?? [] }

    /// `<name><item>…</item>…</name>`, EC2's list form.
    static func set(_ name: String, _ items: [[XMLNode]]) -> XMLNode { .element(name, items.map { .element("item", $0) }) }

    func render(into out: inout String) {
        switch self {
        case .text(let name, let value):
            out += "<\(name)>"
            Self.escape(value, into: &out)
            out += "</\(name)>"
        case .element(let name, let children):
            if children.isEmpty {
                out += "<\(name)/>"
                return
            }
            out += "<\(name)>"
            for child in children { child.render(into: &out) }
            out += "</\(name)>"
        }
    }

    static func escape(_ value: String, into out: inout String) {
        for character in value.unicodeScalars {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                // Characters XML 1.0 cannot carry at all are dropped rather than breaking the document.
                if character.value < 0x20 && character != "\n" && character != "\r" && character != "\t" { continue }
                out.unicodeScalars.append(character)
            }
        }
    }
}
