import StratusCompute
import StratusModel

/// What the controller wants one node to hold for one instance: self-contained, so the node
/// converges it without reading the store (resolved names, sizes, the image's files, the NIC).
///
/// Level-triggered: the whole desired state with its generation, so a repeated or late intent is
/// harmless (an older generation than the domain's is still converged to; the controller only
/// ever sends the current one).
public struct InstanceIntent: Sendable, Equatable, Codable {
    /// The EC2 id (`i-0a1b2c3d`): the domain is `stratus-<id>`.
    public var id: String
    public var project: String
    public var name: String
    public var generation: Int
    public var memoryMB: Int
    public var vcpus: Int
    public var image: ImageFiles
    public var powerState: PowerState
    /// The NIC, when the instance has a network; nil with `nicNote` saying why not.
    public var nic: NICIntent?
    /// Why the controller left the NIC out (several networks, no free address, no bridge yet).
    public var nicNote: String?
    /// The volumes attached to it: serial (volume id), device, and where the node finds the
    /// volume (its backing file when the volume lives on this node, else `/dev/etherd/e<shelf>.<slot>`).
    public var volumes: [DomainVolume]?

    public init(
        id: String, project: String, name: String, generation: Int, memoryMB: Int, vcpus: Int, image: ImageFiles,
        powerState: PowerState, nic: NICIntent? = nil, nicNote: String? = nil
    ) {
        self.id = id
        self.project = project
        self.name = name
        self.generation = generation
        self.memoryMB = memoryMB
        self.vcpus = vcpus
        self.image = image
        self.powerState = powerState
        self.nic = nic
        self.nicNote = nicNote
    }

    /// The libvirt domain name of an instance.
    public static func domainName(id: String) -> String { "stratus-\(id)" }

    public var domainName: String { Self.domainName(id: id) }
}

/// Where an instance's image lives and how it boots: what the node needs to build its disk.
public struct ImageFiles: Sendable, Equatable, Codable {
    /// An absolute path on the node (later: an object-store location the node fetches once).
    public var source: String
    public var format: String
    public var kernel: String?
    public var ramdisk: String?
    public var cmdline: String?
    /// The files of `s3://` locations, by location: where the node reads each, and the size and
    /// MD5 it must have. The node copies each into its image cache once, verified.
    public var objects: [String: ImageObject]?

    public init(source: String, format: String = "qcow2", kernel: String? = nil, ramdisk: String? = nil, cmdline: String? = nil, objects: [String: ImageObject]? = nil) {
        self.source = source
        self.format = format
        self.kernel = kernel
        self.ramdisk = ramdisk
        self.cmdline = cmdline
        self.objects = objects
    }
}

/// An object-store file an image is made of, as the controller found it.
public struct ImageObject: Sendable, Equatable, Codable {
    /// A path on this host (the object store's file; a URL when nodes are other hosts).
    public var path: String
    public var size: Int64
    /// Hex MD5 of the whole file.
    public var md5: String

    public init(path: String, size: Int64, md5: String) {
        self.path = path
        self.size = size
        self.md5 = md5
    }
}

extension ImageFiles {
    /// These files as an instance's status records them (`InstanceDetails.image`).
    public var recorded: [String: String] {
        var fields = ["source": source, "format": format]
        fields["kernel"] = kernel
        fields["ramdisk"] = ramdisk
        fields["cmdline"] = cmdline
        return fields
    }

    /// The files an instance's status recorded; nil without a source.
    public init?(recorded fields: [String: String]) {
        guard let source = fields["source"] else { return nil }
        self.init(source: source, format: fields["format"] ?? "qcow2", kernel: fields["kernel"], ramdisk: fields["ramdisk"], cmdline: fields["cmdline"])
    }
}

/// An instance's NIC as the controller allocated it.
public struct NICIntent: Sendable, Equatable, Codable {
    public var network: String
    public var mac: String
    public var ip: String?
    /// The bridge the NIC joins on the node (`br<vlan>`).
    public var bridge: String

    public init(network: String, mac: String, ip: String?, bridge: String) {
        self.network = network
        self.mac = mac
        self.ip = ip
        self.bridge = bridge
    }
}
