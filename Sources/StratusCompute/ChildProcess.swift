import Foundation

/// A tool run to completion with posix_spawn, its output and errors collected.
///
/// Not Foundation's `Process`: the server spawns tools while it may hold thousands of
/// connections, and in that state `Process.run` was seen to crash (in the test process), and
/// `FileHandle`'s reads die on EINTR. Every descriptor the server opens is close-on-exec (NIO's
/// sockets, SQLite, these pipes), so the child inherits only what is set up here. Blocking:
/// callers run it off the cooperative pool.
public struct ChildProcess: Sendable {
    /// The exit code if it exited; 128 + the signal if a signal ended it, as a shell reports.
    public var status: Int32
    public var output: String
    public var errors: String

    /// Runs `tool` (an absolute path) with `arguments`, standard input from /dev/null.
    ///
    /// - Parameter outputFile: where standard output goes instead (created or truncated), for
    ///   binary output; `output` is then empty.
    /// - Parameter environment: variables to set for the child on top of this process's (a
    ///   secret a tool reads from its environment stays off its argv, which anyone may read).
    public static func run(_ tool: String, _ arguments: [String], outputFile: String? = nil, environment: [String: String] = [:]) throws -> ChildProcess {
        let output = try Pipe()
        defer { output.closeRead() }
        let errors = try Pipe()
        defer { errors.closeRead() }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let outputFile {
            posix_spawn_file_actions_addopen(&actions, 1, outputFile, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, output.write, 1)
        }
        posix_spawn_file_actions_adddup2(&actions, errors.write, 2)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = ([tool] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var attributes = posix_spawnattr_t()
        Self.cleanSignals(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var pid: pid_t = 0
        let spawned: Int32
        if environment.isEmpty {
            spawned = posix_spawn(&pid, tool, &actions, &attributes, argv, environ)
        } else {
            var inherited: [String] = []
            var index = 0
            while let entry = environ[index] {
                let text = String(cString: entry)
                if let name = text.split(separator: "=", maxSplits: 1).first, environment[String(name)] == nil { inherited.append(text) }
                index += 1
            }
            let envp: [UnsafeMutablePointer<CChar>?] = (inherited + environment.map { "\($0.key)=\($0.value)" }).map { strdup($0) } + [nil]
            defer { for pointer in envp { free(pointer) } }
            spawned = posix_spawn(&pid, tool, &actions, &attributes, argv, envp)
        }
        output.closeWrite()
        errors.closeWrite()
        guard spawned == 0 else { throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EIO) }
        let (out, err) = drain(output.read, errors.read)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return ChildProcess(status: code, output: String(decoding: out, as: UTF8.self), errors: String(decoding: err, as: UTF8.self))
    }

    /// Reads both descriptors to their ends, whichever has data first (a child blocked writing
    /// one while the parent waits on the other would never finish).
    private static func drain(_ first: Int32, _ second: Int32) -> ([UInt8], [UInt8]) {
        var collected: [[UInt8]] = [[], []]
        var open = [true, true]
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while open.contains(true) {
            var fds = [pollfd(fd: open[0] ? first : -1, events: Int16(POLLIN), revents: 0), pollfd(fd: open[1] ? second : -1, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 2, -1) >= 0 || errno == EINTR else { break }
            for index in 0..<2 where open[index] && fds[index].revents != 0 {
                let count = buffer.withUnsafeMutableBytes { read(fds[index].fd, $0.baseAddress, $0.count) }
                if count > 0 {
                    collected[index] += buffer[0..<count]
                } else if count == 0 || errno != EINTR {
                    open[index] = false
                }
            }
        }
        return (collected[0], collected[1])
    }

    /// A pipe whose ends are close-on-exec (pipe2 is not visible from Swift): only the dup2s reach the child.
    private struct Pipe {
        let read: Int32
        let write: Int32

        init() throws {
            var ends: [Int32] = [-1, -1]
            guard Glibc.pipe(&ends) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            (read, write) = (ends[0], ends[1])
        }

        func closeRead() { close(read) }
        func closeWrite() { close(write) }
    }
}

extension ChildProcess {
    /// Initializes `attributes` so that the child starts with no signal blocked and default
    /// handlers: it inherits the spawning thread's mask otherwise (NIO's and the runtime's threads
    /// block most signals), and a daemon started so would never see SIGTERM or SIGHUP.
    static func cleanSignals(_ attributes: inout posix_spawnattr_t, flags: Int32 = 0) {
        posix_spawnattr_init(&attributes)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGHUP, SIGINT, SIGTERM, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) | flags))
    }

    /// Starts a long-running `tool` in a session of its own (a Ctrl-C to the server's terminal
    /// does not reach it; the server stops it), standard input from /dev/null and its output
    /// appended to `log` (or /dev/null). Returns its PID; the caller reaps it (`exitStatus`).
    public static func spawn(_ tool: String, _ arguments: [String], log: String? = nil) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([tool] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var attributes = posix_spawnattr_t()
        cleanSignals(&attributes, flags: 0x80)  // POSIX_SPAWN_SETSID (glibc), which Swift does not import
        defer { posix_spawnattr_destroy(&attributes) }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, tool, &actions, &attributes, argv, environ)
        guard spawned == 0 else { throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EIO) }
        return pid
    }

    /// The exit status of a spawned child that has ended (reaping it), as `status` reports it;
    /// nil while it runs.
    public static func exitStatus(_ pid: pid_t) -> Int32? {
        var status: Int32 = 0
        var reaped = waitpid(pid, &status, WNOHANG)
        while reaped < 0 && errno == EINTR { reaped = waitpid(pid, &status, WNOHANG) }
        if reaped == 0 { return nil }
        if reaped < 0 { return -1 }  // not ours (or already reaped): gone all the same
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// Where blocking tools run: a queue of its own, which — unlike the global queue, about as
    /// wide as the CPUs — starts another thread when one blocks in `waitpid`, so `ip`, `nft`
    /// and dnsmasq started by many reconciles at once run together instead of in line.
    public static let blockingQueue = DispatchQueue(label: "stratus.child-process", attributes: .concurrent)

    /// `run`, awaited on `blockingQueue`: never on Swift's cooperative pool.
    public static func awaitRun(_ tool: String, _ arguments: [String]) async throws -> ChildProcess {
        try await offPool { try run(tool, arguments) }
    }

    /// Runs blocking `work` on `blockingQueue` and awaits it.
    public static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            blockingQueue.async { continuation.resume(with: Result { try work() }) }
        }
    }
}
