import Foundation
import StratusModel

extension PlannedChange: Codable {
    private enum CodingKeys: String, CodingKey {
        case action, key, id, fields, notes, oldSpec, newSpec, specChanged, previousManager
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let key = try container.decode(ResourceKey.self, forKey: .key)
        func spec(_ codingKey: CodingKeys) throws -> ResourceSpec? {
            guard let json = try container.decodeIfPresent(JSONValue.self, forKey: codingKey) else { return nil }
            return try ResourceSpec.fromJSON(CanonicalJSON.encode(json), kind: key.kind)
        }
        self.init(
            action: try container.decode(ChangeAction.self, forKey: .action),
            key: key,
            id: try container.decodeIfPresent(String.self, forKey: .id),
            fields: try container.decode([FieldChange].self, forKey: .fields),
            notes: try container.decode([String].self, forKey: .notes),
            oldSpec: try spec(.oldSpec),
            newSpec: try spec(.newSpec),
            specChanged: try container.decode(Bool.self, forKey: .specChanged),
            previousManager: try container.decodeIfPresent(String.self, forKey: .previousManager)
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(action, forKey: .action)
        try container.encode(key, forKey: .key)
        try container.encodeIfPresent(id, forKey: .id)
        try container.encode(fields, forKey: .fields)
        try container.encode(notes, forKey: .notes)
        try container.encodeIfPresent(try oldSpec.map { try JSONValue(encoding: $0.body) }, forKey: .oldSpec)
        try container.encodeIfPresent(try newSpec.map { try JSONValue(encoding: $0.body) }, forKey: .newSpec)
        try container.encode(specChanged, forKey: .specChanged)
        try container.encodeIfPresent(previousManager, forKey: .previousManager)
    }
}



extension StoredResource {
    /// A resource as received from a server: the envelope carries everything `get` shows.
    public init(resource: Resource) {
        self.resource = resource
        self.specHash = ""
    }
}

extension StoreError {
    /// The code's name, so a server can send the error and a client raise the same one.
    public var codeName: String {
        if isNotFound { return "notFound" }
        if isProtected { return "protected" }
        if isMassDelete { return "massDelete" }
        return "conflict"
    }

    /// Rebuilds an error a server sent.
    public static func remote(codeName: String, message: String) -> StoreError {
        switch codeName {
        case "notFound": return StoreError(code: .notFound, message: message)
        case "protected": return StoreError(code: .protected, message: message)
        case "massDelete": return StoreError(code: .massDelete, message: message)
        default: return StoreError(code: .conflict, message: message)
        }
    }
}
