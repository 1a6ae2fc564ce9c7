import Foundation
import StratusModel
import StratusStore

/// Waits until applied resources are Ready at their current generation, showing progress.
///
/// On a terminal one line redraws (a bar, the count, what is still waiting and why); otherwise
/// a plain line is printed as each resource becomes ready.
struct WaitProgress {
    var backend: any Backend
    var keys: [ResourceKey]
    var timeout: Duration
    var out: Terminal
    var paint: Paint

    /// Whether a resource has settled: Ready at its generation, of a kind nothing converges yet,
    /// or as far as this server converges it (a network where host networking is off).
    static func isSettled(_ resource: StoredResource) -> Bool {
        guard let status = resource.resource.status, status.observedGeneration == resource.generation || status.condition(.synced)?.reason == .noReconciler else { return false }
        if status.condition(.synced)?.reason == .noReconciler { return true }
        if status.condition(.ready)?.reason == .hostNetworkUnavailable { return true }
        return status.condition(.ready)?.status == .true
    }

    /// Returns the resources still not ready when the timeout passed (empty: all ready).
    func run() async throws -> [(ResourceKey, String)] {
        let deadline = ContinuousClock.now + timeout
        var ready = Set<ResourceKey>()
        let interactive = out.isTTY
        while true {
            var waiting: [(ResourceKey, String)] = []
            let current = Dictionary(try await backend.list(kind: nil, project: nil).map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
            for key in keys where !ready.contains(key) {
                guard let resource = current[key] else {
                    ready.insert(key)  // deleted meanwhile: nothing to wait for
                    continue
                }
                if Self.isSettled(resource) {
                    ready.insert(key)
                    if !interactive {
                        let reason = resource.resource.status?.condition(.ready)?.reason.rawValue ?? "NothingToConverge"
                        out.line("\(key) \(paint.green("ready")) (\(reason))")
                        out.flush()
                    }
                } else {
                    let condition = resource.resource.status?.condition(.ready)
                    let why = condition.map { "\($0.reason)\($0.message.map { ": \($0)" } ?? "")" } ?? (resource.resource.status == nil ? "not yet seen by a controller" : resource.displayPhase)
                    waiting.append((key, why))
                }
            }
            if interactive {
                let width = 30
                let filled = keys.isEmpty ? width : width * ready.count / keys.count
                let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
                let next = waiting.first.map { " waiting: \($0.0) (\($0.1))" } ?? ""
                let line = "[\(bar)] \(ready.count)/\(keys.count) ready\(next)"
                out.write("\r\u{1B}[K" + String(line.prefix(160)))
                out.flush()
            }
            if waiting.isEmpty {
                if interactive { out.line() }
                return []
            }
            if ContinuousClock.now >= deadline {
                if interactive { out.line() }
                return waiting
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    /// Parses `90s`, `5m`, `1h` or plain seconds.
    static func parseDuration(_ text: String) -> Duration? { Durations.parse(text) }
}
