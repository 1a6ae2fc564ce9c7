import StratusCompute

/// A node's capacity as its operator states it (`--node-capacity cpus=16,memory=64Gi`), reported
/// instead of what the hypervisor says.
///
/// Either part may be left out; the hypervisor's figure is then kept. Memory takes a binary
/// unit, `Mi`, `Gi` or `Ti`, so "64Gi" cannot be misread as MB or as 10⁹ bytes.
public struct DeclaredCapacity: Sendable, Equatable, Codable, CustomStringConvertible {
    public var vcpus: Int?
    public var memoryMB: Int?

    public init(vcpus: Int? = nil, memoryMB: Int? = nil) {
        self.vcpus = vcpus
        self.memoryMB = memoryMB
    }

    /// Parses `cpus=N,memory=SIZE` (either part alone is fine), or says what is wrong with it.
    public init(parsing text: String) throws(DeclaredCapacityError) {
        let example = "expected cpus=N,memory=SIZE like cpus=16,memory=64Gi (memory in Mi, Gi or Ti; either part may be left out), got \"\(text)\""
        var result = DeclaredCapacity()
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        guard !text.isEmpty else { throw DeclaredCapacityError(example) }
        for part in parts {
            let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2 else { throw DeclaredCapacityError("\"\(part)\" is not name=value; \(example)") }
            let (name, value) = (pair[0].trimmingSpaces, pair[1].trimmingSpaces)
            switch name {
            case "cpus":
                guard result.vcpus == nil else { throw DeclaredCapacityError("cpus is given twice; \(example)") }
                guard let cpus = Int(value), (1...100_000).contains(cpus) else {
                    throw DeclaredCapacityError("cpus must be a whole number from 1 to 100000, got \"\(value)\"")
                }
                result.vcpus = cpus
            case "memory":
                guard result.memoryMB == nil else { throw DeclaredCapacityError("memory is given twice; \(example)") }
                result.memoryMB = try Self.megabytes(value)
            default:
                throw DeclaredCapacityError("unknown part \"\(name)\" (the parts are cpus and memory); \(example)")
            }
        }
        self = result
    }

    /// `512Mi` → 512, `64Gi` → 65536, `1Ti` → 1048576.
    private static func megabytes(_ value: String) throws(DeclaredCapacityError) -> Int {
        let units = [("Mi", 1), ("Gi", 1024), ("Ti", 1024 * 1024)]
        guard let (suffix, factor) = units.first(where: { value.hasSuffix($0.0) }), let number = Int(value.dropLast(suffix.count)), number > 0 else {
            throw DeclaredCapacityError("memory must be a whole number with a unit, like 512Mi, 64Gi or 1Ti, got \"\(value)\"")
        }
        let (megabytes, overflow) = number.multipliedReportingOverflow(by: factor)
        guard !overflow, megabytes <= 1 << 40 else { throw DeclaredCapacityError("memory \(value) is more than any host has") }
        return megabytes
    }

    /// The hypervisor's capacity with the declared parts put in.
    public func applied(to capacity: NodeCapacity) -> NodeCapacity {
        NodeCapacity(memoryMB: memoryMB ?? capacity.memoryMB, vcpus: vcpus ?? capacity.vcpus, model: capacity.model)
    }

    /// The setting as it is written: `cpus=16,memory=65536Mi`.
    public var description: String {
        [vcpus.map { "cpus=\($0)" }, memoryMB.map { $0 % 1024 == 0 ? "memory=\($0 / 1024)Gi" : "memory=\($0)Mi" }].compactMap { $0 }.joined(separator: ",")
    }
}

/// A `--node-capacity` value that does not parse; the message shows the expected form.
public struct DeclaredCapacityError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
