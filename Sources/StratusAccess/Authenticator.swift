import Foundation
import StratusIdentity
import StratusModel
import StratusStore

/// Turns a signed request into a `Principal`: checks the signature against the store's secrets,
/// then loads the user's roles and memberships.
public struct Authenticator: Sendable {
    let store: Store
    let verifier: RequestVerifier
    /// The SigV4 service this API answers for (`ec2`, `stratus`), and the regions it serves.
    let scope: (service: String, regions: Set<String>)?

    /// The services of this server's APIs: a signature made for one is refused by the others.
    public static let apiServices: Set<String> = ["ec2", "s3", "stratus"]

    /// - Parameter scope: a SigV4 request signed for another of this server's APIs is refused, so
    ///   a signature made for one cannot be replayed against another; one signed for this API's
    ///   service must name a region the server serves. Scopes that name neither are what old
    ///   clients derive from an endpoint's host name (boto 2 signs `127.0.0.1` as service `127`)
    ///   and pass. SigV2 has no scope.
    public init(store: Store, service: SigningService, scope: (service: String, regions: Set<String>)? = nil) {
        self.store = store
        self.verifier = RequestVerifier(service: service)
        self.scope = scope
    }

    /// The principal the request acts as; throws `AuthenticationError` when it may not act at all.
    public func authenticate(_ request: SignableRequest, now: Date = Date()) throws -> (Principal, VerifiedRequest) {
        var found: Signer?
        let verified = try verifier.verify(request, now: now) { accessKey in
            found = try store.signer(accessKey: accessKey)
            return found?.credential.secretKey
        }
        guard let found else { throw AuthenticationError.unknownAccessKey(verified.accessKey) }
        if let signed = verified.scope {
            // `20261125/nova/ec2/aws4_request`: the region and service the client signed for.
            let parts = signed.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 4 else { throw AuthenticationError.wrongScope("The credential scope \"\(signed)\" is not date/region/service/aws4_request.") }
            try checkScope(region: parts[1], service: parts[2])
        }
        return (try principal(found.credential, user: found.user, manages: found.manages), verified)
    }

    /// What can be refused before the body is read, so an unsigned or foreign request never makes
    /// the server buffer its body: a SigV4 `Authorization` header or presigned query must name a
    /// known access key and, with a scope, this API. Other forms (SigV2) are checked with the body.
    public func precheck(_ request: SignableRequest) throws {
        let credential: String
        if let authorization = request.header("authorization"), authorization.hasPrefix("AWS4-HMAC-SHA256") {
            guard let start = authorization.range(of: "Credential=") else {
                throw AuthenticationError.malformed("The Authorization header needs Credential=, SignedHeaders= and Signature=.")
            }
            credential = String(authorization[start.upperBound...].prefix { $0 != "," && $0 != " " })
        } else if let presigned = request.queryParameters.first(where: { $0.name == "X-Amz-Credential" })?.value {
            credential = presigned
        } else if request.header("authorization") == nil, !request.queryParameters.contains(where: { $0.name == "Signature" || $0.name == "AWSAccessKeyId" }) {
            throw AuthenticationError.missing()
        } else {
            return
        }
        let parts = credential.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5, !parts[0].isEmpty else {
            throw AuthenticationError.malformed("The credential \"\(credential)\" must read ACCESSKEY/YYYYMMDD/REGION/SERVICE/aws4_request.")
        }
        guard try store.signer(accessKey: parts[0]) != nil else { throw AuthenticationError.unknownAccessKey(parts[0]) }
        try checkScope(region: parts[2], service: parts[3])
    }

    /// Refuses a signature made for another of this server's APIs, or for a region it does not serve.
    private func checkScope(region: String, service: String) throws {
        guard let scope else { return }
        if service != scope.service, Self.apiServices.contains(service) {
            throw AuthenticationError.wrongScope("The request is signed for service \"\(service)\"; this endpoint is \"\(scope.service)\". Sign it for \(scope.service).")
        }
        guard service != scope.service || scope.regions.contains(region) else {
            throw AuthenticationError.wrongScope("The request is signed for region \"\(region)\"; this server serves \(scope.regions.sorted().joined(separator: ", ")). Set the client's region (AWS_DEFAULT_REGION) to one of them.")
        }
    }

    /// The principal of an access key and its secret, as a login form gives them (the dashboard);
    /// the secret is compared in constant time. Throws `AuthenticationError` as a signature would.
    public func principal(accessKey: String, secretKey: String) throws -> Principal {
        guard let found = try store.signer(accessKey: accessKey) else { throw AuthenticationError.unknownAccessKey(accessKey) }
        guard Self.constantTimeEqual(Array(found.credential.secretKey.utf8), Array(secretKey.utf8)) else {
            throw AuthenticationError.disabled("The secret key does not belong to access key \(accessKey).")
        }
        return try principal(found.credential, user: found.user, manages: found.manages)
    }

    /// The principal of an access key as it stands now (a session names its key; a user disabled
    /// or a key rotated since ends the session).
    public func principal(accessKey: String) throws -> Principal {
        guard let found = try store.signer(accessKey: accessKey) else { throw AuthenticationError.unknownAccessKey(accessKey) }
        return try principal(found.credential, user: found.user, manages: found.manages)
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) { difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0) }
        return difference == 0
    }

    /// The roles and memberships behind a credential (its user's spec and managed projects as
    /// `Store.signer` reads them together).
    func principal(_ credential: Credential, user: UserSpec?, manages: [String]) throws -> Principal {
        if credential.user == Store.rootUser { return .root(accessKey: credential.accessKey) }
        guard let spec = user else { throw AuthenticationError.disabled("The user \(credential.user) of this access key no longer exists.") }
        if spec.disabled == true { throw AuthenticationError.disabled("The user \(credential.user) is disabled.") }
        return Principal(user: credential.user, accessKey: credential.accessKey, spec: spec, managerOf: manages, boundProject: credential.project.isEmpty ? nil : credential.project)
    }
}
