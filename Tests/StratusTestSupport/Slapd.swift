import Dispatch
import Foundation

/// A real OpenLDAP slapd on a free loopback port with a temporary database (RECIPES §3), for tests.
///
/// It loads core, cosine, inetorgperson, nis and Stratus's own schema (schema/stratus.schema),
/// creates the base entry, and is stopped by its PID.
public final class Slapd: @unchecked Sendable {  // mutable state is touched by one test at a time
    public static let binary = "/usr/sbin/slapd"
    public let base = "dc=example,dc=org"
    public let bindDN = "cn=admin,dc=example,dc=org"
    public let password = "secret"
    public let directory: String
    public let port: Int
    public var url: String { "ldap://127.0.0.1:\(port)" }
    private var process: Process?

    /// Whether slapd is installed (make install-deps installs it).
    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: binary) }

    /// Starts slapd and adds the base entry, on a dispatch thread (tests must not block the
    /// cooperative pool: on two cores that stalls every other test). `sizeLimit` is the server's
    /// limit for searches (default 500 as in slapd).
    /// With `syncprov`, the overlay that answers RFC 4533 content-synchronization searches
    /// (what Stratus follows the directory's changes with) is loaded on the database.
    public static func make(sizeLimit: String = "500", syncprov: Bool = true) async throws -> Slapd {
        try await offPool { try Slapd(sizeLimit: sizeLimit, syncprov: syncprov) }
    }

    private init(sizeLimit: String, syncprov: Bool) throws {
        directory = NSTemporaryDirectory() + "stratus-slapd-\(UUID().uuidString.prefix(8))"
        port = try freePort()
        try FileManager.default.createDirectory(atPath: directory + "/db", withIntermediateDirectories: true)
        let schema = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("schema/stratus.schema").path
        let config = """
            include   /etc/ldap/schema/core.schema
            include   /etc/ldap/schema/cosine.schema
            include   /etc/ldap/schema/inetorgperson.schema
            include   /etc/ldap/schema/nis.schema
            include   \(schema)
            modulepath /usr/lib/ldap
            moduleload back_mdb
            \(syncprov ? "moduleload syncprov" : "")
            pidfile   \(directory)/slapd.pid
            loglevel  none
            sizelimit \(sizeLimit)
            database  mdb
            maxsize   1073741824
            suffix    "\(base)"
            rootdn    "\(bindDN)"
            rootpw    \(password)
            directory \(directory)/db
            index     objectClass eq
            index     uid eq
            index     member eq
            dbnosync
            \(syncprov ? "index     entryCSN,entryUUID eq\noverlay   syncprov" : "")

            """
        try config.write(toFile: directory + "/slapd.conf", atomically: true, encoding: .utf8)
        try startBlocking()
        _ = try run("/usr/bin/ldapadd", ["-x", "-H", url, "-D", bindDN, "-w", password], input: """
            dn: \(base)
            objectClass: dcObject
            objectClass: organization
            dc: example
            o: Example

            """)
    }

    /// Starts (or restarts) the server on the same port and database.
    public func start() async throws { try await Self.offPool { try self.startBlocking() } }

    private func startBlocking() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["-d", "0", "-f", directory + "/slapd.conf", "-h", "ldap://127.0.0.1:\(port)/"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if (try? run("/usr/bin/ldapsearch", ["-x", "-LLL", "-H", url, "-s", "base", "-b", "", "(objectClass=*)"])) != nil { return }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw TestSupportError("slapd did not answer on port \(port) within 10 s")
    }

    /// Stops the server at once (SIGKILL: children of a Swift process may start with SIGTERM blocked;
    /// LMDB survives a killed process, and the OS keeps what it wrote).
    public func stop() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    /// Stops the server and removes its files.
    public func destroy() {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// `ldapsearch -LLL` output.
    public func search(_ filter: String, base: String? = nil, scope: String = "sub", attributes: [String] = []) async throws -> String {
        let base = base ?? self.base
        return try await Self.offPool { try self.run("/usr/bin/ldapsearch", ["-x", "-LLL", "-o", "ldif-wrap=no", "-H", self.url, "-D", self.bindDN, "-w", self.password, "-s", scope, "-b", base, filter] + attributes) }
    }

    /// The DNs `ldapsearch` finds.
    public func dns(_ filter: String, base: String? = nil) async throws -> [String] {
        try await search(filter, base: base, attributes: ["1.1"]).split(separator: "\n").filter { $0.hasPrefix("dn: ") }.map { String($0.dropFirst(4)) }
    }

    /// The values of one attribute of one entry.
    public func values(_ attribute: String, of dn: String) async throws -> [String] {
        try await search("(objectClass=*)", base: dn, scope: "base", attributes: [attribute]).split(separator: "\n")
            .filter { $0.lowercased().hasPrefix(attribute.lowercased() + ": ") }.map { String($0.dropFirst(attribute.count + 2)) }
    }

    public func add(_ ldif: String) async throws {
        _ = try await Self.offPool { try self.run("/usr/bin/ldapadd", ["-x", "-H", self.url, "-D", self.bindDN, "-w", self.password], input: ldif) }
    }

    public func modify(_ ldif: String) async throws {
        _ = try await Self.offPool { try self.run("/usr/bin/ldapmodify", ["-x", "-H", self.url, "-D", self.bindDN, "-w", self.password], input: ldif) }
    }

    public func delete(_ dn: String) async throws {
        _ = try await Self.offPool { try self.run("/usr/bin/ldapdelete", ["-x", "-H", self.url, "-D", self.bindDN, "-w", self.password, dn]) }
    }

    /// Runs blocking work (processes, waits) on a dispatch thread instead of the cooperative pool.
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
        }
    }

    private func run(_ tool: String, _ arguments: [String], input: String? = nil) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        // Input goes through a file: writing a large LDIF to a pipe while the tool fills its
        // output pipe would deadlock.
        var inputFile: String?
        if let input {
            let path = directory + "/input-\(UUID().uuidString.prefix(8)).ldif"
            try input.write(toFile: path, atomically: false, encoding: .utf8)
            process.arguments = arguments + ["-f", path]
            inputFile = path
        }
        defer { inputFile.map { try? FileManager.default.removeItem(atPath: $0) } }
        try process.run()
        let data = output.fileHandleForReading.readToEndRetrying()
        let errorText = String(decoding: errors.fileHandleForReading.readToEndRetrying(), as: UTF8.self)
        process.waitUntilExit()
        // ldapsearch exits 32 (noSuchObject) for a missing base: an empty result, not a failure.
        guard process.terminationStatus == 0 || (tool.hasSuffix("ldapsearch") && process.terminationStatus == 32) else {
            throw TestSupportError("\((tool as NSString).lastPathComponent) \(arguments.suffix(2).joined(separator: " ")) exited \(process.terminationStatus): \(errorText)")
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// A loopback TCP port nobody listens on right now.
public func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw TestSupportError("no free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A test helper that could not do its job.
public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
