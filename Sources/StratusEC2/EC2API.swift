import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import StratusAccess
import StratusIdentity
import StratusModel
import StratusStore
import StratusTelemetry

/// The EC2 Query API (`/` and `/services/Cloud/`, GET or form POST), translated into resources.
///
/// Every call is signed (SigV4 or SigV2) and authorized by the signer's project roles. Writes go
/// through the same admission as `stratus apply` (field manager `api`, no apply set), so the
/// controller converges them like any manifest. Only the actions in `EC2API.actions` exist.
public struct EC2API: Sendable {
    let store: Store
    let dataDirectory: String
    let node: (any NodeOperations)?
    let authenticator: Authenticator
    let terminated: TerminatedInstances
    /// The region this endpoint serves, and its URL for DescribeRegions.
    let region: String
    let endpoint: String
    /// The pool AllocateAddress takes public IPs from (`--public-range`).
    let publicRange: IPv4Network
    /// TEST-NET-3: a documentation range, so an unconfigured cloud hands out no real addresses.
    public static let defaultPublicRange: IPv4Network = {
        guard case .success(let range) = IPv4Network.parse("203.0.113.0/24") else { fatalError("203.0.113.0/24 is a CIDR") }
        return range
    }()

    public init(store: Store, dataDirectory: String, node: (any NodeOperations)?, region: String = "nova", endpoint: String, terminatedRetention: Duration = .seconds(3600),
                publicRange: IPv4Network = EC2API.defaultPublicRange, telemetry: Telemetry? = nil) {
        self.store = store
        self.telemetry = telemetry
        self.publicRange = publicRange
        self.dataDirectory = dataDirectory
        self.node = node
        self.authenticator = Authenticator(store: store, service: .standard, scope: ("ec2", [region]))
        self.terminated = TerminatedInstances(retention: terminatedRetention)
        self.region = region
        self.endpoint = endpoint
    }

    typealias Action = @Sendable (EC2API, EC2Call) async throws -> [XMLNode]

    /// Where requests are counted; nil counts nothing.
    let telemetry: Telemetry?

    /// The callable actions: nothing else is (the seed let any public method be called by name).
    static let actions: [String: Action] = [
        "DescribeRegions": { api, call in try api.describeRegions(call) },
        "DescribeAvailabilityZones": { api, call in try api.describeAvailabilityZones(call) },
        "DescribeInstanceTypes": { api, call in try api.describeInstanceTypes(call) },
        "DescribeKeyPairs": { api, call in try api.describeKeyPairs(call) },
        "CreateKeyPair": { api, call in try api.createKeyPair(call) },
        "ImportKeyPair": { api, call in try api.importKeyPair(call) },
        "DeleteKeyPair": { api, call in try api.deleteKeyPair(call) },
        "DescribeSecurityGroups": { api, call in try api.describeSecurityGroups(call) },
        "CreateSecurityGroup": { api, call in try api.createSecurityGroup(call) },
        "DeleteSecurityGroup": { api, call in try api.deleteSecurityGroup(call) },
        "AuthorizeSecurityGroupIngress": { api, call in try api.changeIngress(call, authorize: true) },
        "RevokeSecurityGroupIngress": { api, call in try api.changeIngress(call, authorize: false) },
        "DescribeImages": { api, call in try api.describeImages(call) },
        "RegisterImage": { api, call in try api.registerImage(call) },
        "DeregisterImage": { api, call in try api.deregisterImage(call) },
        "DescribeImageAttribute": { api, call in try api.describeImageAttribute(call) },
        "ModifyImageAttribute": { api, call in try api.modifyImageAttribute(call) },
        "RunInstances": { api, call in try await api.runInstances(call) },
        "DescribeInstances": { api, call in try await api.describeInstances(call) },
        "DescribeInstanceStatus": { api, call in try await api.describeInstanceStatus(call) },
        "TerminateInstances": { api, call in try await api.terminateInstances(call) },
        "StopInstances": { api, call in try await api.setPower(call, running: false) },
        "StartInstances": { api, call in try await api.setPower(call, running: true) },
        "RebootInstances": { api, call in try await api.rebootInstances(call) },
        "GetConsoleOutput": { api, call in try await api.getConsoleOutput(call) },
        "DescribeInstanceAttribute": { api, call in try api.describeInstanceAttribute(call) },
        "ModifyInstanceAttribute": { api, call in try api.modifyInstanceAttribute(call) },
        "CreateTags": { api, call in try api.createTags(call) },
        "DeleteTags": { api, call in try api.deleteTags(call) },
        "DescribeTags": { api, call in try api.describeTags(call) },
        "DescribeVolumes": { api, call in try api.describeVolumes(call) },
        "CreateVolume": { api, call in try api.createVolume(call) },
        "DeleteVolume": { api, call in try api.deleteVolume(call) },
        "AttachVolume": { api, call in try api.attachVolume(call, attach: true) },
        "DetachVolume": { api, call in try api.attachVolume(call, attach: false) },
        "ModifyVolume": { api, call in try api.modifyVolume(call) },
        "CreateSnapshot": { api, call in try api.createSnapshot(call) },
        "DescribeSnapshots": { api, call in try api.describeSnapshots(call) },
        "DeleteSnapshot": { api, call in try api.deleteSnapshot(call) },
        "DescribeAddresses": { api, call in try api.describeAddresses(call) },
        "AllocateAddress": { api, call in try api.allocateAddress(call) },
        "ReleaseAddress": { api, call in try api.releaseAddress(call) },
        "AssociateAddress": { api, call in try api.associateAddress(call, associate: true) },
        "DisassociateAddress": { api, call in try api.associateAddress(call, associate: false) },
    ]

    /// Each action's required parameters, as botocore's model of EC2 names them on the wire
    /// (`InstanceId` stands for `InstanceId.1`…); a call without one is `MissingParameter`
    /// before the action runs. `EC2ErrorTableTests` checks this table against the model.
    /// RegisterImage also accepts `ImageLocation` without `Name` (euca2ools and boto 2 register
    /// bundles that way), so `Name` is checked by the action.
    static let requiredParameters: [String: [String]] = [
        "CreateKeyPair": ["KeyName"], "ImportKeyPair": ["KeyName", "PublicKeyMaterial"],
        "CreateSecurityGroup": ["GroupDescription", "GroupName"],
        "DeregisterImage": ["ImageId"], "DescribeImageAttribute": ["Attribute", "ImageId"], "ModifyImageAttribute": ["ImageId"],
        "RunInstances": ["MaxCount", "MinCount"], "TerminateInstances": ["InstanceId"], "StopInstances": ["InstanceId"],
        "StartInstances": ["InstanceId"], "RebootInstances": ["InstanceId"], "GetConsoleOutput": ["InstanceId"],
        "DescribeInstanceAttribute": ["Attribute", "InstanceId"], "ModifyInstanceAttribute": ["InstanceId"],
        "CreateTags": ["ResourceId", "Tag"], "DeleteTags": ["ResourceId"],
        "DeleteVolume": ["VolumeId"], "AttachVolume": ["Device", "InstanceId", "VolumeId"], "DetachVolume": ["VolumeId"],
        "ModifyVolume": ["VolumeId"], "CreateSnapshot": ["VolumeId"], "DeleteSnapshot": ["SnapshotId"],
    ]

    /// The first required parameter of `action` that `parameters` lacks (empty counts as absent).
    static func missingParameter(_ action: String, _ parameters: [String: String]) -> String? {
        (requiredParameters[action] ?? []).first { name in
            if let value = parameters[name], !value.isEmpty { return false }
            let prefix = name + "."
            return !parameters.contains { $0.key.hasPrefix(prefix) && !$0.value.isEmpty }
        }
    }

    /// The Hummingbird application serving the API on `host:port` (0 picks a free port, passed to `onRunning`).
    public func application(host: String, port: Int, limits: HTTPLimits = HTTPLimits(), logger: Logger, onRunning: @escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol {
        let router = Router(context: EC2RequestContext.self)
        for path in ["/", "/services/Cloud"] {  // Hummingbird matches /services/Cloud/ too
            router.get(RouterPath(path)) { request, context in await self.handle(request, context) }
            router.post(RouterPath(path)) { request, context in await self.handle(request, context) }
        }
        return Application(
            router: router,
            server: limits.server(logger: logger),
            configuration: limits.configuration(host: host, port: port, serverName: "stratus-ec2", logger: logger),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }

    /// Authenticates, dispatches and renders one request; every failure becomes EC2 error XML.
    func handle(_ request: Request, _ context: EC2RequestContext) async -> Response {
        let requestId = UUID().uuidString.lowercased()
        let started = ContinuousClock.now
        var action = "Unknown"
        var response = await RequestID.$current.withValue(requestId) { await answer(request, context, requestId: requestId, action: &action) }
        response.headers[.init("x-amzn-RequestId")!] = requestId
        if let telemetry {
            telemetry.count(.apiRequests, [("api", "ec2"), ("action", action), ("code", "\(response.status.code)")])
            telemetry.time(.apiRequestDuration, [("api", "ec2"), ("action", action)], ContinuousClock.now - started)
        }
        return response
    }

    /// The answer to one request; `action` is set to the action once it is known to be one.
    func answer(_ request: Request, _ context: EC2RequestContext, requestId: String, action known: inout String) async -> Response {
        var request = request
        do {
            let body: ByteBuffer
            do {
                body = try await request.collectBody(upTo: context.maxUploadSize)
            } catch let error as NIOTooManyBytesError {
                throw error
            } catch {
                // Reading can only fail on what the client sent: a malformed chunk, a body cut short.
                throw EC2Error("InvalidRequest", "The request body could not be read: a malformed chunk, or a body shorter than announced. Send it again with a valid Content-Length or chunked encoding.", status: 400)
            }
            let signable = SignableRequest(request, body: body)
            var parameters: [String: String] = [:]
            for (name, value) in signable.queryParameters + signable.formParameters where parameters[name] == nil { parameters[name] = value }
            guard let action = parameters["Action"] else { throw EC2Error.missing("Action") }
            guard let handler = Self.actions[action] else {
                throw EC2Error("InvalidAction", "The action \(action) is not valid for this web service.")
            }
            known = action
            let principal: Principal
            do {
                principal = try authenticator.authenticate(signable).0
            } catch let error as AuthenticationError {
                throw EC2Error(error.ec2Code, error.message, status: error.ec2Code == "AuthFailure" || error.ec2Code == "MissingAuthenticationToken" ? 401 : 400)
            }
            let version = parameters["Version"] ?? "2016-11-15"
            let call = EC2Call(action: action, parameters: parameters, principal: principal, requestId: requestId, version: version, host: signable.header("host") ?? "")
            // A key bound to a project its user has left acts nowhere, whatever the action reads.
            if principal.defaultProject != nil { _ = try call.project() }
            if let missing = Self.missingParameter(action, parameters) { throw EC2Error.missing(missing) }
            let result = try await Self.$caller.withValue(principal.user) { try await handler(self, call) }
            var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<\(action)Response xmlns=\"http://ec2.amazonaws.com/doc/\(Self.xmlSafe(version))/\"><requestId>\(requestId)</requestId>"
            for node in result { node.render(into: &xml) }
            xml += "</\(action)Response>"
            return Response(status: .ok, headers: [.contentType: "text/xml;charset=UTF-8"], body: .init(byteBuffer: ByteBuffer(string: xml)))
        } catch {
            let failure = Self.ec2Error(error)
            if failure.status >= 500 { context.logger.error("internal error", metadata: ["stratus.requestId": "\(requestId)", "stratus.error": "\(error)"]) }
            var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>"
            XMLNode.escape(failure.code, into: &xml)
            xml += "</Code><Message>"
            XMLNode.escape(failure.message, into: &xml)
            xml += "</Message></Error></Errors><RequestID>\(requestId)</RequestID></Response>"
            return Response(status: HTTPResponse.Status(code: failure.status), headers: [.contentType: "text/xml;charset=UTF-8"], body: .init(byteBuffer: ByteBuffer(string: xml)))
        }
    }

    /// Maps the store's and the loader's errors to EC2 codes.
    static func ec2Error(_ error: any Error) -> EC2Error {
        switch error {
        case let error as EC2Error: return error
        case let errors as ManifestErrors:
            if let coded = errors.errors.first(where: { $0.code != nil }), let code = coded.code {
                return EC2Error(code, "\(coded.message)\(coded.hint.map { "; \($0)" } ?? ""); nothing was changed.")
            }
            let message = errors.errors.map { "\($0.path.map { "\($0): " } ?? "")\($0.message)\($0.hint.map { "; \($0)" } ?? "")" }.joined(separator: "; ")
            return EC2Error("InvalidParameterValue", message)
        case let error as StoreError:
            return EC2Error(error.isNotFound ? "InvalidParameterValue" : "IncorrectState", error.message)
        case is NIOTooManyBytesError:
            return EC2Error("RequestEntityTooLarge", "The request body is larger than the EC2 API accepts (1 MiB); send less user data or fewer parameters per call.", status: 413)
        case let error as HTTPError where error.status.code < 500:
            return EC2Error("InvalidRequest", error.body ?? "\(error.status)", status: Int(error.status.code))
        default:
            // The details go to the server's log with the request id, never to the client.
            return EC2Error("InternalError", "An internal error has occurred; the server's log has the details.", status: 500)
        }
    }

    static func xmlSafe(_ version: String) -> String { String(version.filter { $0.isNumber || $0 == "-" }.prefix(10)) }
}

/// The request context of the EC2 API (form bodies of a few KB; user data up to 16 KB base64).
public struct EC2RequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public init(source: ApplicationRequestContextSource) { coreContext = .init(source: source) }
    public var maxUploadSize: Int { 1 << 20 }
}
