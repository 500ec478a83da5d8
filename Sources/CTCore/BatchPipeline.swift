/// Requests and the entries they are about, in the same order.
struct RequestBatch {
    var requests: [NetlinkRequest] = []
    var flows: [Flow] = []
}

/// Hands batches from the dumping thread to a second thread that sends
/// them (`work`) while the dump goes on. Bounded: `submit` blocks while two
/// batches are waiting. The first error stops the work; `finish` waits for
/// the thread and returns that error.
final class BatchPipeline<Batch>: @unchecked Sendable {
    private let work: (Batch) throws -> Void
    private let monitor = Monitor()
    private var queue: [Batch] = []
    private var closed = false
    private var failure: Error?
    private var worker: WorkerThread?
    private let capacity = 2

    init(work: @escaping (Batch) throws -> Void) {
        self.work = work
    }

    func start() throws {
        worker = try WorkerThread { [self] in run() }
    }

    /// Queues a batch; throws the work thread's error if it has failed.
    func submit(_ batch: Batch) throws {
        try monitor.locked {
            monitor.wait { queue.count < capacity || failure != nil }
            if let failure { throw failure }
            queue.append(batch)
            monitor.broadcast()
        }
    }

    /// No more batches: waits until all are done and returns the first error.
    func finish() -> Error? {
        monitor.locked {
            closed = true
            monitor.broadcast()
        }
        worker?.join()
        worker = nil
        return monitor.locked { failure }
    }

    private func run() {
        while true {
            let next: Batch? = monitor.locked {
                monitor.wait { !queue.isEmpty || closed || failure != nil }
                guard !queue.isEmpty, failure == nil else { return nil }
                monitor.broadcast()
                return queue.removeFirst()
            }
            guard let batch = next else { return }
            do {
                try work(batch)
            } catch {
                monitor.locked {
                    if failure == nil { failure = error }
                    monitor.broadcast()
                }
                return
            }
        }
    }
}
