/// A tenant: an LDAP project group with role groups, a VLAN network and quotas.
public struct ProjectSpec: SpecBody {
    public static let kind = Kind.project

    /// The user who manages the project (the seed's project manager).
    public var manager: String
    public var description: String?
    public var quotas: Quotas?

    public init(manager: String, description: String? = nil, quotas: Quotas? = nil) {
        self.manager = manager
        self.description = description
        self.quotas = quotas
    }

    public mutating func applyDefaults() {
        if description == nil { description = "" }
        var quotas = self.quotas ?? Quotas()
        quotas.applyDefaults()
        self.quotas = quotas
    }

    public func validate(_ validator: inout Validator) {
        validator.name(manager, at: [.key("manager")])
        guard let quotas else { return }
        let limit = 0...1_000_000
        validator.range(quotas.instances, limit, at: [.key("quotas"), .key("instances")])
        validator.range(quotas.cores, limit, at: [.key("quotas"), .key("cores")])
        validator.range(quotas.volumes, limit, at: [.key("quotas"), .key("volumes")])
        validator.range(quotas.gigabytes, limit, at: [.key("quotas"), .key("gigabytes")])
        validator.range(quotas.addresses, limit, at: [.key("quotas"), .key("addresses")])
        validator.range(quotas.ram, 0...1_000_000_000, at: [.key("quotas"), .key("ram")], unit: " MB")
        validator.range(quotas.securityGroups, limit, at: [.key("quotas"), .key("securityGroups")])
        validator.range(quotas.objectGigabytes, limit, at: [.key("quotas"), .key("objectGigabytes")], unit: " GiB")
    }

    public func references(project: String?) -> [Reference] {
        [Reference(kind: .user, project: nil, name: manager, path: [.key("manager")])]
    }
}

/// Per-project limits; the defaults are the seed's (and Nova's for RAM and security groups).
///
/// Admission refuses a change that would take a project past one (`Store.checkQuotas`).
public struct Quotas: Codable, Sendable, Equatable {
    public var instances: Int?
    public var cores: Int?
    /// Memory of the project's instances, in MB.
    public var ram: Int?
    public var volumes: Int?
    public var gigabytes: Int?
    public var addresses: Int?
    public var securityGroups: Int?
    /// Bytes in the project's S3 buckets, in GiB (2³⁰ bytes): objects and the parts of uploads
    /// in progress. Checked by the object store as it writes (`QuotaExceeded`), not by admission.
    public var objectGigabytes: Int?

    public init(
        instances: Int? = nil, cores: Int? = nil, ram: Int? = nil, volumes: Int? = nil, gigabytes: Int? = nil, addresses: Int? = nil,
        securityGroups: Int? = nil, objectGigabytes: Int? = nil
    ) {
        self.instances = instances
        self.cores = cores
        self.ram = ram
        self.securityGroups = securityGroups
        self.volumes = volumes
        self.gigabytes = gigabytes
        self.addresses = addresses
        self.objectGigabytes = objectGigabytes
    }

    /// Fills in the quotas not given.
    public mutating func applyDefaults() {
        if instances == nil { instances = 10 }
        if cores == nil { cores = 20 }
        if ram == nil { ram = 51_200 }
        if securityGroups == nil { securityGroups = 10 }
        if volumes == nil { volumes = 10 }
        if gigabytes == nil { gigabytes = 1000 }
        if addresses == nil { addresses = 10 }
        if objectGigabytes == nil { objectGigabytes = 1000 }
    }
}
