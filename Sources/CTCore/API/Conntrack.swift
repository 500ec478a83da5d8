import Glibc

/// A handle on the connection tracking table of one network namespace.
///
/// ```swift
/// let conntrack = try Conntrack()                        // this namespace
/// let blue = try Conntrack(namespace: .named("blue"))    // /run/netns/blue
///
/// var filter = FlowFilter()
/// filter.ipProtocol = .udp
/// filter.origDstPort = 53
/// for try await flow in blue.flows(matching: filter) {
///     print(flow.orig?.src as Any, flow.timeout ?? 0)
/// }
/// ```
///
/// Every socket of a handle is opened inside its namespace, on a
/// short-lived thread that enters it, so one process can hold handles on
/// many namespaces at once without moving any of its own threads. A handle
/// is `Sendable`: operations from several tasks or threads at once each get
/// a socket of their own. Most operations need CAP_NET_ADMIN in the
/// namespace's user namespace; without it they throw a ``ConntrackError``
/// whose ``ConntrackError/errno`` is `.notPermitted`.
public final class Conntrack: @unchecked Sendable {
    /// The namespace whose table this handle works on.
    public let namespace: NetworkNamespace
    /// What the kernel can do, as the handle uses it: which filters it hands
    /// the kernel, and which operations it refuses on an older kernel.
    public let capabilities: KernelCapabilities

    package let sockets: SocketSource
    private let monitor = Monitor()
    /// Sessions not in use; an operation takes one or opens a new one.
    private var idle: [CTSession] = []

    /// Opens a handle on the table of `namespace`, and one socket in it (so
    /// that a namespace or permission problem shows here).
    ///
    /// - Parameters:
    ///   - namespace: The network namespace whose table the handle works
    ///     on; by default the caller's.
    ///   - capabilities: The kernel's capabilities; by default worked out
    ///     from the running kernel. Pass fewer to keep the library from
    ///     using a feature (see <doc:KernelFiltering>).
    /// - Throws: ``ConntrackError`` with reason
    ///   ``ConntrackError/Reason/namespace(_:_:)`` when the namespace cannot
    ///   be opened or entered, or the socket's `errno`.
    public init(namespace: NetworkNamespace = .current,
                capabilities: KernelCapabilities = .detect()) throws(ConntrackError) {
        self.namespace = namespace
        self.capabilities = capabilities
        do {
            sockets = SocketSource(gate: try NamespaceGate(namespace))
        } catch {
            switch error {
            case .open(let errno), .enter(let errno):
                throw ConntrackError(.open, .namespace(namespace, errno))
            }
        }
        // One socket now: a namespace or socket problem shows here.
        release(try session(.open))
    }

    /// A handle whose sockets come from `sockets` (unit tests replay
    /// recorded kernel answers through it).
    package init(sockets: SocketSource, capabilities: KernelCapabilities) {
        namespace = .current
        self.capabilities = capabilities
        self.sockets = sockets
    }

    /// Takes an idle session or opens one.
    private func session(_ operation: ConntrackError.Operation) throws(ConntrackError) -> CTSession {
        if let session = monitor.locked({ idle.popLast() }) { return session }
        do {
            return try CTSession(sockets: sockets)
        } catch {
            throw ConntrackError(operation, wrapping: error)
        }
    }

    private func release(_ session: CTSession) {
        monitor.locked {
            if idle.count < 4 { idle.append(session) }
        }
    }

    /// Runs `body` with a session of its own. A session whose operation
    /// failed is dropped (its socket may hold the rest of an answer), unless
    /// the kernel answered with an error reply, which ends its answer.
    package func withSession<T>(_ operation: ConntrackError.Operation,
                                _ body: (CTSession) throws -> T) throws(ConntrackError) -> T {
        let session = try session(operation)
        do {
            let result = try body(session)
            release(session)
            return result
        } catch {
            if let errno = error as? Errno, Self.answerEnded(by: errno) { release(session) }
            throw ConntrackError(operation, wrapping: error)
        }
    }

    /// Errors the kernel gives as a complete answer (the entry is missing,
    /// exists, the caller lacks the privilege, ...), after which the socket
    /// is as good as before; not the reader's own checks (EPROTO, ESRCH,
    /// EBADMSG) or a lost answer (ENOBUFS).
    private static func answerEnded(by errno: Errno) -> Bool {
        ![Errno.protocolError, .noSuchProcess, .badMessage, .noBufferSpace, .interrupted].contains(errno)
    }
}

// MARK: - Dumps

/// What a dump callback wants next (see
/// ``Conntrack/forEachFlow(matching:zeroingCounters:_:)``).
public enum DumpControl: Sendable {
    /// Hand over the next entry.
    case proceed
    /// End the dump now (the rest of the kernel's answer is read and dropped).
    case stop
}

/// How a dump went, besides the entries it handed over.
public struct DumpSummary: Sendable, Equatable {
    /// The kernel flagged the dump as interrupted (NLM_F_DUMP_INTR): the
    /// table changed while it was dumped, so an entry may be missing or
    /// appear twice. Dump again for a consistent view.
    public var interrupted = false
    /// Why messages of the answer were skipped (they could not be decoded).
    public var skipped: [String] = []
    /// The callback ended the dump early.
    public var stopped = false

    /// A summary of a dump that went through without remarks.
    public init() {}
}

/// Thrown inside a dump to end it when the callback says `.stop`.
struct StopDump: Error {}

extension Conntrack {
    /// Calls `body` with each entry that `filter` matches, as the kernel's
    /// answer arrives, without collecting them: memory does not grow with
    /// the table. The fastest way through a large table.
    ///
    /// The kernel drops what it can evaluate of `filter` on this kernel
    /// (see ``FlowFilter/kernelFilteredClauses(on:)``); every entry that
    /// arrives is checked against the whole filter.
    ///
    /// - Parameters:
    ///   - filter: The entries to hand over; by default all.
    ///   - zeroingCounters: Whether the kernel zeroes each entry's counters
    ///     as it reports them (IPCTNL_MSG_CT_GET_CTRZERO), so that the next
    ///     dump counts from here.
    ///   - body: Called with each matching entry, on the calling thread;
    ///     returns ``DumpControl/stop`` to end the dump early.
    /// - Returns: Whether the dump was interrupted or stopped, and what was
    ///   skipped.
    @discardableResult
    public func forEachFlow(matching filter: FlowFilter = FlowFilter(), zeroingCounters: Bool = false,
                            _ body: (Flow) -> DumpControl) throws(ConntrackError) -> DumpSummary {
        try forEachFlow(matching: filter, zeroingCounters: zeroingCounters, where: nil, body)
    }

    /// The dump behind `forEachFlow`: `extra`, when given, must also hold.
    package func forEachFlow(matching filter: FlowFilter, zeroingCounters: Bool = false,
                             where extra: ((Flow) -> Bool)?,
                             _ body: (Flow) -> DumpControl) throws(ConntrackError) -> DumpSummary {
        let capabilities = self.capabilities
        return try withSession(.dump) { session in
            var summary = DumpSummary()
            do {
                let outcome = try session.dump(filter, kernel: capabilities, zeroCounters: zeroingCounters) { flow in
                    if let extra, !extra(flow) { return }
                    if body(flow) == .stop { throw StopDump() }
                }
                summary.interrupted = outcome.interrupted
            } catch is StopDump {
                summary.stopped = true
            }
            summary.skipped = session.malformed.map(\.reason)
            return summary
        }
    }

    /// Every entry `filter` matches, collected in an array (for small
    /// tables; see ``forEachFlow(matching:zeroingCounters:_:)`` and
    /// ``flows(matching:bufferSize:failOnInterrupt:)`` for large ones).
    public func allFlows(matching filter: FlowFilter = FlowFilter()) throws(ConntrackError) -> [Flow] {
        var flows: [Flow] = []
        try forEachFlow(matching: filter) { flows.append($0); return .proceed }
        return flows
    }

    /// The entries `filter` matches as an asynchronous sequence.
    ///
    /// The dump runs on a thread of its own and hands entries over in
    /// chunks; at most `bufferSize` entries wait for the consumer, and the
    /// dump waits while they do (backpressure). Cancelling the task, or
    /// dropping the iterator, ends the dump. A dump the kernel flags as
    /// interrupted (see ``DumpSummary/interrupted``) ends normally, unless
    /// `failOnInterrupt` is set: then, after the last entry, `next()` throws
    /// a ``ConntrackError`` with the reason `.dumpInterrupted`, and the
    /// caller may dump again.
    ///
    /// - Parameters:
    ///   - filter: The entries to deliver; by default all.
    ///   - bufferSize: At most this many entries wait for the consumer.
    ///   - failOnInterrupt: Whether an interrupted dump ends with an error.
    public func flows(matching filter: FlowFilter = FlowFilter(), bufferSize: Int = 4096,
                      failOnInterrupt: Bool = false) -> FlowSequence {
        FlowSequence(conntrack: self, filter: filter, bufferSize: bufferSize, failOnInterrupt: failOnInterrupt)
    }
}

/// The entries of one dump, as ``Conntrack/flows(matching:bufferSize:failOnInterrupt:)`` returns them.
///
/// Each iterator runs a dump of its own, which starts when the iterator is
/// made.
public struct FlowSequence: AsyncSequence, Sendable {
    public typealias Element = Flow
    public typealias Failure = ConntrackError

    let conntrack: Conntrack
    let filter: FlowFilter
    let bufferSize: Int
    let failOnInterrupt: Bool

    /// Entries handed over at a time.
    static let chunkSize = 256

    /// Starts a dump and returns the iterator over its entries.
    public func makeAsyncIterator() -> Iterator {
        let chunk = Self.chunkSize
        let channel = StreamChannel<Flow>(capacity: Swift.max(1, bufferSize / chunk))
        let conntrack = self.conntrack, filter = self.filter, failOnInterrupt = self.failOnInterrupt
        do {
            try WorkerThread.detached {
                var pending: [Flow] = []
                pending.reserveCapacity(chunk)
                do throws(ConntrackError) {
                    let summary = try conntrack.forEachFlow(matching: filter, where: nil) { flow in
                        pending.append(flow)
                        if pending.count >= chunk {
                            guard channel.put(pending) else { return .stop }
                            pending.removeAll(keepingCapacity: true)
                        }
                        return .proceed
                    }
                    _ = channel.put(pending)
                    channel.finish(failOnInterrupt && summary.interrupted
                                   ? ConntrackError(.dump, .dumpInterrupted) : nil)
                } catch {
                    channel.finish(error)
                }
            }
        } catch {
            channel.finish(ConntrackError(.dump, wrapping: error))
        }
        return Iterator(reader: ChannelReader(channel))
    }

    /// The entries of one dump; dropping it ends the dump.
    public struct Iterator: AsyncIteratorProtocol {
        let reader: ChannelReader<Flow>

        /// The next entry; nil after the last one or once the task is
        /// cancelled.
        public mutating func next() async throws(ConntrackError) -> Flow? {
            try await reader.next()
        }

        /// The next entry; nil after the last one or once the task is
        /// cancelled.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(ConntrackError) -> Flow? {
            try await reader.next(isolation: actor)
        }
    }
}
