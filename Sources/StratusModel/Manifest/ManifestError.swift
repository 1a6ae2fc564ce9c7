/// A position in a manifest file.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible, Codable {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// A problem with a manifest, pinned to file:line:column and a field path, with a hint where one helps.
public struct ManifestError: Error, Sendable, Equatable, CustomStringConvertible, Codable {
    public var location: SourceLocation?
    /// `Instance acme/web-1`, when the document got far enough to tell.
    public var resource: String?
    /// `spec.securityGroups[1]`, when the problem is in one field.
    public var path: String?
    public var message: String
    public var hint: String?
    /// The EC2 error code an API answers with, where the problem has its own (`InstanceLimitExceeded`).
    public var code: String?

    public init(location: SourceLocation?, resource: String? = nil, path: String? = nil, message: String, hint: String? = nil, code: String? = nil) {
        self.location = location
        self.resource = resource
        self.path = path
        self.message = message
        self.hint = hint
        self.code = code
    }

    /// `examples/web.yaml:12:5: Instance acme/web-1: spec.instanceTyp: unknown field "instanceTyp"; did you mean "instanceType"?`
    public var description: String {
        var text = location.map { "\($0): " } ?? ""
        if let resource { text += "\(resource): " }
        if let path, !path.isEmpty { text += "\(path): " }
        text += message
        if let hint { text += "; \(hint)" }
        return text
    }
}

/// Every problem found in a set of manifests; nothing is applied while there is one.
public struct ManifestErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [ManifestError]

    public init(_ errors: [ManifestError]) { self.errors = errors }

    public var description: String {
        let lines = errors.prefix(50).map(\.description)
        let more = errors.count > 50 ? ["… and \(errors.count - 50) more"] : []
        return (lines + more).joined(separator: "\n")
    }
}
