/// The typed view of an instance's `status.details`: where it runs and what its NIC got.
///
/// Written by the compute reconciler from a node's report; read by the scheduler (the node an
/// instance was placed on), the EC2 API and the metadata service, instead of reading the
/// details' strings by key in each place.
public struct InstanceDetails: Sendable, Equatable {
    public var node: String?
    public var domain: String?
    public var domainState: String?
    /// `bridge br100`, or why the NIC was left out.
    public var network: String?
    public var mac: String?
    public var ip: String?
    /// The image files the instance was built from (`source`, `format`, `kernel`, `ramdisk`,
    /// `cmdline`): it keeps booting from them after its image is deregistered, as on EC2.
    public var image: [String: String]?

    public init(node: String? = nil, domain: String? = nil, domainState: String? = nil, network: String? = nil, mac: String? = nil, ip: String? = nil, image: [String: String]? = nil) {
        self.node = node
        self.domain = domain
        self.domainState = domainState
        self.network = network
        self.mac = mac
        self.ip = ip
        self.image = image
    }

    /// Reads the details of a status (empty when there is none).
    public init(_ status: ResourceStatus?) {
        let details = status?.details ?? [:]
        self.init(
            node: details["node"]?.stringValue, domain: details["domain"]?.stringValue, domainState: details["domainState"]?.stringValue,
            network: details["network"]?.stringValue, mac: details["mac"]?.stringValue, ip: details["ip"]?.stringValue,
            image: details["image"]?.objectValue?.compactMapValues(\.stringValue)
        )
    }

    /// Writes these details into a status, removing the ones that are nil.
    public func write(into status: inout ResourceStatus) {
        for (key, value) in [("node", node), ("domain", domain), ("domainState", domainState), ("network", network), ("mac", mac), ("ip", ip)] {
            status.details[key] = value.map(JSONValue.string)
        }
        status.details["image"] = image.map { .object($0.mapValues(JSONValue.string)) }
    }
}


extension InstanceDetails {
    /// The bridge port of an instance's NIC (`st-i-0000beef` for `i-0000beef`): named so the
    /// node's packet filter can guard the port before the guest sends a packet, and drop what
    /// comes from a Stratus port it does not know yet (`st-i-*`).
    public static func port(instanceId: String) -> String {
        "st-" + String(instanceId.prefix(12))
    }

    /// The name pattern of every instance's bridge port.
    public static let portPattern = "st-i-*"
}
