/// The metrics Stratus exports, each with its help text: one list, so names follow one
/// convention (`stratus_`, base units, `_total` for counters) and every family is documented.
///
/// Labels are bounded sets (an API, an action, a kind, a status code): never a resource's name
/// or id, which would make one series per resource.
public struct MetricName: Sendable, Hashable {
    public let name: String

    init(_ name: String) { self.name = name }

    public static let apiRequests = MetricName("stratus_api_requests_total")
    public static let apiRequestDuration = MetricName("stratus_api_request_duration_seconds")
    public static let reconciles = MetricName("stratus_reconciles_total")
    public static let reconcileDuration = MetricName("stratus_reconcile_duration_seconds")
    public static let queueDepth = MetricName("stratus_workqueue_depth")
    public static let queueInFlight = MetricName("stratus_workqueue_in_flight")
    public static let queueOldest = MetricName("stratus_workqueue_oldest_item_age_seconds")
    public static let queueRetries = MetricName("stratus_workqueue_retries_total")
    public static let resources = MetricName("stratus_resources")
    public static let drift = MetricName("stratus_drift_findings_total")
    public static let storeTransactionDuration = MetricName("stratus_store_transaction_duration_seconds")
    public static let nodes = MetricName("stratus_nodes")
    public static let nodeCapacity = MetricName("stratus_node_capacity")
    public static let nodeAllocated = MetricName("stratus_node_allocated")
    public static let buildInfo = MetricName("stratus_build_info")
    public static let dashboardSessions = MetricName("stratus_dashboard_logins_total")

    static let help: [String: String] = [
        apiRequests.name: "API requests answered, by API (resource, ec2, s3, dashboard), action and HTTP status code.",
        apiRequestDuration.name: "Time to answer an API request, by API and action.",
        reconciles.name: "Reconciles run, by kind and result (done, requeue, failed, error).",
        reconcileDuration.name: "Time one reconcile (or finalize) took, by kind.",
        queueDepth.name: "Resources queued for a reconcile, ready or waiting for their time.",
        queueInFlight.name: "Resources being reconciled now.",
        queueOldest.name: "How long the oldest ready resource of the work queue has waited.",
        queueRetries.name: "Reconciles queued again after a failure, with backoff.",
        resources.name: "Resources in the store, by kind, phase and Ready condition (True, False, Unknown).",
        drift.name: "Out-of-band changes found, by kind and how (resync: a bulk comparison; watch: a driver's event).",
        storeTransactionDuration.name: "Time of one store transaction, by type (read, write).",
        nodes.name: "Nodes, by Ready condition.",
        nodeCapacity.name: "What the nodes offer, summed, by resource (vcpus, memory_bytes).",
        nodeAllocated.name: "What the instances placed on nodes take, summed, by resource (vcpus, memory_bytes).",
        buildInfo.name: "Always 1; the labels say what runs.",
        dashboardSessions.name: "Dashboard logins, by result (ok, refused).",
    ]

    /// Latency buckets from 0.5 ms to 60 s: API calls and store transactions sit in the low
    /// milliseconds, reconciles that boot or copy in seconds.
    static let defaultBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5),
        .seconds(5), .seconds(10), .seconds(30), .seconds(60),
    ]
    static let buckets: [String: [Duration]] = [:]
}

/// What this build is, for `stratus --version` and `stratus_build_info`.
public enum StratusBuild {
    public static let version = "0.1.0"
}
