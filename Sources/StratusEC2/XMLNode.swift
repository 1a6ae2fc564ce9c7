/// A small XML tree for EC2 responses: elements with text or children, escaped on output.
public indirect enum XMLNode: Sendable {
    case text(String, String)
    case element(String, [XMLNode])
    /// XML rendered before (a terminated instance's item), inserted as it is.
    case raw(String)

    /// `<name>value</name>` for an optional value; nothing when nil.
    static func optional(_ name: String, _ value: String?) -> [XMLNode] { value.map { [.text(name, $0)] } ?? [] }

    /// `<name><item>…</item>…</name>`, EC2's list form.
    static func set(_ name: String, _ items: [[XMLNode]]) -> XMLNode { .element(name, items.map { .element("item", $0) }) }

    func render(into out: inout String) {
        // Appends without interpolation: a DescribeInstances of thousands renders millions of tags.
        switch self {
        case .text(let name, let value):
            out.append("<")
            out.append(name)
            out.append(">")
            Self.escape(value, into: &out)
            out.append("</")
            out.append(name)
            out.append(">")
        case .element(let name, let children):
            out.append("<")
            out.append(name)
            if children.isEmpty {
                out.append("/>")
                return
            }
            out.append(">")
            for child in children { child.render(into: &out) }
            out.append("</")
            out.append(name)
            out.append(">")
        case .raw(let xml):
            out.append(xml)
        }
    }

    static func escape(_ value: String, into out: inout String) {
        // Most values (ids, states, dates) need no escaping: one pass over the bytes tells.
        if !value.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "&") || $0 == UInt8(ascii: "<") || $0 == UInt8(ascii: ">") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "'") }) {
            out.append(value)
            return
        }
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
