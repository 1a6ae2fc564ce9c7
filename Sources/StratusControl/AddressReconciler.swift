import Foundation
import Logging
import StratusModel
import StratusNetwork
import StratusStore

/// Converges elastic addresses and security groups: an Address takes its public IP from the
/// pool (`--public-range`, or the one its spec claims) and, associated with an instance, is
/// NATed to the instance's fixed IP; security groups' ingress rules guard their instances.
/// Both end in the node's packet filter (`HostFirewall`) when this server manages host
/// networking; without it addresses are still allocated and say that nothing is NATed.
public struct AddressReconciler: Reconciler {
    public let name = "address"
    public let kinds: Set<Kind> = [.address, .securityGroup]
    /// Many at once: a reconcile mostly waits for the packet filter, and every one that waits
    /// is answered by the same next replacement of the tables.
    public let concurrency = 256

    let store: Store
    let range: IPv4Network
    let firewall: HostFirewall?

    public init(store: Store, publicRange: IPv4Network, firewall: HostFirewall?) {
        self.store = store
        self.range = publicRange
        self.firewall = firewall
    }

    public func reconcile(_ resource: StoredResource) async -> ReconcileResult {
        let now = Timestamp.string(Date())
        var status = resource.resource.status ?? ResourceStatus()
        do {
            switch resource.resource.spec {
            case .address(let spec):
                if let claimed = spec.publicIp, !(IPv4Address(claimed).map(range.contains) ?? false) {
                    // Only the pool's addresses are anyone's to claim: not another's fixed IP, not the node's.
                    return .failed(reason: .addressOutOfRange, message: "publicIp \(claimed) is not in the public range \(range) (--public-range); claim one of it or leave publicIp out", retryable: false)
                }
                guard let ip = try store.allocatePublicIp(spec.publicIp, range: range, owner: resource.key) else {
                    let message = spec.publicIp.map { "\($0) is held by another address; release it there or claim another" }
                        ?? "every address of the public range \(range) is taken; release one (ReleaseAddress, or delete an Address) or widen --public-range"
                    return .failed(reason: .addressLimitExceeded, message: message, retryable: true)
                }
                status.details["publicIp"] = .string(ip)
                guard let name = spec.instance else {
                    status.details["privateIp"] = nil
                    status.phase = "Allocated"
                    status.setCondition(Condition(type: .ready, status: .true, reason: .addressAllocated, message: "\(ip), not associated", lastTransitionTime: now))
                    if let firewall { try await firewall.converge() }
                    return .done(status)
                }
                let instance = try store.get(ResourceKey(kind: .instance, project: resource.key.project, name: name))
                guard let instance, !instance.isTerminating, let privateIp = InstanceDetails(instance.resource.status).ip else {
                    status.phase = "Pending"
                    status.setCondition(Condition(type: .ready, status: .false, reason: .waitingForInstance, message: "\(ip) waits for instance \(name) to have its fixed IP", lastTransitionTime: now))
                    return .requeue(status, after: .seconds(2))
                }
                status.details["privateIp"] = .string(privateIp)
                guard let firewall else {
                    status.phase = "Pending"
                    status.setCondition(Condition(type: .ready, status: .false, reason: .hostNetworkUnavailable, message: "\(ip) is allocated to \(name) (\(privateIp)); nothing is NATed: this server does not manage host networking (stratus serve --host-network on, as root)", lastTransitionTime: now))
                    return .done(status)
                }
                try await firewall.converge()
                status.phase = "Associated"
                status.setCondition(Condition(type: .ready, status: .true, reason: .addressAssociated, message: "\(ip) → \(name) (\(privateIp)), DNAT and SNAT in the node's packet filter", lastTransitionTime: now))
                return .done(status)
            case .securityGroup(let spec):
                guard let firewall else {
                    status.phase = "Pending"
                    status.setCondition(Condition(type: .ready, status: .false, reason: .hostNetworkUnavailable, message: "rules are stored; none is enforced: this server does not manage host networking (stratus serve --host-network on, as root)", lastTransitionTime: now))
                    return .done(status)
                }
                try await firewall.converge()
                status.phase = "Ready"
                let count = spec.ingress?.count ?? 0
                let bridged = firewall.filtersBridgedTraffic ? "" : " (between instances of one network nothing is filtered: br_netfilter is not loaded on this node)"
                status.setCondition(Condition(type: .ready, status: .true, reason: .rulesInKernel, message: "\(count) ingress rule(s) guard the group's instances; all other ingress is dropped\(bridged)", lastTransitionTime: now))
                return .done(status)
            default:
                return .failed(reason: .wrongKind, message: "\(resource.key) is neither an address nor a security group", retryable: false)
            }
        } catch {
            return .failed(reason: .hostNetworkError, message: "\(error)", retryable: true)
        }
    }

    public func finalize(_ resource: StoredResource) async -> ReconcileResult {
        // The row goes with its allocation; the next convergence leaves its rules out (it is
        // terminating, so already now).
        if let firewall {
            do { try await firewall.converge() } catch { return .failed(reason: .hostNetworkError, message: "\(error)", retryable: true) }
        }
        return .done(ResourceStatus())
    }
}
