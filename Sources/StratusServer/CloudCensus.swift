import Foundation
import StratusModel
import StratusStore
import StratusTelemetry
import Synchronization

/// The gauges read from the store at each scrape: resources by kind, phase and Ready; nodes by
/// Ready with their capacity and what instances take of it; build info.
///
/// A label set seen at an earlier scrape and gone now is set to 0, not left at its last value.
final class CloudCensus: Sendable {
    let store: Store
    let telemetry: Telemetry
    private let seen = Mutex<Set<[String]>>([])

    init(store: Store, telemetry: Telemetry) {
        self.store = store
        self.telemetry = telemetry
    }

    /// Registers the collector with `telemetry`.
    func install() {
        telemetry.set(.buildInfo, [("version", StratusBuild.version), ("swift", Self.swiftVersion)], 1)
        telemetry.onScrape { [self] in collect() }
    }

    func collect() {
        guard let rows = try? store.census() else { return }
        var counts: [[String]: Int] = [:]
        for row in rows { counts[[row.kind, row.phase, row.ready], default: 0] += row.count }
        let gone = seen.withLock { seen in
            let gone = seen.subtracting(counts.keys)
            seen.formUnion(counts.keys)
            return gone
        }
        for labels in gone { telemetry.set(.resources, Self.labels(labels), 0) }
        for (labels, count) in counts { telemetry.set(.resources, Self.labels(labels), Double(count)) }

        let nodes = (try? store.list(kind: .node)) ?? []
        var ready = 0, vcpus = 0, memoryMB = 0
        for node in nodes {
            if node.resource.status?.condition(.ready)?.status == .true { ready += 1 }
            vcpus += node.resource.status?.details["vcpus"]?.intValue ?? 0
            memoryMB += node.resource.status?.details["memoryMB"]?.intValue ?? 0
        }
        telemetry.set(.nodes, [("ready", "True")], Double(ready))
        telemetry.set(.nodes, [("ready", "False")], Double(nodes.count - ready))
        telemetry.set(.nodeCapacity, [("resource", "vcpus")], Double(vcpus))
        telemetry.set(.nodeCapacity, [("resource", "memory_bytes")], Double(memoryMB) * 1_048_576)
        if let totals = try? store.instanceTotals() {
            telemetry.set(.nodeAllocated, [("resource", "instances")], Double(totals.instances))
            telemetry.set(.nodeAllocated, [("resource", "vcpus")], Double(totals.vcpus))
            telemetry.set(.nodeAllocated, [("resource", "memory_bytes")], Double(totals.memoryMB) * 1_048_576)
        }
    }

    static func labels(_ values: [String]) -> [(String, String)] {
        [("kind", values[0]), ("phase", values[1].isEmpty ? "None" : values[1]), ("ready", values[2])]
    }

    static var swiftVersion: String {
        #if swift(>=6.3)
        "6.3"
        #elseif swift(>=6.2)
        "6.2"
        #else
        "6"
        #endif
    }
}
