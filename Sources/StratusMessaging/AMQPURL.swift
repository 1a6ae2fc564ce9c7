import Foundation

/// Where the broker is: `amqp://user:password@host:port/vhost` (TLS with `amqps://`, port 5671).
/// The password may instead come from a file (`--amqp-password-file`), so it never has to sit
/// on a command line; `description` never shows it.
public struct AMQPURL: Sendable, Equatable, CustomStringConvertible {
    public var tls: Bool
    public var host: String
    public var port: Int
    public var virtualHost: String
    public var user: String
    public var password: String

    public init(tls: Bool = false, host: String, port: Int? = nil, virtualHost: String = "/", user: String = "guest", password: String = "guest") {
        self.tls = tls
        self.host = host
        self.port = port ?? (tls ? 5671 : 5672)
        self.virtualHost = virtualHost
        self.user = user
        self.password = password
    }

    /// Parses an AMQP URI (RabbitMQ's spec): the path, percent-decoded, is the virtual host, and
    /// an empty path is `/`. `passwordFile`'s first line, when given, is the password.
    public init(parsing text: String, passwordFile: String? = nil) throws(AMQPError) {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(), ["amqp", "amqps"].contains(scheme) else {
            throw AMQPError("\"\(AMQPURL.redacted(text))\" is not an AMQP URL: expected amqp://user:password@host:port/vhost (or amqps:// for TLS)")
        }
        guard let host = components.host, !host.isEmpty else { throw AMQPError("the AMQP URL \(AMQPURL.redacted(text)) names no host") }
        if let port = components.port, !(1...65535).contains(port) { throw AMQPError("the AMQP URL's port \(port) is out of range") }
        var path = components.percentEncodedPath
        if path.hasPrefix("/") { path.removeFirst() }
        guard !path.contains("/") else { throw AMQPError("the AMQP URL's virtual host must be one path segment (encode a slash as %2F): \(path)") }
        var password = components.password ?? "guest"
        if let passwordFile {
            guard let contents = try? String(contentsOfFile: passwordFile, encoding: .utf8) else { throw AMQPError("cannot read the AMQP password file \(passwordFile)") }
            password = String(contents.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
        }
        self.init(tls: scheme == "amqps", host: host, port: components.port, virtualHost: path.isEmpty ? "/" : (path.removingPercentEncoding ?? path),
                  user: components.user ?? "guest", password: password)
    }

    public var description: String {
        let vhost = virtualHost == "/" ? "" : (virtualHost.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? virtualHost)
        return "\(tls ? "amqps" : "amqp")://\(user)@\(host):\(port)/\(vhost)"
    }

    /// `text` with any password replaced, for messages.
    static func redacted(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@"), let scheme = text.range(of: "://"), scheme.upperBound < at else { return text }
        let credentials = text[scheme.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return text }
        return text.replacingCharacters(in: text.index(after: colon)..<at, with: "***")
    }
}

/// A failure talking to the broker, said so a user can act on it.
public struct AMQPError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
