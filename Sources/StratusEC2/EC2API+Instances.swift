import Foundation
import StratusAccess
import StratusIdentity
import StratusModel
import StratusStore

extension EC2API {
    static let reservationAnnotation = "ec2.stratus/reservation-id"
    static let clientTokenAnnotation = Store.clientTokenAnnotation
    static let launchIndexAnnotation = "ec2.stratus/launch-index"

    /// EC2's state code and name for an instance.
    static func state(_ instance: StoredResource) -> (code: Int, name: String) {
        if instance.isTerminating { return (32, "shutting-down") }
        guard case .instance(let spec) = instance.resource.spec else { return (0, "pending") }
        let phase = instance.resource.status?.phase
        switch (phase, spec.powerState ?? .running) {
        case ("Running", .running): return (16, "running")
        case ("Running", .stopped): return (64, "stopping")
        case ("Stopped", .stopped): return (80, "stopped")
        default: return (0, "pending")
        }
    }

    static func stateNode(_ name: String, _ state: (code: Int, name: String)) -> XMLNode {
        .element(name, [.text("code", "\(state.code)"), .text("name", state.name)])
    }

    /// Image ids by project and name, for the instances of one response.
    final class ImageIds {
        let store: Store
        var cache: [String: String] = [:]
        init(store: Store) { self.store = store }

        /// Records an id the caller already knows (RunInstances was given it).
        func known(_ image: String, project: String, id: String) {
            cache[image.contains("/") ? image : "\(project)/\(image)"] = id
        }

        func id(_ image: String, project: String) -> String {
            let (cacheKey, key) = Self.keys(image, project: project)
            if let id = cache[cacheKey] { return id }
            let found = (try? store.ec2Id(of: key)) ?? nil ?? ""
            cache[cacheKey] = found
            return found
        }

        /// Reads the ids of the images `instances` run, in the caller's read transaction.
        func load(_ instances: [StoredResource], _ reader: StoreReader) throws {
            for instance in instances {
                guard case .instance(let spec) = instance.resource.spec else { continue }
                let (cacheKey, key) = Self.keys(spec.image, project: instance.key.project)
                if cache[cacheKey] == nil { cache[cacheKey] = try reader.ec2Id(of: key) ?? "" }
            }
        }

        /// `project/name` and the image's key, for an image as an instance spec names it.
        private static func keys(_ image: String, project: String) -> (String, ResourceKey) {
            let parts = image.split(separator: "/").map(String.init)
            let key = ResourceKey(kind: .image, project: parts.count == 2 ? parts[0] : project, name: parts.last ?? image)
            return (parts.count == 2 ? image : "\(project)/\(image)", key)
        }
    }

    static func reservationId(_ instance: StoredResource) -> String {
        instance.metadata.annotations[reservationAnnotation] ?? "r-" + (instance.metadata.id ?? "").dropFirst(2)
    }

    /// An instance's `<item>` and the values its filters compare against.
    func instanceItem(_ instance: StoredResource, images: ImageIds, groups names: EC2NameBook, publicIps: [ResourceKey: String] = [:]) -> (item: [XMLNode], values: [String: [String]]) {
        guard case .instance(let spec) = instance.resource.spec else { return ([], [:]) }
        let id = instance.metadata.id ?? ""
        let state = Self.state(instance)
        let imageId = images.id(spec.image, project: instance.key.project)
        let zone = spec.availabilityZone ?? NodeSpec.defaultZone
        let ip = instance.resource.status?.details["ip"]?.stringValue
        let groups = (spec.securityGroups ?? []).map { names.group($0, project: instance.key.project) }
        let keyName = spec.keyName.map { names.keyName($0, project: instance.key.project) }
        var item: [XMLNode] = [
            .text("instanceId", id),
            .text("imageId", imageId),
            Self.stateNode("instanceState", state),
            .text("privateDnsName", ip.map { "ip-\($0.replacingOccurrences(of: ".", with: "-"))" } ?? ""),
            .text("dnsName", ""),
            .text("reason", ""),
        ]
        item += XMLNode.optional("keyName", keyName)
        item += [
            .text("amiLaunchIndex", instance.metadata.annotations[Self.launchIndexAnnotation] ?? "0"),
            .text("instanceType", spec.instanceType),
            .text("launchTime", Self.timestamp(instance.metadata.creationTimestamp)),
            .element("placement", [.text("availabilityZone", zone), .text("tenancy", "default")]),
            .element("monitoring", [.text("state", "disabled")]),
        ]
        item += XMLNode.optional("privateIpAddress", ip)
        let publicIp = publicIps[instance.key]
        item += XMLNode.optional("ipAddress", publicIp)
        item += [
            .set("groupSet", groups.map { [.text("groupId", $0.id ?? ""), .text("groupName", $0.name)] }),
            .text("architecture", "x86_64"),
            .text("rootDeviceType", "instance-store"),
            .text("virtualizationType", "hvm"),
            .text("hypervisor", "xen"),
            Self.tagSet(instance),
        ]
        var values: [String: [String]] = [
            "instance-id": [id], "instance-state-name": [state.name], "instance-state-code": ["\(state.code)"],
            "key-name": keyName.map { [$0] } ?? [], "availability-zone": [zone], "image-id": [imageId],
            "instance-type": [spec.instanceType], "reservation-id": [Self.reservationId(instance)],
            "group-name": groups.map(\.name), "group-id": groups.compactMap(\.id), "private-ip-address": ip.map { [$0] } ?? [],
            "owner-id": [instance.key.project], "ip-address": publicIp.map { [$0] } ?? [],
        ]
        for (key, value) in instance.metadata.labels { values["tag:\(key)"] = [value] }
        values["tag-key"] = Array(instance.metadata.labels.keys)
        values["tag-value"] = Array(instance.metadata.labels.values)
        return (item, values)
    }

    static let instanceFilters: Set<String> = [
        "instance-id", "instance-state-name", "instance-state-code", "key-name", "availability-zone", "image-id", "instance-type",
        "reservation-id", "group-name", "group-id", "private-ip-address", "ip-address", "owner-id", "tag-key", "tag-value",
    ]

    static func passes(_ values: [String: [String]], _ filters: [(name: String, values: [String])]) throws -> Bool {
        for filter in filters {
            guard filter.name.hasPrefix("tag:") || instanceFilters.contains(filter.name) else {
                throw EC2Error("InvalidParameterValue", "The filter '\(filter.name)' is invalid")
            }
            let have = values[filter.name] ?? []
            if !have.contains(where: { FilterMatch.matches($0, filter.values) }) { return false }
        }
        return true
    }

    /// The EC2 names and ids of the groups and key pairs of the caller's projects (none to read
    /// when `instances` use neither).
    func nameBook(_ call: EC2Call, for instances: [StoredResource]? = nil, in reader: StoreReader? = nil) throws -> EC2NameBook {
        func uses(_ test: (InstanceSpec) -> Bool) -> Bool {
            instances?.contains { if case .instance(let spec) = $0.resource.spec { test(spec) } else { false } } ?? true
        }
        let groups = uses { !($0.securityGroups ?? []).isEmpty }
        let keys = uses { $0.keyName != nil }
        guard groups || keys, call.seesAllProjects || call.principal.defaultProject != nil else { return EC2NameBook() }
        let project = call.seesAllProjects ? nil : call.principal.defaultProject
        if let reader { return try EC2NameBook(reader, project: project, groups: groups, keys: keys) }
        return try store.read { try EC2NameBook($0, project: project, groups: groups, keys: keys) }
    }

    func describeInstances(_ call: EC2Call) async throws -> [XMLNode] {
        let wanted = call.list("InstanceId")
        for id in wanted where !Self.isId(id, prefix: "i") { throw EC2Error.malformed("InvalidInstanceID", id) }
        let filters = call.filters()
        let images = ImageIds(store: store)
        var entries: [(id: String, project: String, reservation: String, item: [XMLNode])] = []
        let (candidates, groups) = try store.read { reader in
            // Named instances are read by id, not found among all of them.
            let candidates = wanted.isEmpty
                ? try visible(.instance, call, in: reader)
                : try wanted.compactMap { try reader.get(ec2Id: $0) }.filter { $0.key.kind == .instance && call.visible($0.key.project) }
            try images.load(candidates, reader)
            return (candidates, try nameBook(call, in: reader))
        }
        let publicIps = try publicIpsByInstance(call)
        for instance in candidates {
            guard let id = instance.metadata.id, wanted.isEmpty || wanted.contains(id) else { continue }
            let (item, values) = instanceItem(instance, images: images, groups: groups, publicIps: publicIps)
            if try Self.passes(values, filters) { entries.append((id, instance.key.project, Self.reservationId(instance), item)) }
        }
        var found = Set(entries.map(\.id))
        for (id, entry) in terminated.entries(wanted) where call.visible(entry.project) && !found.contains(id) {
            if try Self.passes(entry.filterValues, filters) {
                entries.append((id, entry.project, entry.reservationId, entry.item))
                found.insert(id)
            }
        }
        let missing = wanted.filter { !found.contains($0) }
        if !missing.isEmpty && filters.isEmpty { throw EC2Error.notFound("InvalidInstanceID", missing) }
        entries.sort { $0.id < $1.id }
        let (page, next) = try Self.page(entries, call)
        // One reservation per reservation id, in the order of its first instance.
        var order: [String] = []
        var byReservation: [String: (project: String, items: [[XMLNode]])] = [:]
        for entry in page {
            if byReservation[entry.reservation] == nil { order.append(entry.reservation) }
            byReservation[entry.reservation, default: (entry.project, [])].items.append(entry.item)
        }
        let reservations = order.map { id in
            [.text("reservationId", id), .text("ownerId", byReservation[id]!.project), Self.reservationGroups(byReservation[id]!.items), .set("instancesSet", byReservation[id]!.items)] as [XMLNode]
        }
        return [.set("reservationSet", reservations)] + XMLNode.optional("nextToken", next)
    }

    func describeInstanceStatus(_ call: EC2Call) async throws -> [XMLNode] {
        let wanted = call.list("InstanceId")
        let includeAll = call.bool("IncludeAllInstances")
        var items: [(String, [XMLNode])] = []
        for instance in try visible(.instance, call) {
            guard let id = instance.metadata.id, wanted.isEmpty || wanted.contains(id) else { continue }
            let state = Self.state(instance)
            guard includeAll || state.name == "running" else { continue }
            guard case .instance(let spec) = instance.resource.spec else { continue }
            let status = state.name == "running" ? "ok" : "not-applicable"
            let item: [XMLNode] = [
                .text("instanceId", id), .text("availabilityZone", spec.availabilityZone ?? NodeSpec.defaultZone), Self.stateNode("instanceState", state),
                .element("systemStatus", [.text("status", status)]), .element("instanceStatus", [.text("status", status)]),
            ]
            let values: [String: [String]] = ["instance-state-name": [state.name], "availability-zone": [spec.availabilityZone ?? NodeSpec.defaultZone], "instance-id": [id]]
            if call.filters().allSatisfy({ filter in (values[filter.name] ?? []).contains { FilterMatch.matches($0, filter.values) } }) { items.append((id, item)) }
        }
        // Ids that exist but are not running are simply left out (as on EC2); unknown ones are an error.
        let unknown = try wanted.filter { id in
            guard !items.contains(where: { $0.0 == id }) else { return false }
            guard let found = try store.get(ec2Id: id) else { return true }
            return found.key.kind != .instance || !call.visible(found.key.project)
        }
        if !unknown.isEmpty { throw EC2Error.notFound("InvalidInstanceID", unknown) }
        let (page, next) = try Self.page(items.sorted { $0.0 < $1.0 }, call)
        return [.set("instanceStatusSet", page.map(\.1))] + XMLNode.optional("nextToken", next)
    }

    func runInstances(_ call: EC2Call) async throws -> [XMLNode] {
        let project = try call.project()
        try call.authorize(.instance, project: project)
        let imageId = try call.required("ImageId")
        guard let minCount = try call.int("MinCount") else { throw EC2Error.missing("MinCount") }
        guard let maxCount = try call.int("MaxCount") else { throw EC2Error.missing("MaxCount") }
        guard minCount >= 1, maxCount >= minCount, maxCount <= 1000 else {
            throw EC2Error.invalid("MinCount/MaxCount", "\(minCount)/\(maxCount)", "MinCount must be at least 1 and at most MaxCount (at most 1000).")
        }
        let token = call.string("ClientToken")
        guard Self.isId(imageId, prefix: "ami") else { throw EC2Error.malformed("InvalidAMIID", imageId) }
        let typeName = call.string("InstanceType") ?? "m1.small"
        let zone = call.string("Placement.AvailabilityZone")
        // Everything a launch looks up, in one read transaction; spec-only reads decode no status
        // or metadata of what it refers to.
        let lookup = try store.read { reader -> LaunchLookup in
            // The same client token returns the same reservation instead of launching again.
            if let token {
                let earlier = try reader.instances(project: project, clientToken: token)
                if !earlier.isEmpty { return .earlier(earlier) }
            }
            guard let image = try reader.liveSpec(ec2Id: imageId), image.key.kind == .image, case .image(let imageSpec) = image.spec,
                image.key.project == project || imageSpec.public == true
            else { throw EC2Error.notFound("InvalidAMIID", [imageId]) }
            try Self.checkBootFiles(call, image: imageSpec, imageId: imageId)
            guard case .instanceType(let typeSpec)? = try reader.liveSpec(ResourceKey(kind: .instanceType, project: nil, name: typeName)) else {
                throw EC2Error.invalid("InstanceType", typeName, "No such instance type; see DescribeInstanceTypes.")
            }
            var keyName: String?
            if let key = call.string("KeyName") {
                guard let pair = try reader.named(.keyPair, ec2Name: key, project: project) else {
                    throw EC2Error("InvalidKeyPair.NotFound", "The key pair '\(key)' does not exist")
                }
                keyName = pair.key.name
            }
            var groups: [String] = []
            for group in call.list("SecurityGroup") {
                guard let found = try reader.named(.securityGroup, ec2Name: group, project: project) else {
                    throw EC2Error("InvalidGroup.NotFound", "The security group '\(group)' does not exist")
                }
                groups.append(found.key.name)
            }
            for id in call.list("SecurityGroupId") {
                let group = try resource(id, .securityGroup, call, error: "InvalidGroup", in: reader)
                guard group.key.project == project else { throw EC2Error.notFound("InvalidGroup", [id]) }
                groups.append(group.key.name)
            }
            // As in EC2-classic, an instance launched without groups joins the project's default group.
            if groups.isEmpty, try reader.liveSpec(ResourceKey(kind: .securityGroup, project: project, name: Store.defaultGroup)) != nil {
                groups = [Store.defaultGroup]
            }
            if let zone {
                let known = try zones(reader)
                if !known.contains(zone) { throw EC2Error.invalid("Placement.AvailabilityZone", zone, "Known zones: \(known.joined(separator: ", ")).") }
            }
            let (quota, counts) = try instanceQuota(project: project, reader)
            return .launch(Launch(image: image.key, vcpus: typeSpec.vcpus, keyName: keyName, groups: groups, quota: quota, counts: counts))
        }
        let launch: Launch
        switch lookup {
        case .earlier(let earlier): return try reservationResponse(earlier, project: project, call)
        case .launch(let found): launch = found
        }
        let imageName = launch.image.project == project ? launch.image.name : "\(launch.image.project)/\(launch.image.name)"
        var userData: String?
        if let encoded = call.string("UserData") {
            guard let data = Data(base64Encoded: encoded) else { throw EC2Error.invalid("UserData", "…", "User data must be base64.") }
            userData = String(decoding: data, as: UTF8.self)
        }
        let count = try launch.quota.admissible(launch.counts, vcpus: launch.vcpus, min: minCount, max: maxCount)
        let labels = try Self.tagSpecification(call, resourceType: "instance", othersAllowed: true)
        let reservation = "r-" + String(format: "%08x", UInt32.random(in: 0...UInt32.max))
        var resources: [Resource] = []
        var ids: [ResourceKey: String] = [:]
        for index in 0..<count {
            let id = Self.newId("i")
            var annotations = [Self.reservationAnnotation: reservation, Self.launchIndexAnnotation: "\(index)"]
            if let token { annotations[Self.clientTokenAnnotation] = token }
            let metadata = ObjectMeta(name: id, project: project, labels: labels, annotations: annotations)
            let spec = InstanceSpec(image: imageName, instanceType: typeName, keyName: launch.keyName, securityGroups: launch.groups, userData: userData, availabilityZone: zone)
            resources.append(Resource(metadata: metadata, spec: .instance(spec)))
            ids[ResourceKey(kind: .instance, project: project, name: id)] = id
        }
        // Admission checks the quotas again inside the write's transaction: a concurrent launch may have taken the room.
        let plan = try write(resources, presetIds: ids, keepCreated: true)
        return try reservationResponse(plan.created, project: project, call, image: (imageName, imageId))
    }

    /// A reservation's `groupSet`: its first instance's (all of a reservation's were launched with the same).
    static func reservationGroups(_ items: [[XMLNode]]) -> XMLNode {
        for node in items.first ?? [] {
            if case .element("groupSet", _) = node { return node }
        }
        return .set("groupSet", [])
    }

    private func reservationResponse(_ instances: [StoredResource], project: String, _ call: EC2Call, image: (name: String, id: String)? = nil) throws -> [XMLNode] {
        let images = ImageIds(store: store)
        if let image { images.known(image.name, project: project, id: image.id) }
        let groups = try nameBook(call, for: instances)
        let sorted = instances.sorted { Int($0.metadata.annotations[Self.launchIndexAnnotation] ?? "0") ?? 0 < Int($1.metadata.annotations[Self.launchIndexAnnotation] ?? "0") ?? 0 }
        let items = sorted.map { instanceItem($0, images: images, groups: groups).item }
        return [
            .text("reservationId", sorted.first.map(Self.reservationId) ?? ""),
            .text("ownerId", project),
            Self.reservationGroups(items),
            .set("instancesSet", items),
        ]
    }

    /// A project's instance quotas, the vCPUs of each instance type and the project's live
    /// instances per type, read together, for `InstanceQuota`.
    private func instanceQuota(project: String, _ reader: StoreReader) throws -> (InstanceQuota, counts: [String: Int]) {
        let inputs = try reader.quotaInputs(project: project)
        guard let limits = inputs.limits else {
            return (InstanceQuota(project: project, instances: nil, cores: nil, vcpus: [:]), inputs.counts)
        }
        return (InstanceQuota(project: project, instances: limits.instances ?? 10, cores: limits.cores ?? 20, vcpus: inputs.vcpus), inputs.counts)
    }

    /// The instances named by `InstanceId.N`, each checked (in the caller's read transaction, if given).
    func namedInstances(_ call: EC2Call, in reader: StoreReader? = nil) throws -> [StoredResource] {
        let ids = call.list("InstanceId")
        guard !ids.isEmpty else { throw EC2Error.missing("InstanceId") }
        var found: [StoredResource] = []
        var missing: [String] = []
        for id in ids {
            guard Self.isId(id, prefix: "i") else { throw EC2Error.malformed("InvalidInstanceID", id) }
            let stored: StoredResource?
            if let reader { stored = try reader.get(ec2Id: id) } else { stored = try store.get(ec2Id: id) }
            if let instance = stored, instance.key.kind == .instance, call.visible(instance.key.project) { found.append(instance) } else { missing.append(id) }
        }
        if !missing.isEmpty { throw EC2Error.notFound("InvalidInstanceID", missing) }
        return found
    }

    func terminateInstances(_ call: EC2Call) async throws -> [XMLNode] {
        let images = ImageIds(store: store)
        let (instances, groups) = try store.read { reader in
            let instances = try namedInstances(call, in: reader)
            try images.load(instances, reader)
            return (instances, try nameBook(call, for: instances, in: reader))
        }
        for instance in instances { try call.authorize(.instance, project: instance.key.project) }
        var items: [[XMLNode]] = []
        for instance in instances {
            let previous = Self.state(instance)
            var (item, values) = instanceItem(instance, images: images, groups: groups)
            if let index = item.firstIndex(where: { if case .element("instanceState", _) = $0 { true } else { false } }) {
                item[index] = Self.stateNode("instanceState", (48, "terminated"))
            }
            values["instance-state-name"] = ["terminated"]
            values["instance-state-code"] = ["48"]
            terminated.add(instance.metadata.id ?? "", .init(project: instance.key.project, reservationId: Self.reservationId(instance), item: item, filterValues: values, at: .now))
            items.append([.text("instanceId", instance.metadata.id ?? ""), Self.stateNode("currentState", (32, "shutting-down")), Self.stateNode("previousState", previous)])
        }
        _ = try store.delete(instances.map(\.key), reason: "terminated by \(call.principal.user) through the EC2 API")
        try detachVolumes(of: instances)
        return [.set("instancesSet", items)]
    }

    func setPower(_ call: EC2Call, running: Bool) async throws -> [XMLNode] {
        let instances = try namedInstances(call)
        var items: [[XMLNode]] = []
        for instance in instances {
            try call.authorize(.instance, project: instance.key.project)
            let previous = Self.state(instance)
            if instance.isTerminating {
                throw EC2Error("IncorrectInstanceState", "The instance '\(instance.metadata.id ?? "")' is not in a state from which it can be \(running ? "started" : "stopped").")
            }
            try update(instance) { resource in
                guard case .instance(var spec) = resource.spec else { return }
                spec.powerState = running ? .running : .stopped
                resource.spec = .instance(spec)
            }
            let current = running ? (previous.name == "running" ? previous : (0, "pending")) : (previous.name == "stopped" ? previous : (64, "stopping"))
            items.append([.text("instanceId", instance.metadata.id ?? ""), Self.stateNode("currentState", current), Self.stateNode("previousState", previous)])
        }
        return [.set("instancesSet", items)]
    }

    func rebootInstances(_ call: EC2Call) async throws -> [XMLNode] {
        let instances = try namedInstances(call)
        for instance in instances {
            try call.authorize(.instance, project: instance.key.project)
            guard Self.state(instance).name == "running" else {
                throw EC2Error("IncorrectInstanceState", "The instance '\(instance.metadata.id ?? "")' is not running.")
            }
            guard let node else { throw EC2Error("Unsupported", "This endpoint runs no hypervisor.") }
            try await node.reboot(instance)
            try store.recordEvent(instance.key, reason: "Rebooted", message: "reboot requested through the EC2 API")
        }
        return [.text("return", "true")]
    }

    func getConsoleOutput(_ call: EC2Call) async throws -> [XMLNode] {
        let id = try call.required("InstanceId")
        let instance = try resource(id, .instance, call, error: "InvalidInstanceID")
        // The serial console the instance's node keeps for the guest, asked of that node (an agent
        // on another host, through the broker); empty on the test driver, or before it is placed.
        let text: String
        if let node {
            // A node that cannot be asked (lost, gone) has no output to give, as on EC2; the
            // reason is the node's status, not something to tell an EC2 client.
            text = (try? await node.console(instance)) ?? ""
        } else {
            text = (try? String(contentsOfFile: "\(dataDirectory)/instances/\(id)/console.log", encoding: .utf8)) ?? ""
        }
        return [.text("instanceId", id), .text("timestamp", Self.timestamp(Timestamp.string(Date()))), .text("output", Data(text.suffix(65536).utf8).base64EncodedString())]
    }

    /// `KernelId` and `RamdiskId`: an instance boots its image's own kernel and ramdisk, whose ids
    /// DescribeImages shows (`aki-`/`ari-` and the image's hex). Naming those is accepted, as
    /// older clients do; naming any other is refused rather than silently ignored.
    static func checkBootFiles(_ call: EC2Call, image: ImageSpec, imageId: String) throws {
        for (parameter, prefix, present) in [("KernelId", "aki", image.kernel != nil), ("RamdiskId", "ari", image.ramdisk != nil)] {
            guard let id = call.string(parameter) else { continue }
            guard isId(id, prefix: prefix) else { throw EC2Error.invalid(parameter, id, "Expected \(prefix)- and 8 to 17 lowercase hex digits.") }
            let own = "\(prefix)-" + imageId.dropFirst(4)
            guard present, id == own else {
                let have = present ? "its own, \(own)" : "none"
                throw EC2Error("Unsupported", "Instances boot their image's own \(prefix == "aki" ? "kernel" : "ramdisk") (image \(imageId) has \(have)); \(parameter) \(id) cannot be used. Register an image with that \(prefix == "aki" ? "kernel" : "ramdisk") instead.")
            }
        }
    }

    /// What RunInstances found before launching: an earlier launch with the same client token,
    /// or what the new instances need.
    private enum LaunchLookup {
        case earlier([StoredResource])
        case launch(Launch)
    }

    /// What new instances need: the image, the type's vCPUs, the security groups by name, and
    /// the project's quota with its live instances per type.
    private struct Launch {
        var image: ResourceKey
        var vcpus: Int
        var keyName: String?
        var groups: [String]
        var quota: InstanceQuota
        var counts: [String: Int]
    }

    /// Zones: the nodes' zones and the default one.
    func zones(_ reader: StoreReader? = nil) throws -> [String] {
        var zones = Set([NodeSpec.defaultZone])
        for node in try reader?.list(kind: .node) ?? store.list(kind: .node) { if case .node(let spec) = node.resource.spec { zones.insert(spec.zone ?? NodeSpec.defaultZone) } }
        return zones.sorted()
    }
}

/// A project's quotas on instances and cores (nil: none, for a project that is gone).
struct InstanceQuota: Sendable {
    var project: String
    var instances: Int?
    var cores: Int?
    /// vCPUs by instance type (an unknown type counts one).
    var vcpus: [String: Int]

    /// How many more instances of `vcpus` each the quotas admit on top of `counts` (live instances
    /// per type): `max`, else at least `min`, else `InstanceLimitExceeded`.
    func admissible(_ counts: [String: Int], vcpus needed: Int, min: Int, max: Int) throws -> Int {
        guard let instanceLimit = instances, let coreLimit = cores else { return max }
        let (used, usedCores) = usage(counts)
        let allowed = Swift.min(instanceLimit - used, (coreLimit - usedCores) / Swift.max(1, needed))
        guard allowed >= min else {
            throw EC2Error(
                "InstanceLimitExceeded",
                "Your quota allows \(Swift.max(0, allowed)) more instance(s) of this type in project \(project) (instances \(used)/\(instanceLimit), cores \(usedCores)/\(coreLimit)); you requested \(min)."
            )
        }
        return Swift.min(max, allowed)
    }

    private func usage(_ counts: [String: Int]) -> (instances: Int, cores: Int) {
        (counts.values.reduce(0, +), counts.reduce(0) { $0 + (vcpus[$1.key] ?? 1) * $1.value })
    }
}
