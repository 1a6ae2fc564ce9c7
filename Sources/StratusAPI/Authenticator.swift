import Foundation
import StratusIdentity
import StratusModel
import StratusStore

/// Turns a signed request into a `Principal`: checks the signature against the store's secrets,
/// then loads the user's roles and memberships.
public struct Authenticator: Sendable {
    let store: Store
    let verifier: RequestVerifier

    public init(store: Store, service: SigningService) {
        self.store = store
        self.verifier = RequestVerifier(service: service)
    }

    /// The principal the request acts as; throws `AuthenticationError` when it may not act at all.
    public func authenticate(_ request: SignableRequest, now: Date = Date()) throws -> (Principal, VerifiedRequest) {
        var found: Credential?
        let verified = try verifier.verify(request, now: now) { accessKey in
            found = try store.credential(accessKey: accessKey)
            return found?.secretKey
        }
        guard let credential = found else { throw AuthenticationError.unknownAccessKey(verified.accessKey) }
        return (try principal(for: credential), verified)
    }

    /// The roles and memberships behind a credential.
    public func principal(for credential: Credential) throws -> Principal {
        if credential.user == Store.rootUser { return .root(accessKey: credential.accessKey) }
        guard let user = try store.get(ResourceKey(kind: .user, project: "", name: credential.user)), !user.isTerminating,
            case .user(let spec) = user.resource.spec
        else { throw AuthenticationError.disabled("The user \(credential.user) of this access key no longer exists.") }
        if spec.disabled == true { throw AuthenticationError.disabled("The user \(credential.user) is disabled.") }
        return Principal(user: credential.user, accessKey: credential.accessKey, spec: spec, managerOf: try store.projects(managedBy: credential.user), boundProject: credential.project.isEmpty ? nil : credential.project)
    }
}
