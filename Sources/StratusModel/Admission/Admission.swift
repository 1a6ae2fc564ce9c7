/// The rules every resource passes before the store sees it, whoever writes it.
///
/// Admission is one pipeline with two halves:
///
/// 1. **Stateless, here** — for a manifest (`ManifestLoader`, after it decoded the document with
///    positions) and for a resource made in code (the EC2 API, node registration) alike:
///    name rules → scope (cluster kinds have no project; project kinds need one) → the spec's
///    validation → defaults. Problems come back as `ManifestError`s with the field's position.
/// 2. **Stateful, in `Store.apply`/`Store.plan`** — inside one SQLite transaction: references →
///    access keys → the plan (create / update / unchanged / prune) → authorization of each change
///    for the principal (`ApplyOptions.authorize`) → quotas from each project's `spec.quotas` →
///    the commit. Any failure rolls the whole set back.
public enum Admission {
    /// A problem found by a stateless rule: where (a field path from the document's root) and what.
    public struct Problem: Sendable, Equatable {
        public var path: [PathElement]
        public var message: String
        public var hint: String?
        /// The EC2 error code, where AWS has one (`TagLimitExceeded`).
        public var code: String?
    }

    /// AWS's tag limits, which labels (the EC2 API's tags) keep: at most 50 per resource, keys of 1
    /// to 128 and values of at most 256 characters, no `aws:` prefix, no control characters.
    public static func labels(_ labels: [String: String]) -> [Problem] {
        var problems: [Problem] = []
        if labels.count > 50 {
            problems.append(Problem(path: [.key("metadata"), .key("labels")], message: "a resource holds at most 50 labels (tags), got \(labels.count)", code: "TagLimitExceeded"))
        }
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
            let path: [PathElement] = [.key("metadata"), .key("labels"), .key(key)]
            func bad(_ text: String) -> Bool { text.unicodeScalars.contains { $0.properties.generalCategory == .control } }
            if key.isEmpty || key.count > 128 {
                problems.append(Problem(path: path, message: "a label key has 1 to 128 characters, got \(key.count)", code: "InvalidParameterValue"))
            } else if key.lowercased().hasPrefix("aws:") {
                problems.append(Problem(path: path, message: "label keys starting with \"aws:\" are reserved", code: "InvalidParameterValue"))
            } else if bad(key) {
                problems.append(Problem(path: [.key("metadata"), .key("labels")], message: "a label key holds a control character", code: "InvalidParameterValue"))
            }
            if value.count > 256 {
                problems.append(Problem(path: path, message: "a label value has at most 256 characters, got \(value.count)", code: "InvalidParameterValue"))
            } else if bad(value) {
                problems.append(Problem(path: path, message: "a label value holds a control character", code: "InvalidParameterValue"))
            }
        }
        return problems
    }

    /// The annotations Stratus reads: `ec2.stratus/name` on a kind EC2 names by name must be a
    /// valid EC2 name, and is refused on other kinds (where the EC2 API would never show it).
    public static func annotations(kind: Kind, _ annotations: [String: String]) -> [Problem] {
        guard let name = annotations[EC2Name.annotation] else { return [] }
        let path: [PathElement] = [.key("metadata"), .key("annotations"), .key(EC2Name.annotation)]
        guard EC2Name.kinds.contains(kind) else {
            return [Problem(path: path, message: "only key pairs and security groups have EC2 names; EC2 names \(kind.rawValue) by id", hint: "remove the annotation", code: "InvalidParameterValue")]
        }
        return EC2Name.problem(with: name).map { [Problem(path: path, message: $0, code: "InvalidParameterValue")] } ?? []
    }

    /// Name and scope rules for a resource's identity; returns the project it lives in (the given
    /// one, or `defaultProject` for a project-scoped kind that names none) and the problems.
    public static func identity(kind: Kind, name: String, project: String?, defaultProject: String?) -> (project: String?, problems: [Problem]) {
        var problems: [Problem] = []
        if let problem = NameRules.problem(with: name, dotted: kind == .instanceType || kind == .node) {
            problems.append(Problem(path: [.key("metadata"), .key("name")], message: problem))
        }
        var project = project
        switch kind.scope {
        case .cluster:
            if let given = project {
                problems.append(Problem(path: [.key("metadata"), .key("project")], message: "\(kind.rawValue) is cluster-scoped and belongs to no project, got \"\(given)\"", hint: "remove metadata.project"))
                project = nil
            }
        case .project:
            project = project ?? defaultProject
            if let project {
                if let problem = NameRules.problem(with: project, dotted: false) {
                    problems.append(Problem(path: [.key("metadata"), .key("project")], message: problem))
                }
            } else {
                problems.append(Problem(path: [.key("metadata"), .key("project")], message: "missing required field \"project\" (\(kind.rawValue) is project-scoped)", hint: "add metadata.project or pass --project"))
            }
        }
        return (project, problems)
    }

    /// The spec's own checks (ranges, CIDRs, names it refers to); paths start at `spec`.
    public static func validate(_ body: any SpecBody) -> [FieldIssue] {
        var validator = Validator()
        body.validate(&validator)
        return validator.issues
    }

    /// Fills in the defaults, which are then stored (so they never show as drift).
    public static func applyDefaults(_ body: inout any SpecBody) {
        body.applyDefaults()
    }

    /// Admits a resource made in code: every stateless rule, then defaults, as a document of
    /// `origin` (no positions). Throws `ManifestErrors` naming each problem's field.
    public static func document(for resource: Resource, origin: String = "<api>") throws -> ManifestDocument {
        let location = SourceLocation(file: origin, line: 1, column: 1)
        let label = resource.key.description
        let (project, problems) = identity(kind: resource.kind, name: resource.metadata.name, project: resource.metadata.project, defaultProject: nil)
        var errors = (problems + labels(resource.metadata.labels) + annotations(kind: resource.kind, resource.metadata.annotations)).map {
            ManifestError(location: location, resource: label, path: renderPath($0.path), message: $0.message, hint: $0.hint, code: $0.code)
        }
        errors += validate(resource.spec.body).map { ManifestError(location: location, resource: label, path: renderPath($0.path), message: $0.message, hint: $0.hint, code: $0.code) }
        guard errors.isEmpty else { throw ManifestErrors(errors) }
        var admitted = resource
        admitted.metadata.project = project
        var body = resource.spec.body
        applyDefaults(&body)
        admitted.spec = ResourceSpec(body)
        return try ManifestDocument(resource: admitted, location: location, root: nil)
    }
}
