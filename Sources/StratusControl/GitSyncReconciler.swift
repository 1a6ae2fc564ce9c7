import Foundation
import Logging
import StratusCompute
import StratusModel
import StratusStore
import Synchronization

/// Converges `GitSync`s: fetches the repository (shallow, into `DATA/git/<name>`), applies the
/// directory at that commit as one apply set, and puts back what another manager changed.
///
/// Each sync fetches and applies; a sync whose commit is the one already applied only finds
/// drift. Changes to the set's resources by anyone else (an EC2 call, another apply set, a
/// `stratus delete`) are seen in the change feed by `watch` and trigger a sync without a
/// fetch, so self-heal does not wait for the interval. Nothing of a commit that fails to load
/// or to apply is written (one transaction); its errors, with file:line:column at that commit,
/// go into the status.
public final class GitSyncReconciler: Reconciler {
    public let name = "gitsync"
    public let kinds: Set<Kind> = [.gitSync]
    public var concurrency: Int { 2 }

    private let store: Store
    /// Where checkouts live: `DATA/git`.
    private let directory: String
    private let logger: Logger
    private let git: String
    /// The controller's queue, once `watch` runs: webhooks and self-heal reach it through here.
    private let enqueue = Mutex<(@Sendable (ResourceKey) async -> Void)?>(nil)
    /// What each GitSync applied last: its set, its manager and its resources.
    private let owned = Mutex<[String: Owned]>([:])
    /// GitSyncs queued for a repair only: their checkout is applied again without a fetch.
    private let healOnly = Mutex<Set<String>>([])

    struct Owned {
        var manager: String
        var applySet: String
        var keys: Set<ResourceKey>
    }

    /// Whether an event's message says exactly `manager` wrote it ("created by git:site: …",
    /// "updated by git:site (taken over …)"), not another whose name starts the same.
    static func writtenBy(_ manager: String, _ message: String) -> Bool {
        for verb in ["created by ", "updated by "] where message.hasPrefix(verb + manager) {
            let rest = message.dropFirst(verb.count + manager.count)
            if rest.isEmpty || rest.first == ":" || rest.first == " " { return true }
        }
        return false
    }

    /// What a commit may not hold: the sync acts with the rights of the cloudadmin who made the
    /// GitSync, so a repository must not be able to make more GitSyncs (each reads files on this
    /// host) or take a resource another GitSync owns (the two would revert each other forever).
    static func refusal(_ change: PlannedChange, manager: String) -> String? {
        if change.key.kind == .gitSync {
            return "\(change.key): a synced repository may not \(change.action == .delete ? "delete" : "declare") a GitSync; a cloudadmin applies GitSyncs with stratus apply"
        }
        if let previous = change.previousManager, previous.hasPrefix("git:"), previous != manager, change.action != .create {
            return "\(change.key) belongs to \(previous); two GitSyncs may not declare the same resource (they would revert each other)"
        }
        return nil
    }

    /// The annotations every resource a sync writes carries: the commit's SHA and subject line.
    public static let revisionAnnotation = Store.revisionStamp
    public static let subjectAnnotation = "stratus/revision-subject"

    /// The field manager of a GitSync's writes.
    public static func manager(_ name: String) -> String { "git:\(name)" }

    public init(store: Store, directory: String, logger: Logger = Logger(label: "stratus.gitsync")) {
        self.store = store
        self.directory = directory
        self.logger = logger
        self.git = ["/usr/bin/git", "/usr/local/bin/git", "/bin/git"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/git"
    }

    // MARK: - Triggers

    /// Queues an immediate sync (with a fetch) of the named GitSync: the webhook's way in.
    /// False when the controller is not running yet.
    public func trigger(_ name: String) async -> Bool {
        guard let enqueue = enqueue.withLock({ $0 }) else { return false }
        healOnly.withLock { _ = $0.remove(name) }
        await enqueue(ResourceKey(kind: .gitSync, project: nil, name: name))
        return true
    }

    public func watch(_ enqueue: @escaping @Sendable (ResourceKey) async -> Void) async {
        self.enqueue.withLock { $0 = enqueue }
        // Follows the change feed for writes to a synced resource by another manager.
        var cursor = (try? store.lastEventSeq()) ?? 0
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(200))
            let owners = owned.withLock { $0 }
            guard !owners.isEmpty else {
                cursor = (try? store.lastEventSeq()) ?? cursor
                continue
            }
            guard let events = try? store.events(after: cursor, limit: 1000), let last = events.last?.seq else { continue }
            cursor = last
            var due = Set<String>()
            for event in events where StoredEvent.desiredStateReasons.contains(event.reason) {
                guard let key = event.key else { continue }
                for (name, owner) in owners where !due.contains(name) && owner.keys.contains(key) {
                    // Our own writes say "created by git:<name>" / "updated by git:<name>"; prunes are ours too.
                    let ours = event.reason == "Pruned" && event.message.contains("apply set \"\(owner.applySet)\"")
                        || Self.writtenBy(owner.manager, event.message)
                    if !ours { due.insert(name) }
                }
            }
            for name in due {
                healOnly.withLock { _ = $0.insert(name) }
                await enqueue(ResourceKey(kind: .gitSync, project: nil, name: name))
            }
        }
    }

    // MARK: - Reconcile

    public func reconcile(_ resource: StoredResource) async -> ReconcileResult {
        guard case .gitSync(let spec) = resource.resource.spec else {
            return .failed(reason: .wrongKind, message: "not a GitSync", retryable: false)
        }
        let name = resource.key.name
        let started = ContinuousClock.now
        let interval = spec.intervalDuration
        var status = resource.resource.status ?? ResourceStatus()
        status.phase = status.phase ?? "Pending"
        let now = Timestamp.string(Date())
        let checkout = (directory as NSString).appendingPathComponent(name)
        let repairOnly = healOnly.withLock { $0.remove(name) != nil } && FileManager.default.fileExists(atPath: checkout + "/.git")

        // 1. The commit.
        let commit: (sha: String, subject: String)
        do {
            commit = try await ChildProcess.offPool { [self] in
                repairOnly ? try self.checkedOut(checkout) : try self.fetch(spec, into: checkout)
            }
        } catch {
            status.phase = "Failed"
            status.setCondition(Condition(type: .synced, status: .false, reason: .fetchFailed, message: "\(error)", lastTransitionTime: now))
            status.setCondition(Condition(type: .ready, status: .false, reason: .fetchFailed, message: "\(error)", lastTransitionTime: now))
            return .requeue(status, after: interval)
        }
        status.details["lastAttemptedRevision"] = .string(commit.sha)
        status.details["lastAttemptTime"] = .string(now)

        // 2. The manifests at that commit; one error and nothing is applied.
        let documents: [ManifestDocument]
        do {
            let (store, path, project) = (self.store, spec.path ?? ".", spec.project)
            documents = try await ChildProcess.offPool { [self] in
                try ManifestLoader.load(try self.sources(checkout: checkout, path: path), defaultProject: project, cache: store, cacheSalt: "server")
            }
        } catch {
            return failed(&status, reason: .syncFailed, commit: commit, error: error, interval: interval, now: now)
        }
        let applySet = spec.applySet ?? name
        let manager = Self.manager(name)
        let before = owned.withLock { state in
            defer { state[name] = Owned(manager: manager, applySet: applySet, keys: Set(documents.map(\.key))) }
            return state[name]?.keys ?? []
        }

        // 3. Apply (or, with selfHeal off and the commit already applied, only compare).
        var options = ApplyOptions(applySet: applySet, manager: manager, prune: spec.prune ?? true)
        options.stamp = [Self.revisionAnnotation: commit.sha, Self.subjectAnnotation: commit.subject]
        options.authorize = { change in
            if let refusal = Self.refusal(change, manager: manager) { throw StoreError.conflict(refusal) }
        }
        let newCommit = status.details["lastSyncedRevision"]?.stringValue != commit.sha
        let heal = spec.selfHeal ?? true
        let plan: ApplyPlan
        do {
            let (store, write, options) = (self.store, newCommit || heal, options)
            plan = try await ChildProcess.offPool { write ? try store.apply(documents, options: options) : try store.plan(documents, options: options) }
        } catch {
            return failed(&status, reason: .syncFailed, commit: commit, error: error, interval: interval, now: now)
        }
        let changed = plan.changes.filter { $0.action != .unchanged }
        // What someone else changed: a revert names them; without selfHeal it is only reported.
        // A create is a revert only of what this sync applied before (and someone deleted since).
        let foreign = changed.filter { change in
            if change.action == .create { return before.contains(change.key) }
            return !newCommit || change.previousManager.map { $0 != manager } ?? false
        }
        let drift = foreign.map { describe($0, manager: manager) }
        status.details["errors"] = nil
        if !newCommit && !heal && !drift.isEmpty {
            status.phase = "OutOfSync"
            status.details["outOfSync"] = .array(drift.prefix(50).map { .string($0) })
            let message = "\(drift.count) resource\(drift.count == 1 ? "" : "s") differ\(drift.count == 1 ? "s" : "") from \(commit.sha.prefix(12)) (selfHeal is off): \(drift.prefix(3).joined(separator: "; "))\(drift.count > 3 ? "; …" : "")"
            status.setCondition(Condition(type: .synced, status: .false, reason: .outOfSync, message: message, lastTransitionTime: now))
        } else {
            if newCommit || !changed.isEmpty { recordSync(resource.key, plan: plan, commit: commit, newCommit: newCommit) }
            if heal { for (change, text) in zip(foreign, drift) { try? store.recordEvent(change.key, type: "Warning", reason: "Reverted", message: "reverted by \(manager): \(text)") } }
            status.phase = "Synced"
            status.details["outOfSync"] = nil
            status.details["lastSyncedRevision"] = .string(commit.sha)
            status.details["lastSyncedSubject"] = .string(commit.subject)
            status.details["lastSyncTime"] = .string(now)
            if !changed.isEmpty || newCommit {
                status.details["lastChanges"] = .string("\(plan.count(.create)) created, \(plan.count(.update)) updated, \(plan.count(.delete)) deleted")
            }
            status.setCondition(Condition(type: .synced, status: .true, reason: .reconciled, message: "at \(commit.sha.prefix(12)) \(commit.subject)", lastTransitionTime: now))
        }
        status.details["lastCycleSeconds"] = .double(Self.seconds(ContinuousClock.now - started))
        // 4. The health of the set's resources.
        if let health = try? store.applySetHealth(applySet) {
            status.details["health"] = .string(health.summary)
            status.details["resources"] = .int(health.total)
            let ready = health.failed == 0
            status.setCondition(Condition(
                type: .ready, status: ConditionStatus(ready), reason: ready ? .reconciled : .resourcesFailing,
                message: ready ? nil : "\(health.failed) of the set's resources are not ready", lastTransitionTime: now))
        }
        return .requeue(status, after: interval)
    }

    /// A duration in seconds, to the millisecond.
    static func seconds(_ duration: Duration) -> Double {
        ((Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15).rounded()) / 1000
    }

    /// One line a user reads: what differs and who changed it.
    private func describe(_ change: PlannedChange, manager: String) -> String {
        let who = change.previousManager.map { $0 == manager ? "" : " changed by \($0)" } ?? ""
        switch change.action {
        case .create:
            let deletion = (try? store.events(for: change.key).last { $0.reason == "Deleting" })?.message
            return "\(change.key): deleted\(deletion.map { " (\($0))" } ?? ""), put back"
        case .delete:
            return "\(change.key): not in the commit\(who)"
        case .update:
            if change.notes.contains("deletion cancelled") {
                let deletion = (try? store.events(for: change.key).last { $0.reason == "Deleting" })?.message
                return "\(change.key): deletion\(deletion.map { " (\($0))" } ?? "") cancelled"
            }
            let fields = change.fields.prefix(3).map(\.path).joined(separator: ", ") + (change.fields.count > 3 ? ", …" : "")
            return "\(change.key): \(fields.isEmpty ? "apply set" : fields)\(who)"
        case .unchanged:
            return "\(change.key)"
        }
    }

    private func recordSync(_ key: ResourceKey, plan: ApplyPlan, commit: (sha: String, subject: String), newCommit: Bool) {
        let what = "\(plan.count(.create)) created, \(plan.count(.update)) updated, \(plan.count(.delete)) deleted"
        let message = newCommit ? "synced \(commit.sha.prefix(12)) \"\(commit.subject)\": \(what)" : "repaired drift from \(commit.sha.prefix(12)): \(what)"
        try? store.recordEvent(key, type: "Normal", reason: newCommit ? "Synced" : "Healed", message: message)
        logger.info("\(message)", metadata: ["stratus.resource": "\(key)"])
    }

    private func failed(_ status: inout ResourceStatus, reason: ConditionReason, commit: (sha: String, subject: String), error: any Error, interval: Duration, now: String) -> ReconcileResult {
        let lines: [String]
        if let errors = error as? ManifestErrors {
            lines = errors.errors.map(\.description)
        } else {
            lines = ["\(error)"]
        }
        status.phase = "Failed"
        status.details["errors"] = .array(lines.prefix(50).map { .string($0) })
        let message = "commit \(commit.sha.prefix(12)) \"\(commit.subject)\" not applied, nothing changed: \(lines.first ?? "")\(lines.count > 1 ? " (and \(lines.count - 1) more)" : "")"
        status.setCondition(Condition(type: .synced, status: .false, reason: reason, message: message, lastTransitionTime: now))
        return .requeue(status, after: interval)
    }

    public func finalize(_ resource: StoredResource) async -> ReconcileResult {
        // The resources stay (as `kubectl delete` of an Argo CD application without its finalizer):
        // delete them with `stratus delete`, or prune them by emptying the directory first.
        owned.withLock { _ = $0.removeValue(forKey: resource.key.name) }
        try? FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(resource.key.name))
        return .done(ResourceStatus(phase: "Deleted"))
    }

    // MARK: - git

    /// Fetches `ref` (depth 1) and checks it out; returns the commit.
    func fetch(_ spec: GitSyncSpec, into checkout: String) throws -> (sha: String, subject: String) {
        try FileManager.default.createDirectory(atPath: checkout, withIntermediateDirectories: true)
        var environment = ["GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/true", "LC_ALL": "C"]
        var config: [String] = []
        if let file = spec.secretFile {
            let secret = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            if secret.contains("PRIVATE KEY") {
                guard !file.contains(where: { "'\\\"$`\n".contains($0) }) else { throw GitError("secretFile \(file): the path may not hold quotes, backslashes, $ or backquotes (it goes into ssh's command line)") }
                config += ["-c", "core.sshCommand=ssh -i '\(file)' -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new"]
            } else if !secret.isEmpty {
                // A token: an HTTP header from the environment, never on the command line.
                environment["GIT_CONFIG_COUNT"] = "1"
                environment["GIT_CONFIG_KEY_0"] = "http.extraHeader"
                environment["GIT_CONFIG_VALUE_0"] = "Authorization: Bearer \(secret.trimmingCharacters(in: .whitespacesAndNewlines))"
            } else {
                throw GitError("cannot read secretFile \(file)")
            }
        }
        if !FileManager.default.fileExists(atPath: checkout + "/.git") {
            try run(["init", "-q", checkout], environment: environment)
        }
        let repository = Self.isLocalPath(spec.repository) ? "file://" + spec.repository : spec.repository
        try run(config + ["-C", checkout, "fetch", "-q", "--depth", "1", "--no-tags", repository, spec.ref ?? "HEAD"], environment: environment, timeout: 300)
        // Symbolic links are checked out as plain files holding their target: a link to a file of
        // this host must never be read as a manifest (its text would show in errors).
        try run(["-C", checkout, "-c", "advice.detachedHead=false", "-c", "core.symlinks=false", "checkout", "-q", "--force", "--detach", "FETCH_HEAD"], environment: environment)
        try run(["-C", checkout, "clean", "-q", "-ffdx"], environment: environment)
        return try checkedOut(checkout)
    }

    /// The commit checked out now.
    func checkedOut(_ checkout: String) throws -> (sha: String, subject: String) {
        let line = try run(["-C", checkout, "log", "-1", "--format=%H %s", "HEAD"], environment: ["LC_ALL": "C"])
        let text = line.trimmingCharacters(in: .newlines)
        let parts = text.split(separator: " ", maxSplits: 1)
        guard let sha = parts.first, sha.count >= 40 else { throw GitError("git log printed \"\(text)\"") }
        return (String(sha), parts.count > 1 ? String(parts[1]) : "")
    }

    /// The manifests under `path` of the checkout, named as in the repository (`envs/prod/web.yaml`).
    func sources(checkout: String, path: String) throws -> [ManifestSource] {
        let root = path == "." || path.isEmpty ? checkout : (checkout as NSString).appendingPathComponent(path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory) else { throw GitError("the commit has no \(path)") }
        let found = try ManifestLoader.sources(for: [root]).filter { !$0.name.contains("/.git/") }
        if found.isEmpty { throw GitError("no manifests (*.yaml, *.yml, *.json) in \(path) at this commit") }
        let prefix = checkout.hasSuffix("/") ? checkout : checkout + "/"
        return found.map { ManifestSource(name: $0.name.hasPrefix(prefix) ? String($0.name.dropFirst(prefix.count)) : $0.name, data: $0.data) }
    }

    @discardableResult
    private func run(_ arguments: [String], environment: [String: String], timeout: Int = 60) throws -> String {
        let result = try ChildProcess.run("/usr/bin/timeout", ["\(timeout)", git] + arguments, environment: environment)
        guard result.status == 0 else {
            let text = result.errors.trimmingCharacters(in: .whitespacesAndNewlines)
            throw GitError(result.status == 124 ? "git \(arguments.first { !$0.hasPrefix("-") && $0 != "-C" } ?? "") timed out after \(timeout) s" : "git: \(text.isEmpty ? "exit \(result.status)" : text)")
        }
        return result.output
    }

    static func isLocalPath(_ repository: String) -> Bool { repository.hasPrefix("/") }
}

/// A git command that failed, with what git said.
struct GitError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
