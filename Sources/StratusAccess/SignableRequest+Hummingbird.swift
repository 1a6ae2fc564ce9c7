import Foundation
import Hummingbird
import NIOCore
import StratusIdentity

extension SignableRequest {
    /// The parts of a Hummingbird request a signature covers (the Host header is the request's authority).
    public init(_ request: Request, body: ByteBuffer) {
        var headers = request.headers.map { (name: $0.name.canonicalName, value: $0.value) }
        if let authority = request.head.authority, !headers.contains(where: { $0.name == "host" }) { headers.append((name: "host", value: authority)) }
        self.init(method: request.method.rawValue, path: request.uri.path, query: request.uri.query ?? "", headers: headers, body: Data(body.readableBytesView))
    }
}
