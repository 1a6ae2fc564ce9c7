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
        var found: Signer?
        let verified = try verifier.verify(request, now: now) { accessKey in
            found = try store.signer(accessKey: accessKey)
            return found?.credential.secretKey
        }
        guard let found else { throw AuthenticationError.unknownAccessKey(verified.accessKey) }
        return (try principal(found.credential, user: found.user, manages: found.manages), verified)
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
