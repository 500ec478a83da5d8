/// Why an operation of a ``Conntrack`` handle failed.
///
/// Every operation throws this one type. ``operation`` says which one
/// failed, ``reason`` why; ``errno`` gives the system error number where
/// the kernel or a system call answered with one.
public struct ConntrackError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The operation that failed.
    public enum Operation: String, Sendable {
        /// Opening a handle or a socket.
        case open
        /// Making a ``FlowKey`` of a tuple.
        case key
        /// A dump of the table.
        case dump
        /// ``Conntrack/get(_:)``.
        case get
        /// Creating an entry.
        case create
        /// Updating an entry, or a batch of mixed writes.
        case update
        /// Deleting entries, by key or by filter.
        case delete
        /// Flushing the table.
        case flush
        /// Reading statistics.
        case statistics
        /// An event stream.
        case events
        /// A dump of the expectations.
        case expectationDump
        /// Getting an expectation.
        case expectationGet
        /// Creating an expectation.
        case expectationCreate
        /// Deleting an expectation.
        case expectationDelete
        /// Flushing the expectations.
        case expectationFlush
    }

    /// What went wrong.
    public enum Reason: Sendable, Equatable {
        /// The kernel or a system call answered with an error number:
        /// `.noEntry` (ENOENT) for an entry that is not there, `.exists`
        /// (EEXIST) for one that is, `.notPermitted` (EPERM) without
        /// CAP_NET_ADMIN.
        case system(Errno)
        /// The running kernel lacks `feature`, and the operation cannot be
        /// done exactly without it.
        case unsupported(KernelFeature, kernel: KernelVersion)
        /// The network namespace could not be opened or entered.
        case namespace(NetworkNamespace, Errno)
        /// A value given to the operation cannot be sent as it is.
        case invalidArgument(String)
        /// The kernel sent a reply that could not be decoded.
        case malformedReply(String)
        /// Events were lost and the stream's overflow policy is `.fail`.
        case eventsLost
        /// The table changed during the dump (NLM_F_DUMP_INTR): entries
        /// may be missing or repeated.
        case dumpInterrupted
    }

    /// The operation that failed.
    public let operation: Operation
    /// Why it failed.
    public let reason: Reason

    /// The error of `operation`, for `reason`.
    public init(_ operation: Operation, _ reason: Reason) {
        self.operation = operation
        self.reason = reason
    }

    /// The system error number, where there is one.
    public var errno: Errno? {
        switch reason {
        case .system(let e), .namespace(_, let e): e
        default: nil
        }
    }

    /// A sentence for people: the operation, and why it failed.
    public var description: String {
        switch reason {
        case .system(let e): "\(operation.rawValue) failed: \(e)"
        case .unsupported(let f, let v):
            "\(operation.rawValue) failed: the kernel (\(v)) lacks \(f.rawValue), which Linux \(f.introduced) added"
        case .namespace(let ns, let e): "cannot open or enter network namespace \(ns): \(e)"
        case .invalidArgument(let why): "\(operation.rawValue): \(why)"
        case .malformedReply(let why): "\(operation.rawValue) failed: malformed kernel reply: \(why)"
        case .eventsLost: "events were lost (the receive buffer overflowed)"
        case .dumpInterrupted: "\(operation.rawValue) interrupted: the table changed during the dump"
        }
    }

    /// `error`, as thrown inside the library, as the error of `operation`.
    package init(_ operation: Operation, wrapping error: any Error) {
        switch error {
        case let e as ConntrackError: self = e
        case let e as Errno: self.init(operation, .system(e))
        case let e as MalformedMessage: self.init(operation, .malformedReply(e.reason))
        case let e as RefusedRequest: self.init(operation, .invalidArgument(e.description))
        case let e as NetworkNamespace.Failure:
            switch e {
            case .open(let errno), .enter(let errno): self.init(operation, .namespace(.current, errno))
            }
        default: self.init(operation, .invalidArgument(String(describing: error)))
        }
    }
}
