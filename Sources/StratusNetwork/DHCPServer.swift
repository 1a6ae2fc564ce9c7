import Foundation
import StratusCompute

/// One instance's fixed address, served by DHCP on its network's bridge.
public struct DHCPHost: Sendable, Equatable {
    public var mac: String
    public var ip: String
    public var hostname: String

    public init(mac: String, ip: String, hostname: String) {
        self.mac = mac
        self.ip = ip
        self.hostname = hostname
    }
}

/// A lease dnsmasq handed out, as its lease file says.
public struct DHCPLease: Sendable, Equatable {
    public var mac: String
    public var ip: String
    public var hostname: String?
}

/// dnsmasq as each bridge's DHCP server, supervised: one process per bridge (DHCP only, no DNS,
/// `--no-ping`, bound to the bridge), its static hosts in a file it rereads on SIGHUP, started
/// again when it has died. Its files live under `directory` (`<bridge>.hosts`, `.leases`,
/// `.pid`, `.log`).
public struct DHCPServer: Sendable {
    public let directory: String
    public let namespace: String?
    let dnsmasq: String

    public init(directory: String, namespace: String? = nil) throws {
        guard let dnsmasq = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"].first(where: FileManager.default.isExecutableFile) else {
            throw HostNetworkError("dnsmasq is not installed (apt-get install dnsmasq-base)")
        }
        self.dnsmasq = dnsmasq
        self.directory = URL(fileURLWithPath: directory).standardizedFileURL.path
        self.namespace = namespace
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    func file(_ bridge: String, _ suffix: String) -> String { "\(directory)/\(bridge).\(suffix)" }

    /// The PID of the bridge's dnsmasq if it runs.
    public func pid(_ bridge: String) -> pid_t? {
        guard let text = try? String(contentsOfFile: file(bridge, "pid"), encoding: .utf8), let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)),
            kill(pid, 0) == 0
        else { return nil }
        // A killed daemon may linger as a zombie nobody reaps (a container's PID 1): not running.
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")"),
            stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
        {
            return nil
        }
        return pid
    }

    /// Makes the bridge's DHCP server serve `hosts` on `range`'s subnet (the netmask) with
    /// `router` as the gateway — those hosts only, as Nova's did: a MAC it does not know gets no
    /// address, so a guest never holds one its instance was not given: starts it if it does not run, tells it
    /// (SIGHUP) when its hosts changed. Returns what it did.
    public func converge(bridge: String, range: (first: String, last: String, netmask: String), router: String, hosts: [DHCPHost]) throws -> [String] {
        var done: [String] = []
        let hostsText = hosts.map { "\($0.mac),\($0.ip),\($0.hostname)" }.joined(separator: "\n") + (hosts.isEmpty ? "" : "\n")
        let hostsFile = file(bridge, "hosts")
        let changed = (try? String(contentsOfFile: hostsFile, encoding: .utf8)) != hostsText
        if changed {
            try hostsText.write(toFile: hostsFile, atomically: true, encoding: .utf8)
        }
        if let running = pid(bridge) {
            if changed {
                kill(running, SIGHUP)
                done.append("\(bridge): DHCP hosts reloaded (\(hosts.count))")
            }
            return done
        }
        var arguments = [
            // As root: its files are under the data directory, which is the server's alone (a
            // dnsmasq that dropped to nobody could not reread the hosts file there).
            "--conf-file=/dev/null", "--user=root", "--no-resolv", "--no-hosts", "--port=0", "--no-ping", "--bind-interfaces", "--interface=\(bridge)", "--except-interface=lo",
            "--dhcp-range=\(range.first),static,\(range.netmask),1h", "--dhcp-option=option:router,\(router)", "--dhcp-hostsfile=\(hostsFile)",
            "--dhcp-leasefile=\(file(bridge, "leases"))", "--pid-file=\(file(bridge, "pid"))", "--log-dhcp", "--log-facility=\(file(bridge, "log"))",
        ]
        var tool = dnsmasq
        if let namespace {
            arguments = ["netns", "exec", namespace, dnsmasq] + arguments
            tool = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first(where: FileManager.default.isExecutableFile) ?? "/usr/sbin/ip"
        }
        // dnsmasq daemonizes once it has bound the bridge and written its PID file.
        let started = try ChildProcess.run(tool, arguments)
        guard started.status == 0, pid(bridge) != nil else {
            let log = (try? String(contentsOfFile: file(bridge, "log"), encoding: .utf8)) ?? ""
            throw HostNetworkError("dnsmasq for \(bridge) did not start: \(started.errors.trimmingCharacters(in: .whitespacesAndNewlines)) \(log.suffix(300))")
        }
        done.append("\(bridge): DHCP server started (\(hosts.count) hosts)")
        return done
    }

    /// Stops the bridge's DHCP server and removes its files.
    public func stop(bridge: String) {
        if let running = pid(bridge) {
            kill(running, SIGTERM)
            for _ in 0..<50 where kill(running, 0) == 0 { usleep(20_000) }
        }
        for suffix in ["hosts", "leases", "pid", "log"] { unlink(file(bridge, suffix)) }
    }

    /// The leases the bridge's DHCP server has handed out.
    public func leases(bridge: String) -> [DHCPLease] {
        // "expiry mac ip hostname client-id", one per line.
        ((try? String(contentsOfFile: file(bridge, "leases"), encoding: .utf8)) ?? "").split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count >= 4 else { return nil }
            return DHCPLease(mac: fields[1], ip: fields[2], hostname: fields[3] == "*" ? nil : fields[3])
        }
    }
}
