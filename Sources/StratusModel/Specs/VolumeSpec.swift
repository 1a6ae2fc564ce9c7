/// A block device exported over AoE and attachable to one instance.
public struct VolumeSpec: SpecBody {
    public static let kind = Kind.volume

    public var sizeGB: Int
    public var availabilityZone: String?
    public var attachment: VolumeAttachment?

    public init(sizeGB: Int, availabilityZone: String? = nil, attachment: VolumeAttachment? = nil) {
        self.sizeGB = sizeGB
        self.availabilityZone = availabilityZone
        self.attachment = attachment
    }

    public mutating func applyDefaults() {
        if attachment != nil && attachment!.device == nil { attachment!.device = "/dev/vdb" }
    }

    public func validate(_ validator: inout Validator) {
        validator.range(sizeGB, 1...16384, at: [.key("sizeGB")], unit: " GB")
        validator.name(availabilityZone, at: [.key("availabilityZone")])
        guard let attachment else { return }
        validator.name(attachment.instance, at: [.key("attachment"), .key("instance")])
        if let device = attachment.device {
            let suffix = device.dropFirst("/dev/vd".count)
            let ok = device.hasPrefix("/dev/vd") && suffix.count == 1 && suffix.first!.isLowercase && suffix != "a"
            if !ok {
                validator.fail([.key("attachment"), .key("device")], "expected /dev/vdb … /dev/vdz (vda is the root disk), got \"\(device)\"")
            }
        }
    }

    public func references(project: String?) -> [Reference] {
        attachment.map { [Reference(kind: .instance, project: project, name: $0.instance, path: [.key("attachment"), .key("instance")])] } ?? []
    }
}

/// Where a volume is attached.
public struct VolumeAttachment: Codable, Sendable, Equatable {
    public var instance: String
    public var device: String?

    public init(instance: String, device: String? = nil) {
        self.instance = instance
        self.device = device
    }
}
