import Foundation
import StratusIdentity
import StratusModel
import StratusStore

extension EC2API {
    func describeRegions(_ call: EC2Call) throws -> [XMLNode] {
        let wanted = call.list("RegionName")
        guard wanted.isEmpty || wanted.contains(region) else { throw EC2Error("InvalidParameterValue", "Invalid region: \(wanted.joined(separator: ", ")); this endpoint serves \(region)") }
        return [.set("regionInfo", [[.text("regionName", region), .text("regionEndpoint", endpoint.isEmpty ? "http://\(call.host)/services/Cloud" : endpoint), .text("optInStatus", "opt-in-not-required")]])]
    }

    func describeAvailabilityZones(_ call: EC2Call) throws -> [XMLNode] {
        let wanted = call.list("ZoneName")
        let filters = call.filters()
        let known = try zones()
        if let unknown = wanted.first(where: { !known.contains($0) }) {
            throw EC2Error.invalid("ZoneName", unknown, "Invalid availability zone: [\(unknown)]; known zones: \(known.joined(separator: ", ")).")
        }
        let names = ["zone-name", "zone-id", "zone-type", "state", "region-name", "group-name", "opt-in-status", "message", "parent-zone-id", "parent-zone-name"]
        if let filter = filters.first(where: { !names.contains($0.name) }) {
            throw EC2Error.invalid("Filter", filter.name, "The filter '\(filter.name)' is invalid; use one of \(names.joined(separator: ", ")).")
        }
        let items: [[XMLNode]] = known.filter { zone in
            (wanted.isEmpty || wanted.contains(zone)) && filters.allSatisfy { filter in
                switch filter.name {
                case "zone-name", "zone-id": FilterMatch.matches(zone, filter.values)
                case "zone-type": FilterMatch.matches("availability-zone", filter.values)
                case "state": FilterMatch.matches("available", filter.values)
                case "region-name", "group-name": FilterMatch.matches(region, filter.values)
                case "opt-in-status": FilterMatch.matches("opt-in-not-required", filter.values)
                default: false  // no messages, no parent zones
                }
            }
        }.map { zone in
            [.text("zoneName", zone), .text("zoneState", "available"), .text("regionName", region), .text("zoneId", zone), .text("zoneType", "availability-zone"), .set("messageSet", [])]
        }
        return [.set("availabilityZoneInfo", items)]
    }

    func describeInstanceTypes(_ call: EC2Call) throws -> [XMLNode] {
        let wanted = call.list("InstanceType")
        var items: [(String, [XMLNode])] = []
        for type in try store.list(kind: .instanceType) {
            guard case .instanceType(let spec) = type.resource.spec, wanted.isEmpty || wanted.contains(type.key.name) else { continue }
            items.append((type.key.name, [
                .text("instanceType", type.key.name), .text("currentGeneration", "true"), .text("hypervisor", "xen"),
                .element("vCpuInfo", [.text("defaultVCpus", "\(spec.vcpus)")]),
                .element("memoryInfo", [.text("sizeInMiB", "\(spec.memoryMB)")]),
                .text("instanceStorageSupported", spec.diskGB > 0 ? "true" : "false"),
                .element("instanceStorageInfo", [.text("totalSizeInGB", "\(spec.diskGB)")]),
            ]))
        }
        let unknown = wanted.filter { name in !items.contains { $0.0 == name } }
        if !unknown.isEmpty { throw EC2Error("InvalidInstanceType", "The following supplied instance types do not exist: [\(unknown.joined(separator: ", "))]") }
        let (page, next) = try Self.page(items.sorted { $0.0 < $1.0 }, call)
        return [.set("instanceTypeSet", page.map(\.1))] + XMLNode.optional("nextToken", next)
    }
}
