/// A JSON Schema (draft-07, what yaml-language-server reads) of every kind's manifest, derived
/// from the spec types themselves, so it cannot fall behind them: each type is decoded once by
/// a probing decoder that records the fields it asks for (required or optional), their types,
/// and the values a `ManifestEnum` allows. Unknown fields are refused (`additionalProperties:
/// false`), as the loader refuses them.
public enum ManifestSchema {
    /// The whole schema: the envelope, with each kind's spec chosen by `kind`.
    public static func document() -> JSONValue {
        let name: JSONValue = .object(["type": .string("string"), "minLength": .int(1), "maxLength": .int(253)])
        let strings: JSONValue = .object(["type": .string("object"), "additionalProperties": .object(["type": .string("string")])])
        var metadata: [String: JSONValue] = [:]
        for key in ["id", "applySet", "manager", "creationTimestamp", "deletionTimestamp"] { metadata[key] = .object(["type": .string("string")]) }
        metadata["generation"] = .object(["type": .string("integer")])
        metadata["name"] = name
        metadata["project"] = name
        metadata["labels"] = strings
        metadata["annotations"] = strings
        var cases: [JSONValue] = []
        for kind in Kind.allCases {
            var spec = schema(of: ResourceSpec.bodyType(for: kind))
            if case .object(var fields) = spec { fields["description"] = .string("The spec of a \(kind.rawValue).") ; spec = .object(fields) }
            cases.append(.object([
                "if": .object(["properties": .object(["kind": .object(["const": .string(kind.rawValue)])]), "required": .array([.string("kind")])]),
                "then": .object(["properties": .object(["spec": spec])]),
            ]))
        }
        return .object([
            "$schema": .string("http://json-schema.org/draft-07/schema#"),
            "$id": .string("https://stratus.invalid/schema/stratus-v1.json"),
            "title": .string("Stratus manifest (\(Resource.apiVersion))"),
            "type": .string("object"),
            "required": .array(["apiVersion", "kind", "metadata", "spec"].map { .string($0) }),
            "additionalProperties": .bool(false),
            "properties": .object([
                "apiVersion": .object(["const": .string(Resource.apiVersion)]),
                "kind": .object(["enum": .array(Kind.allCases.map { .string($0.rawValue) })]),
                "metadata": .object([
                    "type": .string("object"), "required": .array([.string("name")]), "additionalProperties": .bool(false), "properties": .object(metadata),
                ]),
                "spec": .object(["type": .string("object")]),
                "status": .object(["type": .string("object")]),
            ]),
            "allOf": .array(cases),
        ])
    }

    /// The schema of one Decodable type.
    public static func schema<T: Decodable>(of type: T.Type) -> JSONValue { SchemaProbe.probe(type, depth: 0).schema }
}

/// Dictionaries with string keys: their value type, which a probe of an empty map never asks for.
protocol SchemaStringMap { static var valueType: any Decodable.Type { get } }
extension Dictionary: SchemaStringMap where Key == String, Value: Decodable { static var valueType: any Decodable.Type { Value.self } }

/// A `Decoder` that answers every question with a placeholder and writes down the question.
final class SchemaProbe: Decoder {
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] = [:]
    let depth: Int
    /// What this node turned out to be.
    var schema: [String: JSONValue] = [:]
    var properties: [String: JSONValue] = [:]
    var required: [String] = []
    var optional: Set<String> = []

    init(depth: Int) { self.depth = depth }

    static func probe<T: Decodable>(_ type: T.Type, depth: Int) -> (schema: JSONValue, value: T?) {
        func simple(_ name: String, _ value: Any) -> (JSONValue, T?) { (.object(["type": .string(name)]), value as? T) }
        if let manifestEnum = T.self as? any AnyManifestEnum.Type {
            let values = manifestEnum.allowedValues
            return (.object(["type": .string("string"), "enum": .array(values.map { .string($0) })]), values.first.flatMap { manifestEnum.fromRaw($0) } as? T)
        }
        switch type {
        case is String.Type: return simple("string", "")
        case is Bool.Type: return simple("boolean", false)
        case is Int.Type: return simple("integer", 0)
        case is Int64.Type: return simple("integer", Int64(0))
        case is Int32.Type: return simple("integer", Int32(0))
        case is UInt16.Type: return simple("integer", UInt16(0))
        case is UInt32.Type: return simple("integer", UInt32(0))
        case is UInt64.Type: return simple("integer", UInt64(0))
        case is Double.Type: return simple("number", 0.0)
        case is JSONValue.Type: return (.object([:]), JSONValue.null as? T)
        default: break
        }
        if let map = T.self as? any SchemaStringMap.Type {
            return (.object(["type": .string("object"), "additionalProperties": probe(map.valueType, depth: depth + 1)]), [String: Int]() as? T ?? (try? T(from: SchemaProbe(depth: depth + 1))))
        }
        guard depth < 24 else { return (.object([:]), nil) }
        let probe = SchemaProbe(depth: depth + 1)
        let value = try? T(from: probe)
        return (probe.finished(), value)
    }

    private static func probe(_ type: any Decodable.Type, depth: Int) -> JSONValue {
        func open<T: Decodable>(_ type: T.Type) -> JSONValue { probe(type, depth: depth).schema }
        return open(type)
    }

    func finished() -> JSONValue {
        var result = schema
        if result["type"] == .string("object") {
            result["properties"] = .object(properties)
            result["additionalProperties"] = .bool(false)
            if !required.isEmpty { result["required"] = .array(required.sorted().map { .string($0) }) }
        }
        return .object(result)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        schema["type"] = .string("object")
        return KeyedDecodingContainer(Keyed<Key>(probe: self))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        schema["type"] = .string("array")
        return Unkeyed(probe: self)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(probe: self) }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let probe: SchemaProbe
        var codingPath: [any CodingKey] { [] }
        var allKeys: [Key] { [] }
        func contains(_ key: Key) -> Bool { true }
        /// Only `decodeIfPresent`'s default implementations (String, Int, …) ask this before
        /// `decode`: a key asked about here is optional.
        func decodeNil(forKey key: Key) throws -> Bool {
            probe.optional.insert(key.stringValue)
            return false
        }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            let (schema, value) = SchemaProbe.probe(type, depth: probe.depth)
            probe.properties[key.stringValue] = schema
            if !probe.optional.contains(key.stringValue) && !probe.required.contains(key.stringValue) { probe.required.append(key.stringValue) }
            guard let value else { throw DecodingError.dataCorrupted(.init(codingPath: [key], debugDescription: "schema probe")) }
            return value
        }

        func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
            probe.properties[key.stringValue] = SchemaProbe.probe(type, depth: probe.depth).schema
            return nil
        }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            let nested = SchemaProbe(depth: probe.depth + 1)
            defer { probe.properties[key.stringValue] = nested.finished() }
            return try nested.container(keyedBy: type)
        }

        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            let nested = SchemaProbe(depth: probe.depth + 1)
            defer { probe.properties[key.stringValue] = nested.finished() }
            return try nested.unkeyedContainer()
        }

        func superDecoder() throws -> any Decoder { probe }
        func superDecoder(forKey key: Key) throws -> any Decoder { probe }
    }

    struct Unkeyed: UnkeyedDecodingContainer {
        let probe: SchemaProbe
        var codingPath: [any CodingKey] { [] }
        var count: Int? { nil }
        var currentIndex = 0
        var isAtEnd: Bool { currentIndex > 0 }

        mutating func decodeNil() throws -> Bool { false }

        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            let (schema, value) = SchemaProbe.probe(type, depth: probe.depth)
            probe.schema["items"] = schema
            currentIndex += 1
            guard let value else { throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "schema probe")) }
            return value
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            currentIndex += 1
            return try SchemaProbe(depth: probe.depth + 1).container(keyedBy: type)
        }

        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            currentIndex += 1
            return try SchemaProbe(depth: probe.depth + 1).unkeyedContainer()
        }

        mutating func superDecoder() throws -> any Decoder { probe }
    }

    struct Single: SingleValueDecodingContainer {
        let probe: SchemaProbe
        var codingPath: [any CodingKey] { [] }
        func decodeNil() -> Bool { false }

        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            let (schema, value) = SchemaProbe.probe(type, depth: probe.depth)
            if case .object(let fields) = schema { probe.schema.merge(fields) { $1 } }
            guard let value else { throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "schema probe")) }
            return value
        }
    }
}
