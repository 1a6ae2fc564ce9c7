import Foundation

/// Everything a libvirt domain definition for an instance needs.
public struct DomainDefinition: Sendable, Equatable {
    public var name: String
    /// The UUID of the domain being redefined (libvirt refuses a redefinition under a new UUID).
    public var uuid: String?
    /// `kvm`, `qemu` (TCG) or `test`.
    public var type: String
    public var memoryMB: Int
    public var vcpus: Int
    /// The instance's root disk (a qcow2 overlay), if it has one.
    public var disk: String?
    public var diskFormat: String
    public var kernel: String?
    public var initrd: String?
    public var cmdline: String?
    /// Where the serial console is written.
    public var consoleLog: String?
    /// The bridge of the project's network, when it has one.
    public var bridge: String?
    public var mac: String?
    /// The NIC's bridge port (`tap0000beef`), so the node's filter knows it in advance.
    public var port: String?
    public var owner: DomainOwner
    /// Volumes attached as virtio disks (`vdb`…): in the rendered XML, not in the config digest,
    /// since they are hot-plugged rather than restarted for.
    public var volumes: [DomainVolume] = []

    public init(
        name: String, uuid: String? = nil, type: String, memoryMB: Int, vcpus: Int, disk: String? = nil, diskFormat: String = "qcow2",
        kernel: String? = nil, initrd: String? = nil, cmdline: String? = nil, consoleLog: String? = nil,
        bridge: String? = nil, mac: String? = nil, port: String? = nil, owner: DomainOwner
    ) {
        self.name = name
        self.uuid = uuid
        self.type = type
        self.memoryMB = memoryMB
        self.vcpus = vcpus
        self.disk = disk
        self.diskFormat = diskFormat
        self.kernel = kernel
        self.initrd = initrd
        self.cmdline = cmdline
        self.consoleLog = consoleLog
        self.bridge = bridge
        self.mac = mac
        self.port = port
        self.owner = owner
    }
}

/// A volume as a disk of a domain: its serial (the volume id) is how the guest and Stratus tell it.
public struct DomainVolume: Sendable, Equatable, Codable {
    /// The volume id (`vol-…`), the disk's serial (`/dev/disk/by-id/virtio-vol-…` in the guest).
    public var serial: String
    /// The target device (`vdb`).
    public var device: String
    /// A file (the backing file on this node) or a block device (`/dev/etherd/e1.2`).
    public var source: String
    /// Whether `source` is a block device (the AoE initiator's) rather than a file.
    public var block: Bool
    /// The size its export answers with on the wire; a running guest whose disk is smaller is told it grew.
    public var bytes: UInt64?

    public init(serial: String, device: String, source: String, block: Bool = false, bytes: UInt64? = nil) {
        self.serial = serial
        self.device = device
        self.source = source
        self.block = block
        self.bytes = bytes
    }
}

/// Renders domain XML and reads Stratus' ownership metadata back.
public enum DomainXML {
    /// The `<disk>` element of an attached volume (raw, virtio, serial = the volume id).
    public static func disk(_ volume: DomainVolume) -> String {
        let (type, attribute) = volume.block ? ("block", "dev") : ("file", "file")
        return "<disk type='\(type)' device='disk'><driver name='qemu' type='raw' cache='none'/><source \(attribute)='\(escape(volume.source))'/>"
            + "<target dev='\(escape(volume.device))' bus='virtio'/><serial>\(escape(volume.serial))</serial></disk>"
    }

    /// The volumes of a domain's XML: disks whose serial is a volume id, serial → target device.
    public static func volumes(in xml: String) -> [String: String] {
        var found: [String: String] = [:]
        var rest = xml[...]
        while let start = rest.range(of: "<disk"), let end = rest[start.upperBound...].range(of: "</disk>") {
            let disk = rest[start.lowerBound..<end.upperBound]
            rest = rest[end.upperBound...]
            guard let open = disk.range(of: "<serial>"), let close = disk[open.upperBound...].range(of: "</serial>") else { continue }
            let serial = unescape(String(disk[open.upperBound..<close.lowerBound]))
            guard serial.hasPrefix("vol-") else { continue }
            var device = ""
            if let target = disk.range(of: "<target dev="), let quote = disk[target.upperBound...].first {
                let value = disk[disk.index(after: target.upperBound)...]
                device = String(value.prefix { $0 != quote })
            }
            found[serial] = device
        }
        return found
    }

    /// The XML namespace of the metadata element that marks a domain as Stratus'.
    public static let namespace = "https://stratus.invalid/xmlns/instance/1"

    /// The domain XML for a definition.
    public static func render(_ d: DomainDefinition) -> String {
        var body = configuration(d)
        if !d.volumes.isEmpty, let end = body.range(of: "</devices>", options: .backwards) {
            body.replaceSubrange(end.lowerBound..<end.lowerBound, with: d.volumes.map(disk).joined())
        }
        let digest = configDigest(configuration(d))
        let o = d.owner
        return """
            <domain type='\(escape(d.type))'>\
            <name>\(escape(d.name))</name>\(d.uuid.map { "<uuid>\(escape($0))</uuid>" } ?? "")\
            <metadata><stratus:instance xmlns:stratus='\(namespace)' project='\(escape(o.project))' name='\(escape(o.name))' id='\(escape(o.id))' generation='\(o.generation)' config='\(digest)'/></metadata>\
            \(body)\
            </domain>
            """
    }

    /// The digest of a definition's configuration as `render` records it in the metadata.
    public static func configDigest(of definition: DomainDefinition) -> String {
        configDigest(configuration(definition))
    }

    /// Everything of the domain but its identity: what a restart is needed to change.
    private static func configuration(_ d: DomainDefinition) -> String {
        var os = "<type arch='x86_64'\(d.type == "test" ? "" : " machine='pc'")>hvm</type>"
        if let kernel = d.kernel {
            os += "<kernel>\(escape(kernel))</kernel>"
            if let initrd = d.initrd { os += "<initrd>\(escape(initrd))</initrd>" }
            if let cmdline = d.cmdline { os += "<cmdline>\(escape(cmdline))</cmdline>" }
        } else {
            os += "<boot dev='hd'/>"
        }
        var devices = ""
        if let disk = d.disk {
            devices += "<disk type='file' device='disk'><driver name='qemu' type='\(escape(d.diskFormat))'/><source file='\(escape(disk))'/><target dev='vda' bus='virtio'/></disk>"
        }
        if let bridge = d.bridge {
            devices += "<interface type='bridge'><source bridge='\(escape(bridge))'/>"
            if let mac = d.mac { devices += "<mac address='\(escape(mac))'/>" }
            if let port = d.port { devices += "<target dev='\(escape(port))'/>" }
            devices += "<model type='virtio'/></interface>"
        }
        if let log = d.consoleLog {
            devices += "<serial type='file'><source path='\(escape(log))'/><target port='0'/></serial>"
            devices += "<console type='file'><source path='\(escape(log))'/><target type='serial' port='0'/></console>"
        }
        if d.type != "test" { devices += "<controller type='usb' model='none'/><memballoon model='none'/>" }
        return """
            <memory unit='MiB'>\(d.memoryMB)</memory><vcpu>\(d.vcpus)</vcpu>\
            <os>\(os)</os><features><acpi/></features>\
            <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>\
            <devices>\(devices)</devices>
            """
    }

    /// FNV-1a over the configuration text: a change detector, not a security boundary.
    private static func configDigest(_ body: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in body.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }

    /// The owner recorded by `render`, read from the XML libvirt gives back.
    public static func owner(in xml: String) -> DomainOwner? {
        guard let start = xml.range(of: namespace) else { return nil }
        let elementStart = xml[..<start.lowerBound].lastIndex(of: "<") ?? start.lowerBound
        return owner(element: String(xml[elementStart...]))
    }

    /// The owner recorded in the metadata element itself (`<instance project='…' …/>`, as
    /// `virDomainGetMetadata` returns it, without the namespace).
    public static func owner(element: String) -> DomainOwner? {
        guard let end = element.firstIndex(of: ">") else { return nil }
        let tag = element[..<end]
        func attribute(_ name: String) -> String? {
            for quote in ["'", "\""] {
                if let range = tag.range(of: " \(name)=\(quote)") {
                    let rest = tag[range.upperBound...]
                    if let close = rest.firstIndex(of: Character(quote)) { return unescape(String(rest[..<close])) }
                }
            }
            return nil
        }
        guard let project = attribute("project"), let name = attribute("name"), let id = attribute("id"),
            let generation = attribute("generation").flatMap(Int.init)
        else { return nil }
        return DomainOwner(project: project, name: name, id: id, generation: generation, config: attribute("config") ?? "")
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "'": out += "&apos;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }

    static func unescape(_ text: String) -> String {
        guard text.contains("&") else { return text }
        return text.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&apos;", with: "'").replacingOccurrences(of: "&quot;", with: "\"")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}
