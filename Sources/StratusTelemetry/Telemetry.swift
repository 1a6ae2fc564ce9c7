import CoreMetrics
import Foundation
import Metrics
import Prometheus
import Synchronization

/// One server's metrics: recorded through swift-metrics (`Counter`, `Timer`, `Gauge` made with
/// this instance's `factory`), kept in a swift-prometheus registry of its own, and rendered in
/// Prometheus's text format for `/metrics`.
///
/// An instance per server, not the process-wide `MetricsSystem`: tests run many servers in one
/// process, and each must count only its own requests. Figures that are cheaper to read than to
/// keep (resources by phase, queue depth, node capacity) come from collectors run at each scrape.
public final class Telemetry: Sendable {
    /// The registry `/metrics` renders.
    public let registry: PrometheusCollectorRegistry
    /// The swift-metrics factory that records into `registry`, with each metric's help text.
    public let factory: any MetricsFactory
    private let collectors = Mutex<[@Sendable () async -> Void]>([])

    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        self.factory = HelpfulFactory(registry: registry)
    }

    /// Adds to the counter `metric` with `labels`.
    public func count(_ metric: MetricName, _ labels: [(String, String)] = [], by amount: Int = 1) {
        Counter(label: metric.name, dimensions: labels, factory: factory).increment(by: amount)
    }

    /// Records a duration in the histogram `metric` with `labels`.
    public func time(_ metric: MetricName, _ labels: [(String, String)] = [], _ duration: Duration) {
        Metrics.Timer(label: metric.name, dimensions: labels, factory: factory).recordNanoseconds(duration.nanoseconds)
    }

    /// Sets the gauge `metric` with `labels`.
    public func set(_ metric: MetricName, _ labels: [(String, String)] = [], _ value: Double) {
        Gauge(label: metric.name, dimensions: labels, factory: factory).record(value)
    }

    /// Runs `collect` before each rendering, to set gauges from what is there now.
    public func onScrape(_ collect: @escaping @Sendable () async -> Void) {
        collectors.withLock { $0.append(collect) }
    }

    /// The text exposition format (version 0.0.4), after running every collector.
    public func render() async -> String {
        for collect in collectors.withLock({ $0 }) { await collect() }
        return registry.emitToString()
    }

    /// `text/plain; version=0.0.4`, the content type Prometheus scrapes.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}

extension Duration {
    /// The whole nanoseconds of this duration, saturated to `Int64`.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : whole + attoseconds / 1_000_000_000
    }
}

/// swift-prometheus's own factory registers every metric with an empty help text; this one
/// gives each the text of its `MetricName`, so `/metrics` has a `# HELP` line for each family.
struct HelpfulFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry

    func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: MetricName.help[label] ?? "")
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions, buckets: MetricName.buckets[label] ?? MetricName.defaultBuckets)
    }

    // Metrics live as long as the server: a label set once seen keeps its series.
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyMeter(_ handler: any MeterHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}
}

extension Metrics.Timer {
    /// Records the time from `start` to now.
    public func recordInterval(since start: ContinuousClock.Instant) {
        recordNanoseconds((ContinuousClock.now - start).nanoseconds)
    }
}
