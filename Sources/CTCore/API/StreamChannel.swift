/// Hands chunks of elements from a producing thread (a dump or an event
/// socket, which block in system calls) to an async consumer.
///
/// Bounded: `put` blocks the producer while `capacity` chunks wait, so a
/// slow consumer slows the dump (or lets the kernel's socket buffer fill,
/// which an event stream reports as loss). `cancel` ends both sides: the
/// producer's next `put` returns false, a waiting `take` returns the end.
package final class StreamChannel<Element: Sendable>: @unchecked Sendable {
    private let monitor = Monitor()
    private var chunks: [[Element]] = []
    private var finished = false
    private var failure: ConntrackError?
    private var cancelled = false
    private var waiter: CheckedContinuation<Void, Never>?
    private let capacity: Int
    /// Called once the channel is cancelled: wakes a producer that waits
    /// for something other than room in the channel (an event socket).
    private let onCancel: (@Sendable () -> Void)?

    package init(capacity: Int, onCancel: (@Sendable () -> Void)? = nil) {
        self.capacity = max(1, capacity)
        self.onCancel = onCancel
    }

    /// Producer: queues a chunk, waiting for room; false once cancelled.
    package func put(_ chunk: [Element]) -> Bool {
        guard !chunk.isEmpty else { return !isCancelled }
        var resume: CheckedContinuation<Void, Never>?
        let accepted = monitor.locked { () -> Bool in
            monitor.wait { chunks.count < capacity || cancelled }
            guard !cancelled else { return false }
            chunks.append(chunk)
            resume = waiter
            waiter = nil
            return true
        }
        resume?.resume()
        return accepted
    }

    /// Producer: no more chunks; `error` ends the stream after the queued ones.
    package func finish(_ error: ConntrackError? = nil) {
        let resume = monitor.locked { () -> CheckedContinuation<Void, Never>? in
            finished = true
            failure = error
            monitor.broadcast()
            defer { waiter = nil }
            return waiter
        }
        resume?.resume()
    }

    /// Either side: the consumer went away or was cancelled.
    package func cancel() {
        let (resume, first) = monitor.locked { () -> (CheckedContinuation<Void, Never>?, Bool) in
            let first = !cancelled
            cancelled = true
            monitor.broadcast()
            defer { waiter = nil }
            return (waiter, first)
        }
        resume?.resume()
        if first { onCancel?() }
    }

    package var isCancelled: Bool { monitor.locked { cancelled } }

    private enum Next {
        case chunk([Element])
        case end(ConntrackError?)
        case wait
    }

    /// Consumer: the next chunk; nil at the end (or after cancellation).
    package func take() async throws(ConntrackError) -> [Element]? {
        while true {
            let next = monitor.locked { () -> Next in
                if !chunks.isEmpty {
                    monitor.broadcast()
                    return .chunk(chunks.removeFirst())
                }
                if cancelled { return .end(nil) }
                if finished { return .end(failure) }
                return .wait
            }
            switch next {
            case .chunk(let chunk):
                return chunk
            case .end(let error):
                if let error { throw error }
                return nil
            case .wait:
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let ready = monitor.locked { () -> Bool in
                        if !chunks.isEmpty || finished || cancelled { return true }
                        waiter = continuation
                        return false
                    }
                    if ready { continuation.resume() }
                }
            }
        }
    }
}

/// The consumer side of a channel, for an async iterator: takes chunks and
/// hands out their elements one by one; cancels the producer when the
/// task is cancelled or the iterator goes away.
package final class ChannelReader<Element: Sendable>: @unchecked Sendable {
    private let channel: StreamChannel<Element>
    private var chunk: [Element] = []
    private var index = 0
    private var ended = false

    package init(_ channel: StreamChannel<Element>) {
        self.channel = channel
    }

    deinit { channel.cancel() }

    /// The next element: from the chunk at hand without suspending, else
    /// after waiting for the next chunk. It runs on the caller's executor
    /// (`isolation`), so a loop on an actor does not hop per element.
    package func next(isolation actor: isolated (any Actor)? = #isolation) async throws(ConntrackError) -> Element? {
        if index < chunk.count {
            defer { index += 1 }
            return chunk[index]
        }
        while index >= chunk.count {
            if ended { return nil }
            let channel = self.channel
            let taken: Result<[Element]?, ConntrackError> = await withTaskCancellationHandler {
                do throws(ConntrackError) {
                    return .success(try await channel.take())
                } catch {
                    return .failure(error)
                }
            } onCancel: {
                channel.cancel()
            }
            switch taken {
            case .success(let next?):
                chunk = next
                index = 0
            case .success(nil):
                ended = true
                chunk = []
                return nil
            case .failure(let error):
                ended = true
                chunk = []
                throw error
            }
        }
        defer { index += 1 }
        return chunk[index]
    }
}
