import CLDAP
import Dispatch
import Foundation
import Logging
import Synchronization

/// Where and how to reach an LDAP server.
public struct LDAPConfiguration: Sendable {
    public var url: String
    public var bindDN: String
    public var password: String
    /// The suffix the managed OUs live under, e.g. `dc=example,dc=org`.
    public var base: String
    /// Seconds to wait for a connection or an operation.
    public var timeout: Int

    public init(url: String, bindDN: String, password: String, base: String, timeout: Int = 10) {
        self.url = url
        self.bindDN = bindDN
        self.password = password
        self.base = base
        self.timeout = timeout
    }
}

/// A `Directory` over libldap: a few connections, each with its blocking calls on its own serial
/// dispatch queue, off the cooperative pool; operations take turns over them.
///
/// A connection is opened and bound on first use and again after the server went away, so a
/// restarted slapd needs nothing from the caller but a retry.
public final class LDAPDirectory: Directory {
    private let configuration: LDAPConfiguration
    private let connections: [Connection]
    private let next = Atomic<Int>(0)
    private let logger: Logger

    /// One libldap handle and the queue it is used on; only touched on `queue` (hence unchecked Sendable).
    private final class Connection: @unchecked Sendable {
        let queue: DispatchQueue
        var handle: OpaquePointer?
        init(_ index: Int) { queue = DispatchQueue(label: "stratus.ldap.\(index)") }
        deinit { if let handle { ldap_unbind_ext_s(handle, nil, nil) } }
    }

    /// `connections` operations may be in flight at once (slapd answers them in parallel).
    public init(_ configuration: LDAPConfiguration, connections: Int = 4, logger: Logger = Logger(label: "stratus.ldap")) {
        self.configuration = configuration
        self.connections = (0..<max(1, connections)).map(Connection.init)
        self.logger = logger
    }

    public func search(base: String, scope: DirectoryScope, filter: String, attributes: [String]?) async throws -> [DirectoryEntry] {
        try await run { handle in try self.pagedSearch(handle, base: base, scope: scope, filter: filter, attributes: attributes) }
    }

    public func add(_ entry: DirectoryEntry) async throws {
        try await counted(entry.dn) { handle in
            let mods = Self.modifications(entry.attributes.sorted { $0.key < $1.key }.map { (Int32(STRATUS_LDAP_MOD_ADD), $0.key, $0.value) })
            defer { ldap_mods_free(mods, 1) }
            try Self.check(ldap_add_ext_s(handle, entry.dn, mods, nil, nil), "add \(entry.dn)")
        }
    }

    public func modify(_ dn: String, _ changes: [DirectoryChange]) async throws {
        guard !changes.isEmpty else { return }
        try await counted(dn) { handle in
            let mods = Self.modifications(changes.map { change in
                switch change {
                case .replace(let name, let values): (Int32(STRATUS_LDAP_MOD_REPLACE), name, values)
                case .add(let name, let values): (Int32(STRATUS_LDAP_MOD_ADD), name, values)
                case .delete(let name): (Int32(STRATUS_LDAP_MOD_DELETE), name, [])
                case .deleteValues(let name, let values): (Int32(STRATUS_LDAP_MOD_DELETE), name, values)
                }
            })
            defer { ldap_mods_free(mods, 1) }
            try Self.check(ldap_modify_ext_s(handle, dn, mods, nil, nil), "modify \(dn)")
        }
    }

    public func delete(_ dn: String) async throws {
        try await counted(dn) { handle in try Self.check(ldap_delete_ext_s(handle, dn, nil, nil), "delete \(dn)") }
    }

    // MARK: - Following changes (RFC 4533)

    /// This process's own writes whose change notices have not arrived yet, by normalized DN:
    /// `follow` drops one notice per write, so a reconcile's own writes do not queue it again.
    private let ownWrites = Mutex<[String: Int]>([:])
    /// Whether a follower is past its refresh: only then does a write's notice arrive to be dropped.
    private let following = Atomic<Bool>(false)

    /// Runs a write of `dn`, counted before it is sent (its notice may arrive before the call
    /// returns) and uncounted when it fails (a failed write sends no notice).
    private func counted(_ dn: String, _ body: @escaping @Sendable (OpaquePointer) throws -> Void) async throws {
        let key = DirectoryLayout.normalize(dn)
        let counting = following.load(ordering: .relaxed)
        if counting { ownWrites.withLock { $0[key, default: 0] += 1 } }
        do {
            try await run(body)
        } catch {
            if counting {
                ownWrites.withLock { writes in
                    if let count = writes[key] { writes[key] = count > 1 ? count - 1 : nil }
                }
            }
            throw error
        }
    }

    /// Whether a notice is for one of this process's writes (and consumes it).
    private func isOwn(_ dn: String) -> Bool {
        ownWrites.withLock { writes in
            let key = DirectoryLayout.normalize(dn)
            guard let count = writes[key], count > 0 else { return false }
            writes[key] = count > 1 ? count - 1 : nil
            return true
        }
    }

    /// A content-synchronization search (refreshAndPersist; slapd's `syncprov` overlay) on a
    /// connection of its own, on a thread of its own: every change under `base` arrives as a
    /// message within milliseconds. The refresh (every entry as it is) is skipped; after it, each
    /// entry message is a change. Reconnects after a second when the server goes away, and then
    /// reports `base` (what changed meanwhile is unknown).
    public func follow(base: String, _ changed: @escaping @Sendable (String) -> Void) async -> Bool {
        let stop = StopFlag()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let thread = Thread { [self] in
                    var reported = false
                    func report(_ supported: Bool) {
                        guard !reported else { return }
                        reported = true
                        continuation.resume(returning: supported)
                    }
                    var reconnected = false
                    var failures = 0
                    while !stop.value.load(ordering: .relaxed) {
                        let end = self.persist(base: base, stop: stop, onReady: {
                            failures = 0
                            self.following.store(true, ordering: .relaxed)
                            if reconnected { changed(base) }
                        }, changed: changed)
                        // Writes counted while nothing followed would swallow later notices.
                        self.following.store(false, ordering: .relaxed)
                        self.ownWrites.withLock { $0.removeAll() }
                        switch end {
                        case .unsupported(let code):
                            self.logger.warning("the LDAP server will not follow changes for Stratus (RFC 4533 content synchronization, slapd's syncprov overlay; the server said: \(String(cString: ldap_err2string(code)))): changes made by hand are put back at the resync", metadata: ["stratus.ldap.url": "\(self.configuration.url)"])
                            report(false)
                            return
                        case .stopped:
                            break
                        case .lost(let why):
                            failures += 1
                            let metadata: Logger.Metadata = ["stratus.error": "\(why)", "stratus.failures": "\(failures)"]
                            if failures >= 3 { self.logger.warning("following the directory's changes keeps failing; retrying with backoff", metadata: metadata) } else {
                                self.logger.debug("following the directory's changes: connection lost; reconnecting", metadata: metadata)
                            }
                            reconnected = true
                            // 1 s, 2 s, 4 s … at most a minute between attempts (each refreshes the whole subtree).
                            let tenths = min(600, 10 << min(failures - 1, 6))
                            for _ in 0..<tenths where !stop.value.load(ordering: .relaxed) { usleep(100_000) }
                        }
                    }
                    report(true)
                }
                thread.name = "stratus.ldap.follow"
                thread.start()
            }
        } onCancel: {
            stop.value.store(true, ordering: .relaxed)
        }
    }

    /// Set when the following task is cancelled; read by its thread.
    private final class StopFlag: Sendable {
        let value = Atomic<Bool>(false)
    }

    private enum PersistEnd {
        case unsupported(Int32)
        case stopped
        case lost(String)
    }

    /// One content-synchronization search, until it fails or `stop` is set.
    private func persist(base: String, stop: StopFlag, onReady: () -> Void, changed: (String) -> Void) -> PersistEnd {
        let connection = Connection(99)
        let handle: OpaquePointer
        do { handle = try boundHandle(connection) } catch { return .lost("\(error)") }
        defer { disconnect(connection) }
        var control: UnsafeMutablePointer<LDAPControl>?
        guard stratus_ldap_sync_control(&control) == LDAP_SUCCESS else { return .lost("cannot make the sync request control") }
        defer { ldap_control_free(control) }
        var controls: [UnsafeMutablePointer<LDAPControl>?] = [control, nil]
        var messageId: Int32 = 0
        var noAttributes: [UnsafeMutablePointer<CChar>?] = [strdup("1.1"), nil]
        defer { free(noAttributes[0]) }
        let sent = controls.withUnsafeMutableBufferPointer { controlBuffer in
            noAttributes.withUnsafeMutableBufferPointer { names in
                ldap_search_ext(handle, base, Int32(STRATUS_LDAP_SCOPE_SUBTREE), "(objectClass=*)", names.baseAddress, 0, controlBuffer.baseAddress, nil, nil, 0, &messageId)
            }
        }
        guard sent == LDAP_SUCCESS else { return .lost(String(cString: ldap_err2string(sent))) }
        var refreshing = true
        while !stop.value.load(ordering: .relaxed) {
            var timeout = timeval(tv_sec: 0, tv_usec: 250_000)
            var message: OpaquePointer?
            let type = ldap_result(handle, messageId, 0, &timeout, &message)
            defer { if message != nil { ldap_msgfree(message) } }
            switch type {
            case 0:
                continue
            case -1:
                return .lost("ldap_result failed")
            case Int32(STRATUS_LDAP_RES_INTERMEDIATE):
                // syncInfo: the refresh is done (refreshPresent/refreshDelete with refreshDone).
                if refreshing { onReady() }
                refreshing = false
            case Int32(STRATUS_LDAP_RES_SEARCH_ENTRY):
                guard !refreshing, let raw = ldap_get_dn(handle, message) else { continue }
                let dn = String(cString: raw)
                ldap_memfree(raw)
                if !isOwn(dn) { changed(dn) }
            case Int32(STRATUS_LDAP_RES_SEARCH_RESULT):
                var code: Int32 = 0
                _ = ldap_parse_result(handle, message, &code, nil, nil, nil, nil, 0)
                // 12 unavailableCriticalExtension: no syncprov; 53 unwillingToPerform; 2 protocolError.
                // 12 unavailableCriticalExtension (no syncprov), 53 unwillingToPerform, 2 protocolError,
                // 4 sizeLimitExceeded, 11 adminLimitExceeded, 32 noSuchObject, 50 insufficientAccess:
                // asking again would only refresh the whole subtree again.
                if [12, 53, 2, 4, 11, 32, 50].contains(code) { return .unsupported(code) }
                return .lost("the search ended: \(String(cString: ldap_err2string(code)))")
            default:
                continue
            }
        }
        return .stopped
    }

    // MARK: - Connection

    /// Runs `body` on the queue with a bound handle; drops the handle when the server went away.
    private func run<T: Sendable>(_ body: @escaping @Sendable (OpaquePointer) throws -> T) async throws -> T {
        let connection = connections[next.wrappingAdd(1, ordering: .relaxed).oldValue % connections.count]
        return try await withCheckedThrowingContinuation { continuation in
            connection.queue.async {
                do {
                    let handle = try self.boundHandle(connection)
                    do {
                        continuation.resume(returning: try body(handle))
                    } catch let error as DirectoryError where error.isUnavailable {
                        self.disconnect(connection)
                        continuation.resume(throwing: error)
                    }
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    private func boundHandle(_ connection: Connection) throws -> OpaquePointer {
        if let handle = connection.handle { return handle }
        var handle: OpaquePointer?
        try Self.check(ldap_initialize(&handle, configuration.url), "connect to \(configuration.url)")
        guard let handle else { throw DirectoryError(code: -1, message: "ldap_initialize returned no handle for \(configuration.url)") }
        var version: Int32 = 3
        ldap_set_option(handle, LDAP_OPT_PROTOCOL_VERSION, &version)
        var timeout = timeval(tv_sec: configuration.timeout, tv_usec: 0)
        ldap_set_option(handle, LDAP_OPT_NETWORK_TIMEOUT, &timeout)
        ldap_set_option(handle, LDAP_OPT_TIMEOUT, &timeout)
        var password = Array(configuration.password.utf8CString)
        let result = password.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var credential = berval(bv_len: ber_len_t(buffer.count - 1), bv_val: buffer.baseAddress)
            return ldap_sasl_bind_s(handle, configuration.bindDN, nil, &credential, nil, nil, nil)
        }
        guard result == LDAP_SUCCESS else {
            let error = DirectoryError(code: result, message: "bind as \(configuration.bindDN) to \(configuration.url): \(String(cString: ldap_err2string(result)))")
            ldap_unbind_ext_s(handle, nil, nil)
            throw error
        }
        connection.handle = handle
        logger.debug("bound to LDAP", metadata: ["stratus.ldap.url": "\(configuration.url)"])
        return handle
    }

    private func disconnect(_ connection: Connection) {
        if let handle = connection.handle { ldap_unbind_ext_s(handle, nil, nil) }
        connection.handle = nil
    }

    // MARK: - Operations

    private static let pageSize: Int32 = 500

    /// A search in pages of 500 (RFC 2696), so a server's size limit does not cut the result short.
    private func pagedSearch(_ handle: OpaquePointer, base: String, scope: DirectoryScope, filter: String, attributes: [String]?) throws -> [DirectoryEntry] {
        let scopeValue: Int32 = switch scope {
        case .base: Int32(STRATUS_LDAP_SCOPE_BASE)
        case .oneLevel: Int32(STRATUS_LDAP_SCOPE_ONELEVEL)
        case .subtree: Int32(STRATUS_LDAP_SCOPE_SUBTREE)
        }
        let attributeStrings = attributes.map { $0.map { strdup($0) } + [nil] }
        defer { attributeStrings?.forEach { free($0) } }
        var entries: [DirectoryEntry] = []
        var cookie = berval(bv_len: 0, bv_val: nil)
        var ownsCookie = false
        defer { if ownsCookie { ber_memfree(cookie.bv_val) } }
        repeat {
            var pageControl: UnsafeMutablePointer<LDAPControl>?
            try Self.check(ldap_create_page_control(handle, Self.pageSize, &cookie, 0, &pageControl), "create a paged-results control")
            defer { ldap_control_free(pageControl) }
            var controls: [UnsafeMutablePointer<LDAPControl>?] = [pageControl, nil]
            var message: OpaquePointer?
            var attributeArray = attributeStrings
            let result = controls.withUnsafeMutableBufferPointer { controlBuffer in
                if attributeArray != nil {
                    return attributeArray!.withUnsafeMutableBufferPointer { names in
                        ldap_search_ext_s(handle, base, scopeValue, filter, names.baseAddress, 0, controlBuffer.baseAddress, nil, nil, 0, &message)
                    }
                }
                return ldap_search_ext_s(handle, base, scopeValue, filter, nil, 0, controlBuffer.baseAddress, nil, nil, 0, &message)
            }
            defer { ldap_msgfree(message) }
            if result == 32 { return [] }  // noSuchObject: the base is not there yet
            try Self.check(result, "search \(base) for \(filter)")
            var entry = ldap_first_entry(handle, message)
            while let current = entry {
                entries.append(Self.read(handle, current))
                entry = ldap_next_entry(handle, current)
            }
            var serverControls: UnsafeMutablePointer<UnsafeMutablePointer<LDAPControl>?>?
            var code: Int32 = 0
            try Self.check(ldap_parse_result(handle, message, &code, nil, nil, nil, &serverControls, 0), "read a search result")
            defer { ldap_controls_free(serverControls) }
            if ownsCookie { ber_memfree(cookie.bv_val) }
            try Self.check(stratus_ldap_page_cookie(handle, serverControls, &cookie), "read the page cookie")
            ownsCookie = cookie.bv_val != nil
        } while cookie.bv_len > 0
        return entries
    }

    private static func read(_ handle: OpaquePointer, _ entry: OpaquePointer) -> DirectoryEntry {
        var dn = ""
        if let raw = ldap_get_dn(handle, entry) {
            dn = String(cString: raw)
            ldap_memfree(raw)
        }
        var attributes: [String: [String]] = [:]
        var ber: OpaquePointer?
        var name = ldap_first_attribute(handle, entry, &ber)
        while let current = name {
            let key = String(cString: current)
            if let values = ldap_get_values_len(handle, entry, current) {
                var index = 0
                var list: [String] = []
                while let value = values[index] {
                    list.append(String(decoding: UnsafeRawBufferPointer(start: value.pointee.bv_val, count: Int(value.pointee.bv_len)), as: UTF8.self))
                    index += 1
                }
                ldap_value_free_len(values)
                attributes[key.lowercased(), default: []] += list
            }
            ldap_memfree(current)
            name = ldap_next_attribute(handle, entry, ber)
        }
        if let ber { ber_free(ber, 0) }
        return DirectoryEntry(dn: dn, attributes: attributes)
    }

    /// Builds a libldap modification array (free it with `ldap_mods_free(mods, 1)`).
    private static func modifications(_ items: [(Int32, String, [String])]) -> UnsafeMutablePointer<UnsafeMutablePointer<LDAPMod>?>? {
        let mods = stratus_ldap_mods_new(Int32(items.count))
        for (index, item) in items.enumerated() {
            let copies = item.2.map { strdup($0) }
            defer { copies.forEach { free($0) } }
            let pointers = copies.map { UnsafePointer<CChar>($0) }
            mods?[index] = pointers.withUnsafeBufferPointer { buffer in
                stratus_ldap_mod_new(item.0, item.1, buffer.baseAddress, Int32(buffer.count))
            }
        }
        return mods
    }

    private static func check(_ code: Int32, _ what: String) throws {
        guard code != LDAP_SUCCESS else { return }
        throw DirectoryError(code: code, message: "LDAP \(what): \(String(cString: ldap_err2string(code))) (\(code))")
    }
}
