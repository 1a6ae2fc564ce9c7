import Foundation
import StratusIdentity
import StratusModel
import StratusStore

/// One EC2 Query API call: its action, parameters and the signer.
struct EC2Call: Sendable {
    let action: String
    /// Parameters of the query string and the form body (the first of each name wins).
    let parameters: [String: String]
    let principal: Principal
    let requestId: String
    /// The API version the client sent (its XML namespace).
    let version: String
    /// The Host the client reached this endpoint at.
    let host: String

    func string(_ name: String) -> String? { parameters[name].flatMap { $0.isEmpty ? nil : $0 } }

    func required(_ name: String) throws -> String {
        guard let value = string(name) else { throw EC2Error.missing(name) }
        return value
    }

    func int(_ name: String) throws -> Int? {
        guard let text = string(name) else { return nil }
        guard let value = Int(text) else { throw EC2Error.invalid(name, text, "Expected an integer.") }
        return value
    }

    /// One of an enumeration's raw values; anything else is `InvalidParameterValue` naming them.
    func choice<Value: RawRepresentable & CaseIterable>(_ name: String, _ type: Value.Type) throws -> Value? where Value.RawValue == String {
        guard let text = string(name) else { return nil }
        guard let value = Value(rawValue: text) else {
            throw EC2Error.invalid(name, text, "Expected one of: \(Value.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        return value
    }

    func bool(_ name: String) -> Bool { string(name)?.lowercased() == "true" }

    /// `Name.1`, `Name.2`, … in index order.
    func list(_ name: String) -> [String] {
        let prefix = name + "."
        return parameters.compactMap { key, value -> (Int, String)? in
            guard key.hasPrefix(prefix), let index = Int(key.dropFirst(prefix.count)) else { return nil }
            return (index, value)
        }.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// The indices `N` for which some `Name.N.…` parameter exists.
    func indices(_ name: String) -> [Int] {
        let prefix = name + "."
        return Set(parameters.keys.compactMap { key -> Int? in
            guard key.hasPrefix(prefix) else { return nil }
            return Int(key.dropFirst(prefix.count).prefix(while: { $0 != "." }))
        }).sorted()
    }

    /// `Filter.N.Name` / `Filter.N.Value.M` as name → values.
    func filters() -> [(name: String, values: [String])] {
        indices("Filter").compactMap { index in
            guard let name = string("Filter.\(index).Name") else { return nil }
            return (name, list("Filter.\(index).Value"))
        }
    }

    /// `Tag.N.Key` / `Tag.N.Value`.
    func tags(_ prefix: String = "Tag") -> [(key: String, value: String?)] {
        indices(prefix).compactMap { index in
            guard let key = string("\(prefix).\(index).Key") else { return nil }
            return (key, parameters["\(prefix).\(index).Value"])
        }
    }

    /// The project the call acts in: the key's project, or the caller's first — refused when the
    /// caller is no longer a member of it (a key bound to a project outlives a removed membership).
    func project() throws -> String {
        guard let project = principal.defaultProject else {
            throw EC2Error.unauthorized("User \(principal.user) is a member of no project; use a key bound to one (stratus credentials USER -p PROJECT).")
        }
        guard seesAllProjects || principal.canRead(project: project) else {
            throw EC2Error.unauthorized("User \(principal.user) is no longer a member of project \(project), the project this access key acts in; ask its manager to add you back, or use a key of a project you belong to.")
        }
        return project
    }

    /// Whether the caller sees every project (cloudadmin, itsec) rather than their own.
    var seesAllProjects: Bool { principal.isCloudAdmin || principal.globalRoles.contains(.itsec) }

    /// Whether a resource of `project` is visible to the caller.
    func visible(_ project: String) -> Bool {
        seesAllProjects || project == principal.defaultProject  // a key of a project its user left is refused at dispatch
    }

    /// Refuses a change the caller's roles do not allow.
    func authorize(_ kind: Kind, project: String) throws {
        guard principal.canWrite(kind, project: project) else { throw EC2Error.unauthorized(principal.denial(kind, project: project)) }
    }
}

/// Matches EC2 filter values, which may hold `*` and `?` wildcards.
enum FilterMatch {
    static func matches(_ value: String?, _ patterns: [String]) -> Bool {
        guard let value else { return false }
        return patterns.contains { pattern in
            guard pattern.contains("*") || pattern.contains("?") else { return pattern == value }
            return wildcard(Array(pattern), Array(value))
        }
    }

    private static func wildcard(_ pattern: [Character], _ text: [Character]) -> Bool {
        var p = 0, t = 0, star = -1, mark = 0
        while t < text.count {
            if p < pattern.count && (pattern[p] == "?" || pattern[p] == text[t]) {
                p += 1
                t += 1
            } else if p < pattern.count && pattern[p] == "*" {
                star = p
                mark = t
                p += 1
            } else if star >= 0 {
                p = star + 1
                mark += 1
                t = mark
            } else {
                return false
            }
        }
        while p < pattern.count && pattern[p] == "*" { p += 1 }
        return p == pattern.count
    }
}
