/// Encodes `Encodable` values into `JSONValue` trees without Foundation's JSONEncoder.
///
/// Canonical forms are computed for every document of every apply and diff, so this path is
/// hot: building the tree directly and writing it once is several times faster than
/// `JSONEncoder` with sorted keys.
struct CanonicalEncoder {
    static func encode(_ value: some Encodable) throws -> JSONValue {
        let root = Box()
        try value.encode(to: ValueEncoder(box: root))
        return root.resolved()
    }
}

/// A slot a container writes into; nested containers share their parent's storage through it.
private final class Box {
    var value: JSONValue?
    var object: [String: Box] = [:]
    var array: [Box] = []
    var kind: Kind = .single

    enum Kind {
        case single
        case object
        case array
    }

    func resolved() -> JSONValue {
        switch kind {
        case .single: return value ?? .null
        case .object: return .object(object.mapValues { $0.resolved() })
        case .array: return .array(array.map { $0.resolved() })
        }
    }
}

private struct ValueEncoder: Encoder {
    let box: Box
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        box.kind = .object
        return KeyedEncodingContainer(Keyed<Key>(box: box))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        box.kind = .array
        return Unkeyed(box: box)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { Single(box: box) }
}

private func encodeValue(_ value: some Encodable, into box: Box) throws {
    switch value {
    case let string as String: box.value = .string(string)
    case let int as Int: box.value = .int(int)
    case let bool as Bool: box.value = .bool(bool)
    case let double as Double: box.value = .double(double)
    case let json as JSONValue: box.value = json
    default:
        try value.encode(to: ValueEncoder(box: box))
        if box.kind != .single { box.value = box.resolved() }
    }
}

private struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let box: Box
    var codingPath: [any CodingKey] { [] }

    private func slot(_ key: Key) -> Box {
        let child = Box()
        box.object[key.stringValue] = child
        return child
    }

    mutating func encodeNil(forKey key: Key) { slot(key).value = .null }
    mutating func encode(_ value: Bool, forKey key: Key) { slot(key).value = .bool(value) }
    mutating func encode(_ value: String, forKey key: Key) { slot(key).value = .string(value) }
    mutating func encode(_ value: Double, forKey key: Key) { slot(key).value = .double(value) }
    mutating func encode(_ value: Int, forKey key: Key) { slot(key).value = .int(value) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { try encodeValue(value, into: slot(key)) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        ValueEncoder(box: slot(key)).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer { ValueEncoder(box: slot(key)).unkeyedContainer() }
    mutating func superEncoder() -> any Encoder { ValueEncoder(box: box) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { ValueEncoder(box: slot(key)) }
}

private struct Unkeyed: UnkeyedEncodingContainer {
    let box: Box
    var codingPath: [any CodingKey] { [] }
    var count: Int { box.array.count }

    private func slot() -> Box {
        let child = Box()
        box.array.append(child)
        return child
    }

    mutating func encodeNil() { slot().value = .null }
    mutating func encode(_ value: String) { slot().value = .string(value) }
    mutating func encode(_ value: Int) { slot().value = .int(value) }
    mutating func encode(_ value: Bool) { slot().value = .bool(value) }
    mutating func encode<T: Encodable>(_ value: T) throws { try encodeValue(value, into: slot()) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        ValueEncoder(box: slot()).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { ValueEncoder(box: slot()).unkeyedContainer() }
    mutating func superEncoder() -> any Encoder { ValueEncoder(box: slot()) }
}

private struct Single: SingleValueEncodingContainer {
    let box: Box
    var codingPath: [any CodingKey] { [] }

    mutating func encodeNil() { box.value = .null }
    mutating func encode(_ value: Bool) { box.value = .bool(value) }
    mutating func encode(_ value: String) { box.value = .string(value) }
    mutating func encode(_ value: Double) { box.value = .double(value) }
    mutating func encode(_ value: Int) { box.value = .int(value) }
    mutating func encode<T: Encodable>(_ value: T) throws { try encodeValue(value, into: box) }
}

extension JSONValue {
    /// Canonical JSON text: object keys sorted by their UTF-8 bytes, no spaces, minimal escapes.
    public var canonicalText: String {
        var out = ""
        out.reserveCapacity(256)
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let value): out += value ? "true" : "false"
        case .int(let value): out += String(value)
        case .double(let value): out += value.isFinite ? (value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)) : "null"
        case .string(let value): Self.writeString(value, to: &out)
        case .array(let values):
            out += "["
            for (index, value) in values.enumerated() {
                if index > 0 { out += "," }
                value.write(to: &out)
            }
            out += "]"
        case .object(let object):
            out += "{"
            for (index, key) in object.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
                if index > 0 { out += "," }
                Self.writeString(key, to: &out)
                out += ":"
                object[key]!.write(to: &out)
            }
            out += "}"
        }
    }

    private static func writeString(_ string: String, to out: inout String) {
        out += "\""
        var needsEscape = false
        for byte in string.utf8 where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
            needsEscape = true
            break
        }
        if !needsEscape {
            out += string
        } else {
            for scalar in string.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default:
                    if scalar.value < 0x20 {
                        let hex = String(scalar.value, radix: 16)
                        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
        }
        out += "\""
    }
}
