/// A public (elastic) IP address from the pool, optionally associated with an instance.
public struct AddressSpec: SpecBody {
    public static let kind = Kind.address

    /// A specific address to claim; allocated from the pool when absent.
    public var publicIp: String?
    /// The instance (same project) to forward to.
    public var instance: String?

    public init(publicIp: String? = nil, instance: String? = nil) {
        self.publicIp = publicIp
        self.instance = instance
    }

    public func validate(_ validator: inout Validator) {
        validator.ipv4(publicIp, at: [.key("publicIp")])
        validator.name(instance, at: [.key("instance")])
    }

    public func references(project: String?) -> [Reference] {
        instance.map { [Reference(kind: .instance, project: project, name: $0, path: [.key("instance")])] } ?? []
    }
}
