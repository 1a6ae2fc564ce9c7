import Foundation

/// A task executor with threads of its own. The controller runs on one so that its work does not
/// queue behind the API's: the global pool has one thread per core, and a hundred API clients
/// keep it full of handlers that each run to the end of a store call; a reconcile waiting its
/// turn there for every step let terminating instances pile up faster than they were deleted
/// (issue 19's load test). On threads of its own, the kernel shares the cores between the two.
public final class ThreadPoolExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    /// Jobs in arrival order; `head` is the next to run. Guarded by `condition`.
    private var jobs: [UnownedJob] = []
    private var head = 0

    /// The controllers' pool, shared by every controller of the process.
    public static let controller = ThreadPoolExecutor(name: "stratus.controller", threads: 2)

    public init(name: String, threads: Int) {
        for index in 0..<max(1, threads) {
            let thread = Thread { self.work() }  // the threads keep the executor: it lives as long as the process
            thread.name = "\(name)-\(index)"
            thread.start()
        }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while head == jobs.count { condition.wait() }
            let job = jobs[head]
            head += 1
            if head > 1024, head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
