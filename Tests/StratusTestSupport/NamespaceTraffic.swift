import Foundation

/// Traffic between network namespaces, for tests of the node's networking: a TCP listener in
/// one namespace, connection attempts from another.
public enum NamespaceTraffic {
    static let ip = "/usr/sbin/ip"

    /// Whether a TCP connection from `namespace` to `host:port` is accepted within 1.5 s.
    public static func connects(from namespace: String, to host: String, _ port: Int, bindingTo source: String? = nil) async throws -> Bool {
        let bind = source.map { "s.bind(('\($0)', 0))\n" } ?? ""
        let probe = "import socket\ns=socket.socket()\n\(bind)s.settimeout(1.5)\ntry:\n s.connect(('\(host)', \(port))); print('open')\nexcept Exception as e: print('closed', e)"
        return try await run(["netns", "exec", namespace, "python3", "-c", probe]).hasPrefix("open")
    }

    /// An HTTP GET from `namespace`: the body, or nil when it failed.
    public static func get(from namespace: String, _ url: String) async throws -> String? {
        let script = "import urllib.request\ntry:\n print('ok ' + urllib.request.urlopen('\(url)', timeout=3).read().decode())\nexcept Exception as e: print('failed', e)"
        let output = try await run(["netns", "exec", namespace, "python3", "-c", script])
        return output.hasPrefix("ok ") ? String(output.dropFirst(3)).trimmingCharacters(in: .whitespacesAndNewlines) : nil
    }

    /// TCP listeners on `ports` in `namespace` (each accepts and closes); the returned closure
    /// stops them.
    public static func listen(in namespace: String, ports: [Int]) async throws -> @Sendable () -> Void {
        let script = "import socket,threading,time\nfor p in \(ports):\n s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', p)); s.listen(64)\n threading.Thread(target=lambda s=s: [s.accept()[0].close() for _ in iter(int, 1)], daemon=True).start()\nprint('ready', flush=True)\ntime.sleep(600)"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ip)
        process.arguments = ["netns", "exec", namespace, "python3", "-c", script]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        _ = try await offPool { pipe.fileHandleForReading.availableRetrying() }  // "ready"
        // SIGKILL: a child of the test process may start with SIGTERM blocked.
        return {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Runs `ip` with `arguments` off the cooperative pool; its standard output and error.
    static func run(_ arguments: [String]) async throws -> String {
        try await offPool { try runTool(ip, arguments).output }
    }
}
