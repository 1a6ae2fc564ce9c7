import Foundation
import Yams

/// A problem found while decoding one document, before it knows its file.
struct DecodeIssue: Error {
    var path: [PathElement]
    var message: String
    var hint: String?
    var mark: Mark?
}

/// State shared by every decoder of one document: the keyed containers, for the unknown-field check.
final class DecodeSession {
    fileprivate var mappings: [MappingState] = []

    /// Unknown keys in every mapping that a type decoded, with the closest known key as a hint.
    func unknownFieldIssues() -> [DecodeIssue] {
        var issues: [DecodeIssue] = []
        for mapping in mappings where !mapping.acceptsAnyKey {
            for entry in mapping.entries where !mapping.asked.contains(entry.key) {
                let known = mapping.asked.subtracting(mapping.entries.map(\.key))
                let candidates = known.isEmpty ? mapping.asked : known
                issues.append(DecodeIssue(
                    path: mapping.path + [.key(entry.key)],
                    message: "unknown field \"\(entry.key)\"",
                    hint: Suggestion.hint(for: entry.key, in: candidates.sorted())
                        ?? "known fields: \(mapping.asked.sorted().joined(separator: ", "))",
                    mark: entry.keyNode.mark
                ))
            }
        }
        return issues
    }
}

/// One YAML mapping being decoded: its entries and which keys the type asked for.
private final class MappingState {
    struct Entry {
        var key: String
        var keyNode: Node
        var value: Node
    }

    let path: [PathElement]
    let entries: [Entry]
    let index: [String: Int]
    var asked: Set<String> = []
    var acceptsAnyKey = false

    init(path: [PathElement], mapping: Node.Mapping) throws {
        self.path = path
        var entries: [Entry] = []
        var index: [String: Int] = [:]
        entries.reserveCapacity(mapping.count)
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode else {
                throw DecodeIssue(path: path, message: "mapping keys must be plain strings", mark: keyNode.mark)
            }
            if index[scalar.string] != nil {
                throw DecodeIssue(path: path + [.key(scalar.string)], message: "duplicate key \"\(scalar.string)\"", mark: keyNode.mark)
            }
            index[scalar.string] = entries.count
            entries.append(Entry(key: scalar.string, keyNode: keyNode, value: value))
        }
        self.entries = entries
        self.index = index
    }
}

/// Decodes `Decodable` types from a Yams node tree, with exact positions and field paths in every error.
///
/// Scalars are read strictly (YAML 1.2 core schema): `"512"` is a string, not a number; only
/// `true`/`false` are booleans. Every key a type does not ask for is reported as unknown.
struct NodeDecoder: Decoder {
    let node: Node
    let path: [PathElement]
    let session: DecodeSession

    var codingPath: [any CodingKey] {
        path.map { element in
            switch element {
            case .key(let key): PathKey(stringValue: key)
            case .index(let index): PathKey(intValue: index)
            }
        }
    }

    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .mapping(let mapping) = node else { throw mismatch("a mapping") }
        let state = try MappingState(path: path, mapping: mapping)
        session.mappings.append(state)
        return KeyedDecodingContainer(KeyedContainer<Key>(state: state, mark: node.mark, session: session))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .sequence(let sequence) = node else { throw mismatch("a list") }
        return UnkeyedContainer(elements: Array(sequence), path: path, session: session)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

    func mismatch(_ expected: String) -> DecodeIssue {
        DecodeIssue(path: path, message: "expected \(expected), got \(node.describedKind)", hint: nil, mark: node.mark)
    }

    /// Decodes a value of any type at this node.
    func decodeValue<T: Decodable>(_ type: T.Type) throws -> T {
        if let enumType = T.self as? any AnyManifestEnum.Type {
            return try decodeEnum(enumType) as! T
        }
        switch type {
        case is String.Type: return try decodeString() as! T
        case is Int.Type: return try decodeInteger() as! T
        case is Bool.Type: return try decodeBool() as! T
        case is Double.Type: return try decodeDouble() as! T
        default: return try T(from: self)
        }
    }

    private func decodeEnum<E: AnyManifestEnum>(_ type: E.Type) throws -> E {
        let text = try decodeString()
        if let value = E.fromRaw(text) { return value }
        throw DecodeIssue(
            path: path,
            message: "expected one of \(E.allowedValues.joined(separator: ", ")), got \"\(text)\"",
            hint: Suggestion.hint(for: text, in: E.allowedValues),
            mark: node.mark
        )
    }

    func decodeString() throws -> String {
        guard case .scalar(let scalar) = node, !node.isNull else { throw mismatch("a string") }
        return scalar.string
    }

    func decodeInteger() throws -> Int {
        guard case .scalar(let scalar) = node, !node.isNull else { throw mismatch("an integer") }
        if scalar.style == .plain, let value = Int(scalar.string.replacingOccurrences(of: "_", with: "")) { return value }
        if scalar.style != .plain, Int(scalar.string) != nil {
            throw DecodeIssue(path: path, message: "expected an integer, got the string \"\(scalar.string)\"", hint: "remove the quotes", mark: node.mark)
        }
        throw DecodeIssue(path: path, message: "expected an integer, got \"\(scalar.string)\"", mark: node.mark)
    }

    func decodeDouble() throws -> Double {
        guard case .scalar(let scalar) = node, scalar.style == .plain, let value = Double(scalar.string) else {
            throw mismatch("a number")
        }
        return value
    }

    func decodeBool() throws -> Bool {
        guard case .scalar(let scalar) = node, !node.isNull else { throw mismatch("true or false") }
        if scalar.style == .plain {
            switch scalar.string {
            case "true", "True", "TRUE": return true
            case "false", "False", "FALSE": return false
            default: break
            }
        }
        let loose = ["yes": "true", "no": "false", "on": "true", "off": "false", "y": "true", "n": "false"]
        let hint = loose[scalar.string.lowercased()].map { "write \($0)" } ?? (scalar.style == .plain ? nil : "remove the quotes")
        throw DecodeIssue(path: path, message: "expected true or false, got \"\(scalar.string)\"", hint: hint, mark: node.mark)
    }
}

extension NodeDecoder: SingleValueDecodingContainer {
    func decodeNil() -> Bool { node.isNull }
    func decode(_ type: Bool.Type) throws -> Bool { try decodeBool() }
    func decode(_ type: String.Type) throws -> String { try decodeString() }
    func decode(_ type: Double.Type) throws -> Double { try decodeDouble() }
    func decode(_ type: Float.Type) throws -> Float { Float(try decodeDouble()) }
    func decode(_ type: Int.Type) throws -> Int { try decodeInteger() }
    func decode(_ type: Int8.Type) throws -> Int8 { try narrow(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try narrow(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try narrow(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try narrow(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try narrow(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try narrow(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try narrow(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try narrow(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try narrow(type) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decodeValue(type) }

    private func narrow<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        let value = try decodeInteger()
        guard let narrowed = T(exactly: value) else {
            throw DecodeIssue(path: path, message: "\(value) is out of range (\(T.min)…\(T.max))", mark: node.mark)
        }
        return narrowed
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let state: MappingState
    let mark: Mark?
    let session: DecodeSession

    var codingPath: [any CodingKey] { NodeDecoder(node: .init(""), path: state.path, session: session).codingPath }

    var allKeys: [Key] {
        state.acceptsAnyKey = true
        return state.entries.compactMap { Key(stringValue: $0.key) }
    }

    func contains(_ key: Key) -> Bool {
        state.asked.insert(key.stringValue)
        return state.index[key.stringValue] != nil
    }

    private func child(_ key: Key) throws -> NodeDecoder {
        state.asked.insert(key.stringValue)
        guard let index = state.index[key.stringValue] else {
            let misspelt = state.entries.first { Suggestion.closest(to: $0.key, in: [key.stringValue]) != nil }
            if let misspelt {
                throw DecodeIssue(
                    path: state.path + [.key(misspelt.key)],
                    message: "unknown field \"\(misspelt.key)\" (and required field \"\(key.stringValue)\" is missing)",
                    hint: "did you mean \"\(key.stringValue)\"?",
                    mark: misspelt.keyNode.mark
                )
            }
            throw DecodeIssue(path: state.path, message: "missing required field \"\(key.stringValue)\"", mark: mark)
        }
        return NodeDecoder(node: state.entries[index].value, path: state.path + [.key(key.stringValue)], session: session)
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        state.asked.insert(key.stringValue)
        guard let index = state.index[key.stringValue] else { return true }
        return state.entries[index].value.isNull
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try child(key).decodeValue(type) }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try child(key).decodeBool() }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try child(key).decodeString() }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try child(key).decodeInteger() }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try child(key).decodeDouble() }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try child(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { try child(key).unkeyedContainer() }
    func superDecoder() throws -> any Decoder { throw DecodeIssue(path: state.path, message: "unsupported", mark: mark) }
    func superDecoder(forKey key: Key) throws -> any Decoder { try child(key) }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let elements: [Node]
    let path: [PathElement]
    let session: DecodeSession
    var currentIndex = 0

    init(elements: [Node], path: [PathElement], session: DecodeSession) {
        self.elements = elements
        self.path = path
        self.session = session
    }

    var codingPath: [any CodingKey] { NodeDecoder(node: .init(""), path: path, session: session).codingPath }
    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    private mutating func next() throws -> NodeDecoder {
        guard !isAtEnd else { throw DecodeIssue(path: path, message: "not enough elements", mark: nil) }
        defer { currentIndex += 1 }
        return NodeDecoder(node: elements[currentIndex], path: path + [.index(currentIndex)], session: session)
    }

    mutating func decodeNil() throws -> Bool {
        if !isAtEnd && elements[currentIndex].isNull {
            currentIndex += 1
            return true
        }
        return false
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next().decodeValue(type) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try next().unkeyedContainer() }
    mutating func superDecoder() throws -> any Decoder { try next() }
}

private struct PathKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init(intValue: Int) {
        self.stringValue = "[\(intValue)]"
        self.intValue = intValue
    }
}

extension Node {
    /// Whether this is a YAML null (`~`, `null`, or nothing at all).
    var isNull: Bool {
        guard case .scalar(let scalar) = self, scalar.style == .plain else { return false }
        switch scalar.string {
        case "", "~", "null", "Null", "NULL": return true
        default: return false
        }
    }

    /// `a mapping`, `a list`, `null`, `the string "x"`, `"42"` — for error messages.
    var describedKind: String {
        switch self {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            if isNull { return "null" }
            return scalar.style == .plain ? "\"\(scalar.string)\"" : "the string \"\(scalar.string)\""
        }
    }

    /// The position of the deepest node along a path (a missing tail resolves to its parent).
    func locate(_ path: some Collection<PathElement>) -> Mark? {
        guard let first = path.first else { return mark }
        switch (self, first) {
        case (.mapping(let mapping), .key(let key)):
            for (keyNode, value) in mapping where keyNode.scalar?.string == key {
                return value.locate(path.dropFirst()) ?? keyNode.mark
            }
        case (.sequence(let sequence), .index(let index)) where index < sequence.count:
            return Array(sequence)[index].locate(path.dropFirst())
        default:
            break
        }
        return mark
    }
}
