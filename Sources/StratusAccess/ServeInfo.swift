import Foundation

/// `DATA/serve.json`: where a running `stratus serve` listens, and its PID.
///
/// Written by the server as each listener binds (port 0 picks a free one) and read by the CLI
/// (reboot, drift and credentials need the running server), the resource API (the endpoints a
/// credential names) and tests. One type, so the three agree on every field.
public struct ServeInfo: Codable, Sendable, Equatable {
    public var pid: Int
    /// The address the APIs listen on (`--listen`).
    public var listen: String
    public var apiURL: String?
    public var apiPort: Int?
    public var ec2URL: String?
    public var ec2Port: Int?
    public var metadataURL: String?
    /// `--metrics-listen`'s `/metrics`, when it has a listener of its own.
    public var metricsURL: String?
    public var s3URL: String?
    public var s3Port: Int?
    /// The region the APIs serve (`--region`); signatures must be scoped to it.
    public var region: String?

    public init(pid: Int = Int(ProcessInfo.processInfo.processIdentifier), listen: String) {
        self.pid = pid
        self.listen = listen
    }

    /// The file's path in a data directory.
    public static func path(dataDirectory: String) -> String {
        (dataDirectory as NSString).appendingPathComponent("serve.json")
    }

    /// The file as last written, whether or not its server still runs; nil when absent or unreadable.
    public static func read(dataDirectory: String) -> ServeInfo? {
        guard let data = FileManager.default.contents(atPath: path(dataDirectory: dataDirectory)) else { return nil }
        return try? JSONDecoder().decode(ServeInfo.self, from: data)
    }

    /// The file of a server that is still running (its PID answers), else nil.
    public static func running(dataDirectory: String) -> ServeInfo? {
        guard let info = read(dataDirectory: dataDirectory), info.pid > 0, kill(Int32(info.pid), 0) == 0 else { return nil }
        return info
    }

    /// Writes the file atomically (readers never see half of it).
    public func write(dataDirectory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(UInt8(ascii: "\n"))
        let path = Self.path(dataDirectory: dataDirectory)
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)  // it names the server's ports and PID only to its owner
    }
}
