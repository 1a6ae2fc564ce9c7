import Foundation

extension NodeCapacity {
    /// This host's memory (MemTotal of /proc/meminfo) and online CPUs, or nil where /proc cannot say.
    public static func host() -> NodeCapacity? {
        guard let meminfo = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
            let line = meminfo.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") }),
            let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else { return nil }
        let cpus = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        return NodeCapacity(memoryMB: kilobytes / 1024, vcpus: cpus > 0 ? cpus : 1, model: "host")
    }
}
