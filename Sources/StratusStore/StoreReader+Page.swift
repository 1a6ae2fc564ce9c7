import GRDB
import StratusModel

/// What a list screen asks for: resources of one kind, narrowed by project, phase and label.
public struct ResourceFilter: Sendable, Equatable {
    public var kind: Kind
    /// The projects to list from; nil lists every project (cluster-scoped kinds ignore it).
    public var projects: [String]?
    /// A status phase (`Running`), or `Terminating` for those being deleted.
    public var phase: String?
    /// A label key, with the value it must have (nil: any value).
    public var label: (key: String, value: String?)?

    public init(kind: Kind, projects: [String]? = nil, phase: String? = nil, label: (key: String, value: String?)? = nil) {
        self.kind = kind
        self.projects = projects
        self.phase = phase
        self.label = label
    }

    public static func == (a: ResourceFilter, b: ResourceFilter) -> Bool {
        a.kind == b.kind && a.projects == b.projects && a.phase == b.phase && a.label?.key == b.label?.key && a.label?.value == b.label?.value
    }
}

/// One page of a list, and how many match in all.
public struct ResourcePage: Sendable {
    public var items: [StoredResource]
    public var total: Int
    public var offset: Int
}

extension StoreReader {
    /// The resources matching `filter` from `offset` on, at most `limit` of them, in project and
    /// name order: SQLite filters, counts and pages, so only one page is decoded.
    public func page(_ filter: ResourceFilter, offset: Int, limit: Int) throws -> ResourcePage {
        var clauses = ["kind = ?"]
        var arguments: StatementArguments = [filter.kind.rawValue]
        if let projects = filter.projects, filter.kind.scope == .project {
            guard !projects.isEmpty else { return ResourcePage(items: [], total: 0, offset: offset) }
            clauses.append("project IN (\(projects.map { _ in "?" }.joined(separator: ", ")))")
            arguments += StatementArguments(projects)
        }
        if let phase = filter.phase {
            if phase == "Terminating" {
                clauses.append("deletionTimestamp IS NOT NULL")
            } else {
                clauses.append("statusPhase = ? AND deletionTimestamp IS NULL")
                arguments += [phase]
            }
        }
        if let label = filter.label {
            if let value = label.value {
                clauses.append("EXISTS (SELECT 1 FROM json_each(labels) WHERE key = ? AND value = ?)")
                arguments += [label.key, value]
            } else {
                clauses.append("EXISTS (SELECT 1 FROM json_each(labels) WHERE key = ?)")
                arguments += [label.key]
            }
        }
        let condition = clauses.joined(separator: " AND ")
        let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM resource WHERE \(condition)", arguments: arguments) ?? 0
        let rows = try Row.fetchAll(db, sql: "SELECT \(StoredResource.columns) FROM resource WHERE \(condition) ORDER BY project, name LIMIT ? OFFSET ?",
                                    arguments: arguments + [limit, offset])
        return ResourcePage(items: try rows.map(StoredResource.init(row:)), total: total, offset: offset)
    }
}
