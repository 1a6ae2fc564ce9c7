/// What every kind's spec provides: defaults, self-checks and the references it makes.
public protocol SpecBody: Codable, Sendable, Equatable {
    /// The kind this spec belongs to.
    static var kind: Kind { get }
    /// Fills in every defaulted field, so stored specs carry their defaults and never show drift.
    mutating func applyDefaults()
    /// Checks values that types alone cannot (ranges, formats, combinations).
    func validate(_ validator: inout Validator)
    /// The other resources this spec names; `project` is the resource's own project.
    func references(project: String?) -> [Reference]
}

extension SpecBody {
    public mutating func applyDefaults() {}
    public func validate(_ validator: inout Validator) {}
    public func references(project: String?) -> [Reference] { [] }
}

/// A name in a spec that must resolve to another resource.
public struct Reference: Sendable, Equatable {
    public var target: ResourceKey
    /// Where the name was written, relative to the document.
    public var path: [PathElement]
    /// For images: a public image of another project may be named as `project/name`.
    public var allowsPublicImage: Bool

    public init(kind: Kind, project: String?, name: String, path: [PathElement], allowsPublicImage: Bool = false) {
        self.target = ResourceKey(kind: kind, project: project, name: name)
        self.path = [.key("spec")] + path
        self.allowsPublicImage = allowsPublicImage
    }

    /// A reference restored from the manifest cache, its path kept in rendered form.
    init(target: ResourceKey, renderedPath: String, allowsPublicImage: Bool) {
        self.target = target
        self.path = [.key(renderedPath)]
        self.allowsPublicImage = allowsPublicImage
    }
}

/// A string enum in a manifest: the decoder lists the allowed values and suggests the closest.
public protocol ManifestEnum: RawRepresentable, CaseIterable, Codable, Sendable, Hashable where RawValue == String {}

extension ManifestEnum {
    /// The spellings a manifest may use.
    public static var allowedValues: [String] { allCases.map(\.rawValue) }
}

/// Type-erased access to a `ManifestEnum`, for the decoder.
protocol AnyManifestEnum {
    static var allowedValues: [String] { get }
    static func fromRaw(_ raw: String) -> Self?
}

extension AnyManifestEnum where Self: ManifestEnum {
    static func fromRaw(_ raw: String) -> Self? { Self(rawValue: raw) }
}
