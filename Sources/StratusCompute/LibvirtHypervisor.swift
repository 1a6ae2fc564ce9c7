import CLibvirt
import Dispatch
import Foundation
import Logging
import Synchronization

/// A `Hypervisor` over libvirt's C API.
///
/// Every libvirt call blocks, so calls run on a concurrent dispatch queue of this object, never
/// on Swift's cooperative pool. libvirt connections are thread-safe.
public final class LibvirtHypervisor: Hypervisor {
    public let uri: String
    public let domainType: String
    private let connection: Connection
    private let queue = DispatchQueue(label: "stratus.libvirt", attributes: .concurrent)

    /// Opens a connection. `domainType` nil picks `kvm` when `/dev/kvm` is usable, else `qemu` (TCG).
    public init(uri: String, domainType: String? = nil, logger: Logger = Logger(label: "stratus.libvirt")) throws {
        LibvirtEventLoop.startOnce()
        guard let pointer = virConnectOpen(uri) else {
            throw HypervisorError(operation: "open \(uri)", message: Self.lastError())
        }
        self.uri = uri
        connection = Connection(pointer)
        if uri.hasPrefix("test:") {
            self.domainType = "test"
        } else if let domainType {
            self.domainType = domainType
        } else {
            let kvm = KVMProbe.decide(KVMProbe.Facts.host())
            self.domainType = kvm.usable ? "kvm" : "qemu"
            logger.notice("domain type chosen", metadata: ["stratus.domainType": "\(self.domainType)", "stratus.reason": "\(kvm.reason)"])
        }
    }

    static func lastError() -> String {
        virGetLastErrorMessage().map { String(cString: $0) } ?? "unknown libvirt error"
    }

    static func lastCode() -> Int32 { virGetLastError()?.pointee.code ?? 0 }

    /// Runs a blocking libvirt call on the queue.
    private func call<T: Sendable>(_ body: @escaping @Sendable (OpaquePointer) throws -> T) async throws -> T {
        let connection = self.connection
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try body(connection.pointer) })
            }
        }
    }

    public func nodeInfo() async throws -> NodeCapacity {
        // The built-in test node's numbers (3 GB, 16 CPUs) are a fixture: a simulated node
        // reports this host's. A test:///path.xml node reports what its file declares.
        if uri == "test:///default", let host = NodeCapacity.host() { return host }
        return try await call { conn in
            var info = virNodeInfo()
            guard virNodeGetInfo(conn, &info) == 0 else { throw HypervisorError(operation: "node info", message: Self.lastError()) }
            let model = withUnsafeBytes(of: info.model) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            return NodeCapacity(memoryMB: Int(info.memory / 1024), vcpus: Int(info.cpus), model: model)
        }
    }

    public func listDomains() async throws -> [DomainInfo] {
        try await call { conn in
            var list: UnsafeMutablePointer<OpaquePointer?>?
            let count = virConnectListAllDomains(conn, &list, 0)
            guard count >= 0, let list else { throw HypervisorError(operation: "list domains", message: Self.lastError()) }
            defer { free(list) }
            var domains: [DomainInfo] = []
            for index in 0..<Int(count) {
                guard let domain = list[index] else { continue }
                defer { virDomainFree(domain) }
                if let info = try? Self.describe(domain) { domains.append(info) }
            }
            return domains
        }
    }

    public func domainStates() async throws -> [String: DomainState] {
        try await call { conn in
            var list: UnsafeMutablePointer<OpaquePointer?>?
            let count = virConnectListAllDomains(conn, &list, 0)
            guard count >= 0, let list else { throw HypervisorError(operation: "list domains", message: Self.lastError()) }
            defer { free(list) }
            var states: [String: DomainState] = [:]
            states.reserveCapacity(Int(count))
            for index in 0..<Int(count) {
                guard let domain = list[index] else { continue }
                defer { virDomainFree(domain) }
                var state: Int32 = 0
                var reason: Int32 = 0
                guard let name = virDomainGetName(domain), virDomainGetState(domain, &state, &reason, 0) == 0 else { continue }
                states[String(cString: name)] = DomainState(rawValue: Int(state)) ?? .noState
            }
            return states
        }
    }

    public func domain(named name: String) async throws -> DomainInfo? {
        try await call { conn in
            guard let domain = virDomainLookupByName(conn, name) else {
                if Self.lastCode() == Int32(VIR_ERR_NO_DOMAIN.rawValue) { return nil }
                throw HypervisorError(operation: "look up \(name)", message: Self.lastError(), code: Self.lastCode())
            }
            defer { virDomainFree(domain) }
            return try Self.describe(domain)
        }
    }

    private static func describe(_ domain: OpaquePointer) throws -> DomainInfo {
        let name = virDomainGetName(domain).map { String(cString: $0) } ?? ""
        var uuid = [CChar](repeating: 0, count: Int(VIR_UUID_STRING_BUFLEN))
        _ = virDomainGetUUIDString(domain, &uuid)
        var state: Int32 = 0
        var reason: Int32 = 0
        guard virDomainGetState(domain, &state, &reason, 0) == 0 else {
            throw HypervisorError(operation: "state of \(name)", message: lastError())
        }
        // Only the metadata element is fetched (a listing of 10,000 domains would otherwise
        // format and search 20,000 whole domain XMLs); drivers without it get the whole XML.
        func owner(config: Bool) -> DomainOwner? {
            let flags = config ? VIR_DOMAIN_AFFECT_CONFIG.rawValue : VIR_DOMAIN_AFFECT_LIVE.rawValue
            if let element = virDomainGetMetadata(domain, Int32(VIR_DOMAIN_METADATA_ELEMENT.rawValue), DomainXML.namespace, flags) {
                defer { free(element) }
                return DomainXML.owner(element: String(cString: element))
            }
            if lastCode() == Int32(VIR_ERR_NO_DOMAIN_METADATA.rawValue) { return nil }
            guard let xml = virDomainGetXMLDesc(domain, config ? VIR_DOMAIN_XML_INACTIVE.rawValue : 0) else { return nil }
            defer { free(xml) }
            return DomainXML.owner(in: String(cString: xml))
        }
        let domainState = DomainState(rawValue: Int(state)) ?? .noState
        let live = owner(config: !domainState.isActive)
        let defined = domainState.isActive ? owner(config: true) : live
        return DomainInfo(name: name, uuid: String(cString: uuid), state: domainState, owner: live, definedOwner: defined)
    }

    public func xml(of name: String) async throws -> String? {
        try await call { conn in
            guard let domain = virDomainLookupByName(conn, name) else { return nil }
            defer { virDomainFree(domain) }
            guard let xml = virDomainGetXMLDesc(domain, 0) else { return nil }
            defer { free(xml) }
            return String(cString: xml)
        }
    }

    public func definedXML(of name: String) async throws -> String? {
        try await call { conn in
            guard let domain = virDomainLookupByName(conn, name) else { return nil }
            defer { virDomainFree(domain) }
            guard let xml = virDomainGetXMLDesc(domain, VIR_DOMAIN_XML_INACTIVE.rawValue) else { return nil }
            defer { free(xml) }
            return String(cString: xml)
        }
    }

    public func attachDevice(_ name: String, xml: String, live: Bool, config: Bool) async throws {
        let flags = (live ? VIR_DOMAIN_AFFECT_LIVE.rawValue : 0) | (config ? VIR_DOMAIN_AFFECT_CONFIG.rawValue : 0)
        try await withDomain(name, "attach a device to") { virDomainAttachDeviceFlags($0, xml, flags) }
    }

    public func detachDevice(_ name: String, xml: String, live: Bool, config: Bool) async throws {
        let flags = (live ? VIR_DOMAIN_AFFECT_LIVE.rawValue : 0) | (config ? VIR_DOMAIN_AFFECT_CONFIG.rawValue : 0)
        try await withDomain(name, "detach a device from") { virDomainDetachDeviceFlags($0, xml, flags) }
    }

    public func diskCapacity(_ name: String, device: String) async throws -> UInt64 {
        let capacity = Mutex<UInt64>(0)
        try await withDomain(name, "read the size of \(device) of") { domain in
            var info = virDomainBlockInfo()
            let result = virDomainGetBlockInfo(domain, device, &info, 0)
            capacity.withLock { $0 = info.capacity }
            return result
        }
        return capacity.withLock { $0 }
    }

    public func resizeDisk(_ name: String, device: String, bytes: UInt64) async throws {
        try await withDomain(name, "resize \(device) of") { virDomainBlockResize($0, device, bytes, UInt32(VIR_DOMAIN_BLOCK_RESIZE_BYTES.rawValue)) }
    }

    public func define(xml: String) async throws {
        try await call { conn in
            guard let domain = virDomainDefineXML(conn, xml) else {
                throw HypervisorError(operation: "define", message: Self.lastError(), code: Self.lastCode())
            }
            virDomainFree(domain)
        }
    }

    public func start(_ name: String) async throws { try await withDomain(name, "start") { virDomainCreate($0) } }
    public func destroy(_ name: String) async throws { try await withDomain(name, "destroy") { virDomainDestroy($0) } }
    public func undefine(_ name: String) async throws { try await withDomain(name, "undefine") { virDomainUndefine($0) } }
    public func reboot(_ name: String) async throws { try await withDomain(name, "reboot") { virDomainReboot($0, 0) } }

    public func lifecycleEvents() throws -> AsyncStream<DomainEvent> {
        let (stream, continuation) = AsyncStream<DomainEvent>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        let box = Unmanaged.passRetained(EventSink(continuation))
        let callback: @convention(c) (OpaquePointer?, OpaquePointer?, Int32, Int32, UnsafeMutableRawPointer?) -> Int32 = { _, domain, event, _, opaque in
            guard let domain, let opaque, let name = virDomainGetName(domain) else { return 0 }
            guard let kind = DomainEvent.Kind(rawValue: event) else { return 0 }  // a kind newer than this build: nothing to repair
            Unmanaged<EventSink>.fromOpaque(opaque).takeUnretainedValue().continuation.yield(DomainEvent(domain: String(cString: name), kind: kind))
            return 0
        }
        let release: @convention(c) (UnsafeMutableRawPointer?) -> Void = { opaque in
            guard let opaque else { return }
            Unmanaged<EventSink>.fromOpaque(opaque).takeRetainedValue().continuation.finish()
        }
        let id = virConnectDomainEventRegisterAny(
            connection.pointer, nil, Int32(VIR_DOMAIN_EVENT_ID_LIFECYCLE.rawValue),
            unsafeBitCast(callback, to: virConnectDomainEventGenericCallback.self), box.toOpaque(), release
        )
        guard id >= 0 else {
            box.release()
            throw HypervisorError(operation: "subscribe to lifecycle events", message: Self.lastError())
        }
        let connection = self.connection
        continuation.onTermination = { _ in _ = virConnectDomainEventDeregisterAny(connection.pointer, id) }
        return stream
    }

    private func withDomain(_ name: String, _ operation: String, _ body: @escaping @Sendable (OpaquePointer) -> Int32) async throws {
        try await call { conn in
            guard let domain = virDomainLookupByName(conn, name) else {
                throw HypervisorError(operation: "\(operation) \(name)", message: Self.lastError(), code: Self.lastCode())
            }
            defer { virDomainFree(domain) }
            guard body(domain) == 0 else {
                throw HypervisorError(operation: "\(operation) \(name)", message: Self.lastError(), code: Self.lastCode())
            }
        }
    }
}

/// Carries a stream's continuation through libvirt's `opaque` pointer.
private final class EventSink: Sendable {
    let continuation: AsyncStream<DomainEvent>.Continuation
    init(_ continuation: AsyncStream<DomainEvent>.Continuation) { self.continuation = continuation }
}

/// Owns the `virConnectPtr`; closed when the last reference goes.
///
/// A class with a plain deinit rather than an actor with an isolated one: the latter builds in
/// debug and fails in release on this toolchain (RECIPES).
private final class Connection: @unchecked Sendable {  // The pointer is only used through libvirt's thread-safe API.
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) { self.pointer = pointer }

    deinit { virConnectClose(pointer) }
}

/// libvirt's default event loop, which the QEMU driver (embedded or remote) needs for its
/// monitor and lifecycle events. One per process, started before the first connection.
enum LibvirtEventLoop {
    private static let started = Mutex(false)

    static func startOnce() {
        let first = started.withLock { started -> Bool in
            defer { started = true }
            return !started
        }
        guard first else { return }
        stratus_virt_silence_errors()
        _ = virInitialize()
        _ = virEventRegisterDefaultImpl()
        let thread = Thread {
            while true { _ = virEventRunDefaultImpl() }
        }
        thread.name = "libvirt-events"
        thread.start()
    }
}
