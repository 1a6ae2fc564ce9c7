import Dispatch

/// Runs blocking work (sockets, semaphores) on a Dispatch thread and awaits it, so that it never
/// holds one of the few threads of Swift's cooperative pool: tests run in parallel in one process,
/// and two blocked pool threads stall every other test's tasks.
public func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}
