import Foundation
import GRDB
import StratusModel
import Testing

@testable import StratusStore

/// The census of /metrics and the dashboard, the status summary columns it reads, and paged lists.
@Suite struct CensusTests {
    static func status(_ phase: String, ready: ConditionStatus, synced: (ConditionStatus, ConditionReason)? = nil) -> ResourceStatus {
        var status = ResourceStatus(phase: phase)
        status.setCondition(Condition(type: .ready, status: ready, reason: .reconciled, message: nil, lastTransitionTime: "2026-12-03T00:00:00Z"))
        if let synced { status.setCondition(Condition(type: .synced, status: synced.0, reason: synced.1, message: nil, lastTransitionTime: "2026-12-03T00:00:00Z")) }
        return status
    }

    @Test("resources are counted by kind, project, phase, Ready and Synced, and sorted into the health bar's categories")
    func census() throws {
        let store = try makeStore()
        try store.apply(try documents(acme(instances: 4, labels: "{tier: web}")), options: ApplyOptions(applySet: "a"))
        let key = { (index: Int) in ResourceKey(kind: .instance, project: "acme", name: "web-\(index)") }
        try store.updateStatus(key(0), Self.status("Running", ready: .true, synced: (.true, .reconciled)))
        try store.updateStatus(key(1), Self.status("Running", ready: .true, synced: (.true, .reconciled)))
        try store.updateStatus(key(2), Self.status("Pending", ready: .false, synced: (.false, .imageUnavailable)))
        _ = try store.delete([key(3)], reason: "test")
        let rows = try store.census().filter { $0.kind == "Instance" }
        var health: [CensusRow.Health: Int] = [:]
        for row in rows { health[row.health, default: 0] += row.count }
        #expect(health == [.ready: 2, .failed: 1, .terminating: 1], "\(rows)")
        #expect(rows.first { $0.phase == "Running" }?.ready == "True" && rows.first { $0.phase == "Running" }?.count == 2)
        #expect(rows.contains { $0.phase == "" && $0.ready == "Unknown" && $0.terminating }, "one never looked at, being deleted: \(rows)")
        try store.updateStatus(key(1), Self.status("Running", ready: .true, synced: (.false, .outOfSync)))
        #expect(try store.census().filter { $0.kind == "Instance" && $0.health == .drifted }.map(\.count) == [1], "a set out of sync is Drifted")
    }

    @Test("a page of a list is filtered by project, phase and label in SQL, and counts every match")
    func paging() throws {
        let store = try makeStore()
        try store.apply(try documents(acme(instances: 120, labels: "{tier: web}")), options: ApplyOptions(applySet: "a"))
        for index in 0..<30 { try store.updateStatus(ResourceKey(kind: .instance, project: "acme", name: "web-\(index)"), Self.status("Running", ready: .true)) }
        let first = try store.read { try $0.page(ResourceFilter(kind: .instance, projects: ["acme"]), offset: 0, limit: 50) }
        #expect(first.total == 120 && first.items.count == 50 && first.items.first?.key.name == "web-0")
        let last = try store.read { try $0.page(ResourceFilter(kind: .instance, projects: ["acme"]), offset: 100, limit: 50) }
        #expect(last.items.count == 20)
        let running = try store.read { try $0.page(ResourceFilter(kind: .instance, projects: nil, phase: "Running"), offset: 0, limit: 50) }
        #expect(running.total == 30)
        let labelled = try store.read { try $0.page(ResourceFilter(kind: .instance, label: ("tier", "web")), offset: 0, limit: 10) }
        #expect(labelled.total == 120)
        let other = try store.read { try $0.page(ResourceFilter(kind: .instance, label: ("tier", "db")), offset: 0, limit: 10) }
        #expect(other.total == 0)
        let none = try store.read { try $0.page(ResourceFilter(kind: .instance, projects: []), offset: 0, limit: 10) }
        #expect(none.total == 0, "no project visible: nothing listed")
    }

    @Test("a store of v18 gets the status summary columns filled from the statuses it holds")
    func backfill() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("stratus-v18-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let old = try DatabaseQueue(path: path)
        try Store.migrator.migrate(old, upTo: "v18-event-request-id")
        try old.write { db in
            try db.execute(sql: """
                INSERT INTO resource (kind, project, name, ec2Id, spec, specHash, generation, manager, createdAt, updatedAt, status)
                VALUES ('Volume', 'acme', 'data', 'vol-0000beef', '{"sizeGB":5}', 'x', 1, 'api', '', '',
                  '{"conditions":[{"lastTransitionTime":"t","reason":"Reconciled","status":"True","type":"Ready"},{"lastTransitionTime":"t","reason":"Reconciled","status":"True","type":"Synced"}],"details":{},"phase":"Available"}')
                """)
        }
        try old.close()
        let store = try Store(writer: DatabaseQueue(path: path), seedCatalog: false)
        #expect(try store.census() == [CensusRow(kind: "Volume", project: "acme", phase: "Available", ready: "True", synced: "True:Reconciled", terminating: false, count: 1)])
    }
}
