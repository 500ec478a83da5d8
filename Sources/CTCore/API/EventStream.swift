import Glibc

/// What an event stream does when the kernel drops events because the
/// stream's socket buffer is full (the consumer fell behind a burst).
public enum EventOverflowPolicy: Sendable, Equatable {
    /// Deliver ``ConntrackEvent/lost`` and go on with the events after the
    /// gap. Drops the kernel counted but never reported (SO_MEMINFO) are
    /// delivered the same way.
    case report
    /// Deliver ``ConntrackEvent/lost``, then the whole table as it is now
    /// (``ConntrackEvent/resyncStarted``, one ``ConntrackEvent/snapshot(_:)``
    /// per matching entry, ``ConntrackEvent/resyncFinished``), so that a
    /// consumer that keeps state can rebuild it; then the events go on.
    case resync
    /// Ask the kernel for reliable delivery (NETLINK_BROADCAST_ERROR with
    /// NETLINK_NO_ENOBUFS): a failed delivery goes back to the kernel,
    /// which keeps destroy events and retries them, instead of being
    /// reported here. Where the kernel still drops events, the stream
    /// delivers ``ConntrackEvent/lost`` as with ``report``.
    case reliable
    /// End the stream by throwing a ``ConntrackError`` whose reason is
    /// `.eventsLost`.
    case fail
}

/// One element of an event stream: an event, or what the stream has to
/// say about the events between them.
public enum ConntrackEvent: Sendable, Equatable {
    /// An entry was created, updated or destroyed.
    case event(Event)
    /// The kernel dropped events here: the stream has a gap.
    case lost
    /// The table's current entries follow (overflow policy `.resync`).
    case resyncStarted
    /// An entry of the table as it is now.
    case snapshot(Flow)
    /// The table's entries are complete; events follow again.
    case resyncFinished
}

/// A stream's settings.
public struct EventStreamOptions: Sendable, Equatable {
    /// Which events to receive.
    public var types: Set<EventType> = Set(EventType.allCases)
    /// What to do about lost events.
    public var overflow: EventOverflowPolicy = .report
    /// The socket's receive buffer in bytes (nil: the system default). A
    /// larger buffer rides out longer bursts.
    public var receiveBufferSize: Int?
    /// At most this many events wait for the consumer; beyond it the stream
    /// stops reading and the kernel's socket buffer fills.
    public var bufferedEvents = 4096

    /// Settings for a stream of `types` events with overflow policy
    /// `overflow` and a receive buffer of `receiveBufferSize` bytes.
    public init(types: Set<EventType> = Set(EventType.allCases), overflow: EventOverflowPolicy = .report,
                receiveBufferSize: Int? = nil) {
        self.types = types
        self.overflow = overflow
        self.receiveBufferSize = receiveBufferSize
    }
}

extension Conntrack {
    /// The conntrack events of this namespace that `filter` matches, as they
    /// happen, until the task is cancelled or the iterator dropped.
    ///
    /// The filter is also compiled into a socket filter, so the kernel
    /// drops most events the filter rejects before they are queued (where
    /// the handle's ``capabilities`` include the event socket filter).
    /// Loss is part of the stream, never a silent gap: see
    /// ``EventOverflowPolicy``.
    ///
    /// The stream starts listening when its iterator is made (a
    /// `for try await` loop makes it as it starts), on a thread of its own
    /// that opens the event socket; events before that are not seen. Each
    /// iterator is a subscription of its own.
    ///
    /// - Parameters:
    ///   - filter: The events to deliver, by the entry they carry; by
    ///     default all.
    ///   - options: Event types, overflow policy and buffer sizes.
    public func events(matching filter: FlowFilter = FlowFilter(),
                       options: EventStreamOptions = EventStreamOptions()) -> EventSequence {
        EventSequence(conntrack: self, filter: filter, options: options)
    }
}

/// The events of one subscription (see ``Conntrack/events(matching:options:)``).
public struct EventSequence: AsyncSequence, Sendable {
    /// An event, or a remark of the stream about the events.
    public typealias Element = ConntrackEvent
    /// What ends a stream early: a socket error, or a loss under the
    /// ``EventOverflowPolicy/fail`` policy.
    public typealias Failure = ConntrackError

    let conntrack: Conntrack
    let filter: FlowFilter
    let options: EventStreamOptions

    /// Subscribes: starts the thread that listens.
    public func makeAsyncIterator() -> Iterator {
        let capacity = Swift.max(1, options.bufferedEvents / 64)
        let pipe: WakePipe
        do {
            pipe = try WakePipe()
        } catch {
            let channel = StreamChannel<ConntrackEvent>(capacity: 1)
            channel.finish(ConntrackError(.events, wrapping: error))
            return Iterator(reader: ChannelReader(channel))
        }
        let channel = StreamChannel<ConntrackEvent>(capacity: capacity, onCancel: { pipe.wake() })
        // The socket is subscribed before the iterator is handed out: no
        // event after this call is missed.
        let thread = EventListenerThread(conntrack: conntrack, filter: filter, options: options, channel: channel, wake: pipe)
        do {
            try thread.subscribe()
            thread.start()
        } catch {
            channel.finish(error)
        }
        return Iterator(reader: ChannelReader(channel))
    }

    /// One subscription; dropping it ends the subscription.
    public struct Iterator: AsyncIteratorProtocol {
        let reader: ChannelReader<ConntrackEvent>

        /// The next element; nil once the task is cancelled or the iterator
        /// dropped.
        public mutating func next() async throws(ConntrackError) -> ConntrackEvent? {
            try await reader.next()
        }

        /// The next element; nil once the task is cancelled or the iterator
        /// dropped.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(ConntrackError) -> ConntrackEvent? {
            try await reader.next(isolation: actor)
        }
    }
}

/// A pipe whose read end wakes a thread waiting in ppoll.
final class WakePipe: @unchecked Sendable {
    let readEnd: Int32
    private let writeEnd: Int32

    init() throws(Errno) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw Errno.current }
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, O_NONBLOCK)
        }
        readEnd = fds[0]
        writeEnd = fds[1]
    }

    deinit {
        close(readEnd)
        close(writeEnd)
    }

    func wake() {
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
    }
}

/// The thread that reads an event socket into a stream's channel.
final class EventListenerThread: @unchecked Sendable {
    private let conntrack: Conntrack
    private let filter: FlowFilter
    private let options: EventStreamOptions
    private let channel: StreamChannel<ConntrackEvent>
    private let wake: WakePipe

    init(conntrack: Conntrack, filter: FlowFilter, options: EventStreamOptions,
         channel: StreamChannel<ConntrackEvent>, wake: WakePipe) {
        self.conntrack = conntrack
        self.filter = filter
        self.options = options
        self.channel = channel
        self.wake = wake
    }

    /// Runs the listener on a thread of its own, until the channel is
    /// cancelled (which wakes it) or the socket fails.
    func start() {
        do {
            try WorkerThread.detached { [self] in
                do throws(ConntrackError) {
                    try run()
                    channel.finish()
                } catch {
                    channel.finish(error)
                }
            }
        } catch {
            channel.finish(ConntrackError(.events, wrapping: error))
        }
    }

    private var groups: EventGroups {
        var groups: EventGroups = []
        if options.types.contains(.new) { groups.insert(.new) }
        if options.types.contains(.update) { groups.insert(.update) }
        if options.types.contains(.destroy) { groups.insert(.destroy) }
        return groups
    }

    /// The subscribed socket, from `subscribe` on.
    private var listener: EventListener?

    /// Opens and subscribes the event socket (in the handle's namespace).
    func subscribe() throws(ConntrackError) {
        do {
            let filter = self.filter, groups = self.groups, options = self.options
            let socketFilter = conntrack.capabilities.supports(.eventSocketFilter)
            let listener = try conntrack.sockets.gate.run {
                try EventListener(groups: groups, selector: filter, kernelFilter: socketFilter,
                                  reliable: options.overflow == .reliable)
            }
            if let size = options.receiveBufferSize { try listener.setReceiveBuffer(bytes: size) }
            self.listener = listener
        } catch {
            throw ConntrackError(.events, wrapping: error)
        }
    }

    private func run() throws(ConntrackError) {
        guard let listener else { return }
        var mask = sigset_t()
        pthread_sigmask(SIG_SETMASK, nil, &mask)
        var pending: [ConntrackEvent] = []
        while !channel.isCancelled {
            do {
                _ = try listener.next(signalMask: mask, wake: wake.readEnd, onMalformed: { _ in }) { event in
                    pending.append(.event(event))
                }
            } catch let error as Errno where error == .noBufferSpace {
                pending.append(.lost)
                switch options.overflow {
                case .fail:
                    _ = channel.put(pending)
                    throw ConntrackError(.events, .eventsLost)
                case .resync:
                    guard channel.put(pending) else { return }
                    pending = []
                    guard try resync() else { return }
                case .report, .reliable:
                    break
                }
            } catch {
                _ = channel.put(pending)
                throw ConntrackError(.events, wrapping: error)
            }
            guard channel.put(pending) else { return }
            pending.removeAll(keepingCapacity: true)
        }
    }

    /// The table as it is now, between `resyncStarted` and `resyncFinished`;
    /// false when the consumer went away meanwhile.
    private func resync() throws(ConntrackError) -> Bool {
        guard channel.put([.resyncStarted]) else { return false }
        var chunk: [ConntrackEvent] = []
        var open = true
        try conntrack.forEachFlow(matching: filter) { flow in
            chunk.append(.snapshot(flow))
            if chunk.count >= 256 {
                open = channel.put(chunk)
                chunk = []
            }
            return open ? .proceed : .stop
        }
        guard open, channel.put(chunk) else { return false }
        return channel.put([.resyncFinished])
    }
}
