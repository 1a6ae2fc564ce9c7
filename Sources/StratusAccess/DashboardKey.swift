import Crypto
import Foundation

/// The dashboard's signing key (`DATA/dashboard.key`, 32 random bytes, owner-only): it signs
/// session cookies, the CSRF token of each session, and the one-time login links that
/// `stratus dashboard` prints. Rotating it (deleting the file) ends every session.
public struct DashboardKey: Sendable {
    let key: SymmetricKey

    init(key: SymmetricKey) { self.key = key }

    /// The key of a data directory, made on first use.
    public static func load(dataDirectory: String) throws -> DashboardKey {
        let path = (dataDirectory as NSString).appendingPathComponent("dashboard.key")
        if let data = FileManager.default.contents(atPath: path), data.count == 32 { return DashboardKey(key: SymmetricKey(data: data)) }
        let fresh = SymmetricKey(size: .bits256)
        let data = fresh.withUnsafeBytes { Data($0) }
        // Made owner-only before the key is in it; a second process racing here keeps the first key.
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) || FileManager.default.fileExists(atPath: path) else {
            throw DashboardKeyError("cannot create \(path)")
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.write(contentsOf: data)
        try handle.close()
        return DashboardKey(key: fresh)
    }

    /// A session for `accessKey` until `expiry`: `s1.KEY.EXPIRY.NONCE.MAC`.
    public func session(accessKey: String, expiry: Date) -> String {
        token("s1", [accessKey, String(Int(expiry.timeIntervalSince1970)), Self.nonce()])
    }

    /// A one-time login link's token for `user` until `expiry`: `l1.USER.EXPIRY.NONCE.MAC`.
    public func link(user: String, expiry: Date) -> String {
        token("l1", [user, String(Int(expiry.timeIntervalSince1970)), Self.nonce()])
    }

    /// The access key and nonce of a valid, unexpired session token.
    public func verifySession(_ text: String, now: Date = Date()) -> (accessKey: String, nonce: String, expiry: Date)? {
        verify("s1", text, now: now).map { ($0.subject, $0.nonce, $0.expiry) }
    }

    /// The user and nonce of a valid, unexpired link token (one use is the server's to enforce).
    public func verifyLink(_ text: String, now: Date = Date()) -> (user: String, nonce: String, expiry: Date)? {
        verify("l1", text, now: now).map { ($0.subject, $0.nonce, $0.expiry) }
    }

    /// The CSRF token of a session: forms carry it, and an action whose token is not the
    /// session's is refused. Derived, so nothing per session is stored.
    public func csrf(for session: String) -> String {
        Self.base64URL(Data(HMAC<SHA256>.authenticationCode(for: Data("csrf.\(session)".utf8), using: key)))
    }

    /// Whether `given` is the CSRF token of `session`, compared in constant time.
    public func checkCSRF(_ given: String, session: String) -> Bool {
        Authenticator.constantTimeEqual(Array(given.utf8), Array(csrf(for: session).utf8))
    }

    func token(_ version: String, _ fields: [String]) -> String {
        let body = ([version] + fields.map { Self.base64URL(Data($0.utf8)) }).joined(separator: ".")
        return body + "." + Self.base64URL(Data(HMAC<SHA256>.authenticationCode(for: Data(body.utf8), using: key)))
    }

    func verify(_ version: String, _ text: String, now: Date) -> (subject: String, nonce: String, expiry: Date)? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5, parts[0] == version, let mac = Self.data(base64URL: parts[4]) else { return nil }
        let body = parts[0..<4].joined(separator: ".")
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Data(body.utf8), using: key) else { return nil }
        let fields = parts[1..<4].compactMap { Self.data(base64URL: $0).flatMap { String(data: $0, encoding: .utf8) } }
        guard fields.count == 3, let seconds = Int(fields[1]) else { return nil }
        let expiry = Date(timeIntervalSince1970: TimeInterval(seconds))
        guard expiry > now else { return nil }
        return (fields[0], fields[2], expiry)
    }

    static func nonce() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in String(generator.next() as UInt64, radix: 36) }.joined()
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func data(base64URL text: String) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}

/// A dashboard key file that cannot be made.
public struct DashboardKeyError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
