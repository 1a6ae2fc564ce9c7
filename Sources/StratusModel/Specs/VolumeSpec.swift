/// A block device exported over AoE and attachable to one instance.
public struct VolumeSpec: SpecBody {
    public static let kind = Kind.volume

    public var sizeGB: Int
    public var availabilityZone: String?
    public var attachment: VolumeAttachment?
    /// The Snapshot (of this project) whose blocks the volume starts with; it is at least as large.
    public var snapshot: String?

    public init(sizeGB: Int, availabilityZone: String? = nil, attachment: VolumeAttachment? = nil, snapshot: String? = nil) {
        self.sizeGB = sizeGB
        self.availabilityZone = availabilityZone
        self.attachment = attachment
        self.snapshot = snapshot
    }

    public mutating func applyDefaults() {
        if attachment != nil && attachment!.device == nil { attachment!.device = "/dev/vdb" }
    }

    public func validate(_ validator: inout Validator) {
        validator.range(sizeGB, 1...16384, at: [.key("sizeGB")], unit: " GB")
        validator.name(availabilityZone, at: [.key("availabilityZone")])
        validator.name(snapshot, at: [.key("snapshot")])
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
        var references = attachment.map { [Reference(kind: .instance, project: project, name: $0.instance, path: [.key("attachment"), .key("instance")])] } ?? []
        if let snapshot { references.append(Reference(kind: .snapshot, project: project, name: snapshot, path: [.key("snapshot")])) }
        return references
    }
}

/// A point-in-time copy of a volume's blocks (EC2's snapshots): a reflink of its backing file
/// where the filesystem allows, a full copy otherwise. New volumes can start from it.
public struct SnapshotSpec: SpecBody {
    public static let kind = Kind.snapshot

    /// The Volume (of this project) it copies.
    public var volume: String
    public var description: String?

    public init(volume: String, description: String? = nil) {
        self.volume = volume
        self.description = description
    }

    public mutating func applyDefaults() {}

    public func validate(_ validator: inout Validator) {
        validator.name(volume, at: [.key("volume")])
        if let description, description.count > 255 { validator.fail([.key("description")], "expected at most 255 characters, got \(description.count)") }
    }

    public func references(project: String?) -> [Reference] {
        [Reference(kind: .volume, project: project, name: volume, path: [.key("volume")])]
    }
}

/// Where a volume is attached.
public struct VolumeAttachment: Codable, Sendable, Equatable {
    public var instance: String
    public var device: String?
    /// EC2's DeleteOnTermination: the volume is deleted with the instance (`stratus delete`,
    /// a prune, TerminateInstances) instead of becoming available. False unless set, as for
    /// EC2's AttachVolume.
    public var deleteOnTermination: Bool?

    public init(instance: String, device: String? = nil, deleteOnTermination: Bool? = nil) {
        self.instance = instance
        self.device = device
        self.deleteOnTermination = deleteOnTermination
    }
}
