/// A git repository whose manifests Stratus keeps applied: a directory of it, at a branch, tag
/// or commit, fetched every `interval` (and at once through its webhook), applied as one apply
/// set, with what other managers change put back (`selfHeal`).
public struct GitSyncSpec: SpecBody {
    public static let kind = Kind.gitSync

    /// A URL git can fetch (`https://…`, `ssh://…`, `git@host:path`, `file://…`) or a local path.
    public var repository: String
    /// A branch, a tag or a full commit SHA; default `HEAD`, the repository's default branch.
    public var ref: String?
    /// The directory of the repository to apply, recursively; default `.`, all of it.
    public var path: String?
    /// How often to fetch: `30s`, `1m` (the default), `1h`; at least 5 s.
    public var interval: String?
    /// The apply set the resources join; default: the GitSync's name (`gitsync` when there is none to take).
    public var applySet: String?
    /// Delete members of the set a commit no longer holds (with `apply --prune`'s budget and
    /// `stratus/protect`); default true.
    public var prune: Bool?
    /// Put back what another manager or a hand changed; false only reports it (`Synced=False,
    /// OutOfSync`); default true.
    public var selfHeal: Bool?
    /// A file on the controller's host with an SSH private key or an HTTPS token for a private repository.
    public var secretFile: String?
    /// A file on the controller's host with the secret webhooks are signed with (GitHub's and
    /// Gitea's HMAC-SHA256, GitLab's token); without it `POST /hooks/git/<name>` is refused.
    public var webhookSecretFile: String?
    /// The project for documents that do not name one.
    public var project: String?

    public init(
        repository: String, ref: String? = nil, path: String? = nil, interval: String? = nil, applySet: String? = nil,
        prune: Bool? = nil, selfHeal: Bool? = nil, secretFile: String? = nil, webhookSecretFile: String? = nil, project: String? = nil
    ) {
        self.repository = repository
        self.ref = ref
        self.path = path
        self.interval = interval
        self.applySet = applySet
        self.prune = prune
        self.selfHeal = selfHeal
        self.secretFile = secretFile
        self.webhookSecretFile = webhookSecretFile
        self.project = project
    }

    public static let defaultInterval = "1m"
    /// The shortest interval accepted: each sync runs `git fetch`.
    public static let shortestInterval = Duration.seconds(5)

    public mutating func applyDefaults() {
        if ref == nil { ref = "HEAD" }
        if path == nil { path = "." }
        if interval == nil { interval = Self.defaultInterval }
        if prune == nil { prune = true }
        if selfHeal == nil { selfHeal = true }
    }

    /// The interval as a duration (the default when unset or unreadable).
    public var intervalDuration: Duration { interval.flatMap(Durations.parse) ?? Durations.parse(Self.defaultInterval)! }

    public func validate(_ validator: inout Validator) {
        if repository.isEmpty || repository.hasPrefix("-") || repository.contains(where: { $0.isNewline || $0 == "\0" }) {
            validator.fail([.key("repository")], "expected a repository URL (https://…, ssh://…, git@host:path, file://…) or a local path")
        }
        if let ref, ref.isEmpty || ref.hasPrefix("-") || ref.contains(where: { $0.isWhitespace || $0 == "\0" || $0 == ":" || $0 == "~" || $0 == "^" }) || ref.contains("..") {
            validator.fail([.key("ref")], "expected a branch, a tag or a commit SHA, got \"\(ref)\"")
        }
        if let path, path.hasPrefix("/") || path.split(separator: "/").contains("..") || path.contains("\0") {
            validator.fail([.key("path")], "expected a directory inside the repository (relative, no \"..\"), got \"\(path)\"")
        }
        if let interval {
            if let duration = Durations.parse(interval) {
                if duration < Self.shortestInterval { validator.fail([.key("interval")], "at least 5s (each sync fetches), got \(interval)") }
            } else {
                validator.fail([.key("interval")], "expected a duration like 30s, 1m or 1h, got \"\(interval)\"")
            }
        }
        if let applySet, let problem = NameRules.problem(with: applySet, dotted: true) { validator.fail([.key("applySet")], problem) }
        validator.name(project, at: [.key("project")])
        for (field, file) in [("secretFile", secretFile), ("webhookSecretFile", webhookSecretFile)] {
            if let file, !file.hasPrefix("/") { validator.fail([.key(field)], "expected an absolute path on the controller's host, got \"\(file)\"") }
        }
    }
}

/// Durations as manifests and flags write them.
public enum Durations {
    /// Parses `250ms`, `90s`, `5m`, `1h` or plain seconds.
    public static func parse(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        for (suffix, milliseconds) in units where text.hasSuffix(suffix) {
            if let value = Double(text.dropLast(suffix.count)), value >= 0, value.isFinite, value < 1e9 { return .milliseconds(Int(value * milliseconds)) }
            return nil
        }
        return Double(text).flatMap { $0 >= 0 && $0.isFinite && $0 < 1e9 ? .milliseconds(Int($0 * 1000)) : nil }
    }
}
