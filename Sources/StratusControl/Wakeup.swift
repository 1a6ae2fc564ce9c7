/// Lets the controller loop sleep until there is something to do, or a timeout passes.
///
/// A signal sent while nobody waits is remembered, so a wakeup is never lost.
actor Wakeup {
    private var waiter: (id: Int, continuation: CheckedContinuation<Void, Never>)?
    private var pending = false
    private var nextID = 0

    /// Wakes the waiter, or the next one to wait.
    func signal() {
        if let waiter {
            self.waiter = nil
            waiter.continuation.resume()
        } else {
            pending = true
        }
    }

    /// Returns at the next signal, or after `timeout`.
    func wait(timeout: Duration) async {
        if pending {
            pending = false
            return
        }
        nextID += 1
        let id = nextID
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            waiter = (id, continuation)
            Task {
                try? await Task.sleep(for: timeout)
                await self.expire(id)
            }
        }
    }

    private func expire(_ id: Int) {
        guard let waiter, waiter.id == id else { return }
        self.waiter = nil
        waiter.continuation.resume()
    }
}
