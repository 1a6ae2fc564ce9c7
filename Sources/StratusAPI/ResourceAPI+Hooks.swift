import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import StratusModel
import StratusStore

extension ResourceAPI {
    /// The largest webhook body read (GitHub sends at most 25 MB, push events are a few KB).
    static let maxHookBody = 1 << 20

    /// `POST /hooks/git/<name>`: a push notification from a git host; queues an immediate sync.
    ///
    /// Accepted only when it is signed with the secret in the GitSync's `webhookSecretFile`, the
    /// way GitHub and Gitea sign (`X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>`,
    /// `X-Gitea-Signature: <hex>`) or GitLab authenticates (`X-Gitlab-Token: <secret>`). Every
    /// refusal is the same 403, so an unsigned caller learns nothing about which GitSyncs exist.
    func gitHook(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let name = context.parameters.get("name") ?? ""
        let refused = APIError(kind: "forbidden", message: "webhook refused: it is not signed with the webhook secret of a GitSync named \"\(name)\" (X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token), or that GitSync has no webhookSecretFile")
        var body: [UInt8] = []
        do {
            var buffer = try await request.body.collect(upTo: Self.maxHookBody)
            body = buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch {
            throw refused  // too large or cut short: the same answer as any other refusal
        }
        var secret: [UInt8] = []
        if NameRules.problem(with: name, dotted: true) == nil,
            let stored = try store.get(ResourceKey(kind: .gitSync, project: nil, name: name)), !stored.isTerminating,
            case .gitSync(let spec) = stored.resource.spec, let file = spec.webhookSecretFile,
            let text = try? String(contentsOfFile: file, encoding: .utf8)
        {
            secret = Array(text.trimmingCharacters(in: .whitespacesAndNewlines).utf8)
        }
        // The signature is checked whether or not the GitSync exists (against a random key when it
        // does not), so the time of a refusal does not tell which names exist.
        let signed = Self.webhookSigned(request.headers, body: body, secret: secret.isEmpty ? Array(UUID().uuidString.utf8) : secret)
        guard !secret.isEmpty, signed else { throw refused }
        guard let gitTrigger, await gitTrigger(name) else {
            throw APIError(kind: "unavailable", message: "the controller is not running syncs yet; try again in a moment")
        }
        return try json(HookAccepted(gitSync: name), status: .accepted)
    }

    /// Whether one of the signature headers git hosts send matches the body and secret.
    static func webhookSigned(_ headers: HTTPFields, body: [UInt8], secret: [UInt8]) -> Bool {
        let mac = Array(HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: secret)))
        let hex = Array(mac.map { String(format: "%02x", $0) }.joined().utf8)
        if let value = HTTPField.Name("X-Hub-Signature-256").flatMap({ headers[$0] }) {
            return value.hasPrefix("sha256=") && constantTimeEqual(Array(value.dropFirst(7).lowercased().utf8), hex)
        }
        if let value = HTTPField.Name("X-Gitea-Signature").flatMap({ headers[$0] }) {
            return constantTimeEqual(Array(value.lowercased().utf8), hex)
        }
        if let value = HTTPField.Name("X-Gitlab-Token").flatMap({ headers[$0] }) {
            return constantTimeEqual(Array(value.utf8), secret)
        }
        return false
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

/// The answer to an accepted webhook.
struct HookAccepted: Encodable {
    var gitSync: String
    var triggered = true
}
