/// The `metadata` block of a resource.
///
/// `name`, `project`, `labels` and `annotations` are the user's; everything else is written by
/// Stratus and ignored when a manifest carries it (so `get -o yaml` output can be applied again).
public struct ObjectMeta: Sendable, Equatable, Codable {
    public var name: String
    public var project: String?
    public var labels: [String: String]
    public var annotations: [String: String]
    /// The EC2-style id (`i-0a1b2c3d`), assigned once at creation for kinds EC2 names by id.
    public var id: String?
    public var generation: Int?
    public var applySet: String?
    public var manager: String?
    public var creationTimestamp: String?
    public var deletionTimestamp: String?

    public init(
        name: String,
        project: String? = nil,
        labels: [String: String] = [:],
        annotations: [String: String] = [:],
        id: String? = nil,
        generation: Int? = nil,
        applySet: String? = nil,
        manager: String? = nil,
        creationTimestamp: String? = nil,
        deletionTimestamp: String? = nil
    ) {
        self.name = name
        self.project = project
        self.labels = labels
        self.annotations = annotations
        self.id = id
        self.generation = generation
        self.applySet = applySet
        self.manager = manager
        self.creationTimestamp = creationTimestamp
        self.deletionTimestamp = deletionTimestamp
    }

    /// The annotation that blocks deletion and pruning while it is `"true"`.
    public static let protectAnnotation = "stratus/protect"

    /// Whether `stratus/protect: "true"` is set.
    public var isProtected: Bool { annotations[Self.protectAnnotation]?.lowercased() == "true" }
}

/// The part of `metadata` a manifest may set; the read-only rest is accepted and ignored.
struct ManifestMetadata {
    var name: String
    var project: String?
    var labels: [String: String]?
    var annotations: [String: String]?
}
