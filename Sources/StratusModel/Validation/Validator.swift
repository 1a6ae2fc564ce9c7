/// A problem with one field of a spec, found after decoding.
public struct FieldIssue: Sendable, Equatable {
    public var path: [PathElement]
    public var message: String
    public var hint: String?
    /// The EC2 error code an API answers with, where AWS has one for this limit.
    public var code: String?

    public init(path: [PathElement], message: String, hint: String? = nil, code: String? = nil) {
        self.path = path
        self.message = message
        self.hint = hint
        self.code = code
    }
}

/// Collects field issues while a spec checks itself; paths are relative to `spec`.
public struct Validator: Sendable {
    public private(set) var issues: [FieldIssue] = []

    public init() {}

    /// Records an issue at a field.
    public mutating func fail(_ path: [PathElement], _ message: String, hint: String? = nil, code: String? = nil) {
        issues.append(FieldIssue(path: [.key("spec")] + path, message: message, hint: hint, code: code))
    }

    /// Requires `value` to lie in `range`.
    public mutating func range(_ value: Int?, _ range: ClosedRange<Int>, at path: [PathElement], unit: String = "") {
        guard let value, !range.contains(value) else { return }
        fail(path, "must be between \(range.lowerBound) and \(range.upperBound)\(unit), got \(value)")
    }

    /// Requires a non-empty reference-style name.
    public mutating func name(_ value: String?, at path: [PathElement], dotted: Bool = false) {
        guard let value else { return }
        if let problem = NameRules.problem(with: value, dotted: dotted) { fail(path, problem) }
    }

    /// Requires an IPv4 CIDR whose host bits are zero.
    public mutating func cidr(_ value: String?, at path: [PathElement], prefixes: ClosedRange<Int> = 0...32) {
        guard let value else { return }
        switch IPv4Network.parse(value) {
        case .failure(let problem):
            fail(path, "\(problem.message), got \"\(value)\"", hint: problem.hint)
        case .success(let network):
            if !prefixes.contains(network.prefix) {
                fail(path, "prefix length must be between /\(prefixes.lowerBound) and /\(prefixes.upperBound), got /\(network.prefix)")
            }
        }
    }

    /// Requires a dotted-quad IPv4 address.
    public mutating func ipv4(_ value: String?, at path: [PathElement]) {
        guard let value else { return }
        if IPv4Address(value) == nil { fail(path, "expected an IPv4 address like 10.0.0.1, got \"\(value)\"") }
    }
}

/// Name rules: DNS labels (RFC 1123), or dotted DNS subdomains for kinds like `m1.small`.
public enum NameRules {
    /// Describes what is wrong with a name, or nil when it is valid.
    public static func problem(with name: String, dotted: Bool) -> String? {
        if name.isEmpty { return "must not be empty" }
        if dotted {
            if name.utf8.count > 253 { return "must be at most 253 characters, got \(name.utf8.count)" }
            for label in name.split(separator: ".", omittingEmptySubsequences: false) {
                if let problem = labelProblem(Substring(label)) {
                    return "\"\(name)\" is not a valid name: \(problem) (lower-case letters, digits, '-' and '.')"
                }
            }
            return nil
        }
        if let problem = labelProblem(Substring(name)) {
            return "\"\(name)\" is not a valid name: \(problem) (a DNS label: lower-case letters, digits and '-')"
        }
        return nil
    }

    private static func labelProblem(_ label: Substring) -> String? {
        if label.isEmpty { return "empty label" }
        if label.utf8.count > 63 { return "longer than 63 characters" }
        for byte in label.utf8 {
            let ok = (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-")
            if !ok {
                if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { return "upper-case letters are not allowed" }
                return "character '\(String(UnicodeScalar(byte)))' is not allowed"
            }
        }
        if label.first == "-" || label.last == "-" { return "must start and end with a letter or digit" }
        return nil
    }
}
