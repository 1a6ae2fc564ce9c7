import Foundation
import Testing

@testable import StratusEC2

/// The XML writer and the terminated-instance memory that every DescribeInstances goes through.
@Suite struct RenderTests {
    static func rendered(_ nodes: [XMLNode]) -> String {
        var out = ""
        for node in nodes { node.render(into: &out) }
        return out
    }

    @Test("values are escaped whether or not they need it; control characters XML cannot carry are dropped")
    func escaping() {
        #expect(Self.rendered([.text("a", "i-0123abcd")]) == "<a>i-0123abcd</a>")
        #expect(Self.rendered([.text("a", "x<y & 'z' > \"w\"")]) == "<a>x&lt;y &amp; &apos;z&apos; &gt; &quot;w&quot;</a>")
        #expect(Self.rendered([.text("a", "line\nnext\u{1}\u{7f}é")]) == "<a>line\nnext\u{7f}é</a>")
        #expect(Self.rendered([.element("set", []), .element("item", [.text("k", "v"), .raw("<r>as is</r>")])]) == "<set/><item><k>v</k><r>as is</r></item>")
    }

    @Test("a terminated instance is kept for the retention, found by id or in the list, and then forgotten")
    func terminatedRetention() async throws {
        let memory = TerminatedInstances(retention: .milliseconds(300))
        let entry = TerminatedInstances.Entry(project: "acme", reservationId: "r-1", item: [.text("instanceId", "i-00000001")], filterValues: [:], at: .now)
        memory.add("i-00000001", entry)
        memory.add("i-00000002", entry)
        #expect(memory.entries().map(\.id).sorted() == ["i-00000001", "i-00000002"])
        #expect(memory.entries(["i-00000002", "i-00000009"]).map(\.id) == ["i-00000002"])
        #expect(Self.rendered(memory.entries(["i-00000001"])[0].entry.item) == "<instanceId>i-00000001</instanceId>", "the item is rendered once, as it was")
        try await Task.sleep(for: .milliseconds(400))
        memory.add("i-00000003", TerminatedInstances.Entry(project: "acme", reservationId: "r-2", item: [], filterValues: [:], at: .now))
        #expect(memory.entries().map(\.id) == ["i-00000003"])
    }
}
