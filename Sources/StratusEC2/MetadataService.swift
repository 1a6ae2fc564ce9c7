import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import StratusAccess
import StratusModel
import StratusStore

/// The instance metadata service of the seed (`/latest/meta-data/…`, `/latest/user-data`), so
/// cloud-init and similar tools work inside guests.
///
/// The instance is the one holding the request's source address as its fixed IP (the store's
/// `fixed-ip` pool, which the compute reconciler fills from the network's subnet); nothing else
/// identifies it, so the service must listen where only guests reach it (169.254.169.254:80 on
/// the node's bridge). Unknown sources get 404.
public struct MetadataService: Sendable {
    let store: Store

    public init(store: Store) { self.store = store }

    public func application(host: String, port: Int, limits: HTTPLimits = HTTPLimits(), logger: Logger, onRunning: @escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol {
        let router = Router(context: MetadataRequestContext.self)
        router.get("/**") { request, context in try self.respond(path: request.uri.path, remote: context.remoteIP) }
        return Application(
            router: router,
            server: limits.server(logger: logger),
            configuration: limits.configuration(host: host, port: port, serverName: "stratus-metadata", logger: logger),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }

    /// The answer for `path` asked from `remote`.
    func respond(path: String, remote: String?) throws -> Response {
        let parts = path.split(separator: "/").map(String.init)
        guard parts.count >= 2 else { return text(["latest"].joined(separator: "\n")) }
        // /latest/… or a dated version (/2009-04-04/…), as EC2 serves both.
        guard let instance = try instance(at: remote), case .instance(let spec) = instance.resource.spec else {
            return Response(status: .notFound, body: .init(byteBuffer: ByteBuffer(string: "no instance has the address \(remote ?? "?")\n")))
        }
        switch parts[1] {
        case "user-data":
            guard let userData = spec.userData else { return Response(status: .notFound) }
            return text(userData)
        case "meta-data":
            let values = try metadata(instance, spec, ip: remote ?? "")
            let key = parts.dropFirst(2).joined(separator: "/")
            if key == "public-keys", let list = values["public-keys"] { return text(list) }
            if key.isEmpty || key.hasSuffix("/") == false && values[key] == nil && values.keys.contains(where: { $0.hasPrefix(key + "/") }) || path.hasSuffix("/") {
                // A directory: list its entries (sub-directories end with /).
                let prefix = key.isEmpty ? "" : key + "/"
                var names = Set<String>()
                for name in values.keys where name.hasPrefix(prefix) && (name != "public-keys" || prefix.isEmpty) {
                    let rest = name.dropFirst(prefix.count)
                    if let slash = rest.firstIndex(of: "/") { names.insert(String(rest[..<slash]) + "/") } else { names.insert(rest == "public-keys" ? "public-keys/" : String(rest)) }
                }
                guard !names.isEmpty else { return Response(status: .notFound) }
                return text(names.sorted().joined(separator: "\n"))
            }
            guard let value = values[key] else { return Response(status: .notFound) }
            return text(value)
        default:
            return Response(status: .notFound)
        }
    }

    private func instance(at remote: String?) throws -> StoredResource? {
        guard let remote, let key = try store.allocationOwner(pool: Store.fixedIPPool, value: remote), key.kind == .instance,
            let instance = try store.get(key), !instance.isTerminating
        else { return nil }
        return instance
    }

    private func metadata(_ instance: StoredResource, _ spec: InstanceSpec, ip: String) throws -> [String: String] {
        let id = instance.metadata.id ?? ""
        let hostname = instance.key.name
        let imageId = try store.get(ResourceKey(kind: .image, project: spec.image.contains("/") ? String(spec.image.split(separator: "/")[0]) : instance.key.project, name: String(spec.image.split(separator: "/").last ?? "")))?.metadata.id ?? ""
        var values: [String: String] = [
            "ami-id": imageId,
            "ami-launch-index": instance.metadata.annotations[EC2API.launchIndexAnnotation] ?? "0",
            "ami-manifest-path": "(unknown)",
            "hostname": hostname,
            "local-hostname": hostname,
            "instance-id": id,
            "instance-type": spec.instanceType,
            "local-ipv4": ip,
            "public-hostname": "",
            "public-ipv4": "",
            "placement/availability-zone": spec.availabilityZone ?? NodeSpec.defaultZone,
            "reservation-id": EC2API.reservationId(instance),
            "security-groups": (spec.securityGroups ?? []).joined(separator: "\n"),
        ]
        if let address = try store.list(kind: .address, project: instance.key.project).first(where: { if case .address(let a) = $0.resource.spec { a.instance == instance.key.name } else { false } }) {
            values["public-ipv4"] = EC2API.publicIp(address, store: store)
        }
        if let keyName = spec.keyName, let pair = try store.get(ResourceKey(kind: .keyPair, project: instance.key.project, name: keyName)),
            case .keyPair(let keySpec) = pair.resource.spec, let publicKey = keySpec.publicKey
        {
            values["public-keys/0/openssh-key"] = publicKey
            values["public-keys"] = "0=\(EC2Name.of(pair.metadata))"
        }
        return values
    }

    private func text(_ body: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

/// Carries the peer's address, which identifies the instance.
public struct MetadataRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteIP: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteIP = source.channel.remoteAddress?.ipAddress
    }
}
