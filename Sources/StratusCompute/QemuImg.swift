import Foundation

/// `qemu-img`, for copy-on-write overlays on images.
public enum QemuImg {
    /// Creates `path` as a qcow2 overlay backed by `backing` (whose format must be named: qemu-img refuses to guess).
    public static func createOverlay(at path: String, backing: String, format: String) throws {
        let (status, errors): (Int32, String)
        do {
            (status, errors) = try run("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", "-b", backing, "-F", format, path])
        } catch {
            throw HypervisorError(operation: "qemu-img create", message: "cannot run /usr/bin/qemu-img (install qemu-utils): \(error)")
        }
        guard status == 0 else {
            throw HypervisorError(operation: "qemu-img create", message: errors.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    /// Runs `tool` with `arguments` and returns its exit status and standard error.
    ///
    /// With posix_spawn and plain reads rather than Foundation's `Process`: the server spawns
    /// this while it may hold thousands of connections, and in that state `Process.run` was seen
    /// to crash (in the test process), and `FileHandle`'s reads die on EINTR. Every descriptor
    /// the server opens is close-on-exec (NIO's sockets, SQLite, this pipe), so the child
    /// inherits only what is set up here.
    static func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, errors: String) {
        var pipe: [Int32] = [-1, -1]
        guard Glibc.pipe(&pipe) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        // Close-on-exec at once (pipe2 is not visible from Swift): only the dup2 below reaches the child.
        for fd in pipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        defer { close(pipe[0]) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipe[1], 2)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = ([tool] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, tool, &actions, nil, argv, environ)
        close(pipe[1])
        guard spawned == 0 else { throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EIO) }
        var errors = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(pipe[0], $0.baseAddress, $0.count) }
            if count > 0 {
                errors += buffer[0..<count]
            } else if count == 0 || errno != EINTR {
                break
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // The exit code if it exited; 128 + the signal if a signal ended it, as a shell reports.
        let exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exitCode, String(decoding: errors, as: UTF8.self))
    }
}
