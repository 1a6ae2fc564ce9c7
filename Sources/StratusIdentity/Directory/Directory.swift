/// One entry of a directory: its DN and attributes (names in lowercase, values in order).
public struct DirectoryEntry: Sendable, Equatable {
    public var dn: String
    public var attributes: [String: [String]]

    public init(dn: String, attributes: [String: [String]]) {
        self.dn = dn
        self.attributes = Dictionary(attributes.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: +)
    }

    /// The entry's values of `name` (case-insensitive).
    public subscript(name: String) -> [String] { attributes[name.lowercased()] ?? [] }
}

/// How far below the base a search looks.
public enum DirectoryScope: Sendable {
    case base, oneLevel, subtree
}

/// One change to an entry's attribute.
public enum DirectoryChange: Sendable, Equatable {
    case replace(String, [String])
    case add(String, [String])
    case delete(String)
    /// Removes some values of a multi-valued attribute (a group's member).
    case deleteValues(String, [String])
}

/// A user directory (LDAP): what the identity reconciler converges.
public protocol Directory: Sendable {
    /// Entries under `base` matching `filter` (RFC 4515); all of them, however many (paged).
    func search(base: String, scope: DirectoryScope, filter: String, attributes: [String]?) async throws -> [DirectoryEntry]
    func add(_ entry: DirectoryEntry) async throws
    func modify(_ dn: String, _ changes: [DirectoryChange]) async throws
    /// Deletes one entry (it must have no children).
    func delete(_ dn: String) async throws
    /// Follows the changes others make under `base` for as long as the task runs, calling
    /// `changed` with each changed entry's DN (and with `base` itself after a reconnection, when
    /// changes may have been missed); returns false at once when the server offers no way to
    /// follow them, so the caller relies on its resync.
    func follow(base: String, _ changed: @escaping @Sendable (String) -> Void) async -> Bool
}

extension Directory {
    public func follow(base: String, _ changed: @escaping @Sendable (String) -> Void) async -> Bool { false }
}

/// An LDAP operation that failed, with the server's result code.
public struct DirectoryError: Error, Sendable, CustomStringConvertible {
    /// The LDAP result code (RFC 4511), or a negative libldap client code.
    public let code: Int32
    public let message: String

    public init(code: Int32, message: String) {
        self.code = code
        self.message = message
    }

    /// The server cannot be reached (down, refused, timed out): retry later.
    public var isUnavailable: Bool { code == -1 || code == -11 || code == -5 || code == 51 || code == 52 }
    public var isNoSuchObject: Bool { code == 32 }
    public var isAlreadyExists: Bool { code == 68 }
    /// The value to add is there already (20).
    public var isValueExists: Bool { code == 20 }
    /// The attribute or value to delete is not there (16).
    public var isNoSuchAttribute: Bool { code == 16 }
    /// The change would break the schema, e.g. a groupOfNames without members (65).
    public var isObjectClassViolation: Bool { code == 65 }
    public var description: String { message }
}
