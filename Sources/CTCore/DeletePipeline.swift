/// Delete requests and the entries they delete.
struct DeleteBatch {
    var requests: [NetlinkRequest] = []
    var flows: [Flow] = []
}

/// Hands batches of delete requests from the dumping thread to a thread
/// that sends them and reports each deleted entry. Bounded: `submit`
/// blocks while two batches are waiting. The first error stops the work;
/// `finish` waits for the thread and returns that error.
final class DeletePipeline: @unchecked Sendable {
    private let socket: NetlinkSocket
    private let onDeleted: (Flow) throws -> Void
    private let monitor = Monitor()
    private var queue: [DeleteBatch] = []
    private var closed = false
    private var failure: Error?
    private var worker: WorkerThread?
    private let capacity = 2

    init(socket: NetlinkSocket, onDeleted: @escaping (Flow) throws -> Void) {
        self.socket = socket
        self.onDeleted = onDeleted
    }

    func start() throws {
        worker = try WorkerThread { [self] in run() }
    }

    /// Queues a batch; throws the delete thread's error if it has failed.
    func submit(_ batch: DeleteBatch) throws {
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
            let next: DeleteBatch? = monitor.locked {
                monitor.wait { !queue.isEmpty || closed || failure != nil }
                guard !queue.isEmpty, failure == nil else { return nil }
                monitor.broadcast()
                return queue.removeFirst()
            }
            guard let batch = next else { return }
            do {
                try perform(batch)
            } catch {
                monitor.locked {
                    if failure == nil { failure = error }
                    monitor.broadcast()
                }
                return
            }
        }
    }

    private func perform(_ batch: DeleteBatch) throws {
        let failures = try socket.performBatch(batch.requests)
        for (i, flow) in batch.flows.enumerated() {
            if let error = failures[i] {
                // Gone meanwhile (expired, or deleted by someone else).
                if error == Errno.noEntry { continue }
                throw error
            }
            try onDeleted(flow)
        }
    }
}
