import Foundation
import StratusAccess

/// Keeps `DATA/serve.json` up to date as listeners bind, and lets callers wait until all have.
public actor ServeInfoRecorder {
    /// A listener whose address goes into `serve.json`.
    public enum Endpoint: Hashable, Sendable {
        case api, ec2, s3, metadata, metrics
    }

    private let dataDirectory: String
    private var info: ServeInfo
    private var missing: Set<Endpoint>
    private var waiters: [CheckedContinuation<ServeInfo, Never>] = []

    init(dataDirectory: String, listen: String, region: String? = nil, expecting endpoints: Set<Endpoint>) {
        self.dataDirectory = dataDirectory
        info = ServeInfo(listen: listen)
        info.region = region
        missing = endpoints
    }

    /// Records where a listener bound and rewrites the file.
    func bound(_ endpoint: Endpoint, _ update: (inout ServeInfo) -> Void) {
        update(&info)
        missing.remove(endpoint)
        try? info.write(dataDirectory: dataDirectory)  // only tests and the CLI read it; a failed write must not stop the server
        guard missing.isEmpty else { return }
        for waiter in waiters { waiter.resume(returning: info) }
        waiters = []
    }

    /// The endpoints once every listener has bound.
    public func listening() async -> ServeInfo {
        if missing.isEmpty { return info }
        return await withCheckedContinuation { waiters.append($0) }
    }
}
