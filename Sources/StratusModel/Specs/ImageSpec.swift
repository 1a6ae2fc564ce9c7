/// A bootable disk (and optional kernel and ramdisk) that instances start from.
public struct ImageSpec: SpecBody {
    public static let kind = Kind.image

    /// Where the disk comes from: an absolute local path, or `s3://bucket/key`.
    public var source: String
    public var format: DiskFormat?
    public var kernel: String?
    public var ramdisk: String?
    public var cmdline: String?
    public var architecture: Architecture?
    /// Whether other projects may launch it (`project/name`).
    public var `public`: Bool?

    public init(
        source: String,
        format: DiskFormat? = nil,
        kernel: String? = nil,
        ramdisk: String? = nil,
        cmdline: String? = nil,
        architecture: Architecture? = nil,
        public: Bool? = nil
    ) {
        self.source = source
        self.format = format
        self.kernel = kernel
        self.ramdisk = ramdisk
        self.cmdline = cmdline
        self.architecture = architecture
        self.public = `public`
    }

    public mutating func applyDefaults() {
        if format == nil { format = .qcow2 }
        if architecture == nil { architecture = .x86_64 }
        if `public` == nil { `public` = false }
    }

    public func validate(_ validator: inout Validator) {
        for (field, value) in [("source", Optional(source)), ("kernel", kernel), ("ramdisk", ramdisk)] {
            guard let value else { continue }
            if !(value.hasPrefix("/") || value.hasPrefix("s3://")) {
                validator.fail([.key(field)], "expected an absolute path or s3://bucket/key, got \"\(value)\"")
            } else if value.hasPrefix("s3://") && value.dropFirst(5).split(separator: "/", maxSplits: 1).count < 2 {
                validator.fail([.key(field)], "expected s3://bucket/key, got \"\(value)\"")
            }
        }
        if ramdisk != nil && kernel == nil { validator.fail([.key("ramdisk")], "a ramdisk needs a kernel; add spec.kernel") }
    }
}

/// Disk image formats.
public enum DiskFormat: String, ManifestEnum, AnyManifestEnum {
    case raw
    case qcow2
}

/// CPU architectures.
public enum Architecture: String, ManifestEnum, AnyManifestEnum {
    case x86_64
    case i386
    case aarch64
}
