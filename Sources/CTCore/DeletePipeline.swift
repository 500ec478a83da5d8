import Glibc

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
    private var mutex = pthread_mutex_t()
    private var changed = pthread_cond_t()
    private var queue: [DeleteBatch] = []
    private var closed = false
    private var failure: Error?
    private var thread = pthread_t()
    private var started = false
    private let capacity = 2

    init(socket: NetlinkSocket, onDeleted: @escaping (Flow) throws -> Void) {
        self.socket = socket
        self.onDeleted = onDeleted
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&changed, nil)
    }

    deinit {
        pthread_cond_destroy(&changed)
        pthread_mutex_destroy(&mutex)
    }

    func start() throws {
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { context in
            let pipeline = Unmanaged<DeletePipeline>.fromOpaque(context!).takeRetainedValue()
            pipeline.run()
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<DeletePipeline>.fromOpaque(context).release()
            throw Errno(rc)
        }
        started = true
    }

    /// Queues a batch; throws the delete thread's error if it has failed.
    func submit(_ batch: DeleteBatch) throws {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while queue.count >= capacity && failure == nil {
            pthread_cond_wait(&changed, &mutex)
        }
        if let failure { throw failure }
        queue.append(batch)
        pthread_cond_broadcast(&changed)
    }

    /// No more batches: waits until all are done and returns the first error.
    func finish() -> Error? {
        pthread_mutex_lock(&mutex)
        closed = true
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&mutex)
        if started { pthread_join(thread, nil) }
        started = false
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return failure
    }

    private func run() {
        while true {
            pthread_mutex_lock(&mutex)
            while queue.isEmpty && !closed && failure == nil {
                pthread_cond_wait(&changed, &mutex)
            }
            if queue.isEmpty || failure != nil {
                pthread_mutex_unlock(&mutex)
                return
            }
            let batch = queue.removeFirst()
            pthread_cond_broadcast(&changed)
            pthread_mutex_unlock(&mutex)
            do {
                try perform(batch)
            } catch {
                pthread_mutex_lock(&mutex)
                if failure == nil { failure = error }
                pthread_cond_broadcast(&changed)
                pthread_mutex_unlock(&mutex)
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
