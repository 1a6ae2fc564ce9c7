import Foundation

/// A task executor with threads of its own. The controller runs on one so that its work does not
/// queue behind the API's: the global pool has one thread per core, and a hundred API clients
/// keep it full of handlers that each run to the end of a store call; a reconcile waiting its
/// turn there for every step let terminating instances pile up faster than they were deleted
/// (issue 19's load test). On threads of its own, the kernel shares the cores between the two.
///
/// `stop()` lets the threads end once nothing is queued. A job that arrives later (a task that
/// outlived the controller's run but kept its executor preference) gets a thread again.
public final class ThreadPoolExecutor: TaskExecutor, @unchecked Sendable {
    private let name: String
    private let condition = NSCondition()
    // Guarded by `condition`: jobs in arrival order (`head` is the next), threads alive, stopped.
    private var jobs: [UnownedJob] = []
    private var head = 0
    private var threads = 0
    private var stopped = false

    public init(name: String, threads: Int) {
        self.name = name
        condition.lock()
        for _ in 0..<max(1, threads) { spawn() }
        condition.unlock()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        if threads == 0 { spawn() }
        condition.signal()
        condition.unlock()
    }

    /// Lets the threads end when the queue is empty.
    public func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// Starts a worker; called with the lock held.
    private func spawn() {
        threads += 1
        let thread = Thread { self.work() }
        thread.name = "\(name)-\(threads)"
        thread.start()
    }

    private func work() {
        while true {
            condition.lock()
            while head == jobs.count && !stopped { condition.wait() }
            if head == jobs.count {
                threads -= 1
                condition.unlock()
                return
            }
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
