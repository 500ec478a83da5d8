import CMnl
import Glibc

/// The network namespace whose conntrack table a ``Conntrack`` handle works
/// on. Each namespace has its own table, expectations and events.
public enum NetworkNamespace: Sendable, Hashable, CustomStringConvertible {
    /// The namespace of the thread that opens the handle.
    case current
    /// A namespace kept by `ip netns` under `/run/netns/NAME`.
    case named(String)
    /// A namespace file, such as `/proc/PID/ns/net` or `/run/netns/NAME`.
    case path(String)
    /// An open descriptor of a namespace file. The handle duplicates it, so
    /// the caller may close its own.
    case descriptor(Int32)

    /// A namespace given by a name or a path: ``path(_:)`` when `name` has
    /// a slash, otherwise ``named(_:)`` (a name under /run/netns).
    public init(argument name: String) {
        self = name.contains("/") ? .path(name) : .named(name)
    }

    /// The file behind the namespace; nil for `current` and descriptors.
    public var filePath: String? {
        switch self {
        case .current, .descriptor: nil
        case .named(let name): "/run/netns/" + name
        case .path(let path): path
        }
    }

    /// The name, path or descriptor, or "current".
    public var description: String {
        switch self {
        case .current: "current"
        case .named(let name): name
        case .path(let path): path
        case .descriptor(let fd): "fd \(fd)"
        }
    }

    /// Where opening or entering a namespace failed.
    package enum Failure: Error {
        case open(Errno)
        case enter(Errno)
    }

    /// The file behind `name` as ctl's --netns takes it.
    package static func filePath(for name: String) -> String {
        NetworkNamespace(argument: name).filePath ?? name
    }

    /// Moves the calling thread into the network namespace `name` (ctl's
    /// --netns, before any socket or thread exists).
    package static func enter(_ name: String) throws(Failure) {
        let fd = open(filePath(for: name), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .open(Errno.current) }
        defer { close(fd) }
        guard cmnl_setns_net(fd) == 0 else { throw .enter(Errno.current) }
    }
}

/// Opens sockets inside one network namespace without moving the caller:
/// for another namespace, each opening runs on a short-lived thread that
/// enters it first (a socket stays in the namespace it was made in), so one
/// process can work on many namespaces at once.
package final class NamespaceGate: @unchecked Sendable {
    /// The namespace file, open; -1 for the current namespace.
    private let fd: Int32

    /// The calling thread's namespace.
    package static let current = NamespaceGate()

    private init() { fd = -1 }

    package init(_ namespace: NetworkNamespace) throws(NetworkNamespace.Failure) {
        switch namespace {
        case .current:
            fd = -1
        case .descriptor(let given):
            let copy = fcntl(given, F_DUPFD_CLOEXEC, 0)
            guard copy >= 0 else { throw .open(Errno.current) }
            fd = copy
        case .named, .path:
            let opened = open(namespace.filePath!, O_RDONLY | O_CLOEXEC)
            guard opened >= 0 else { throw .open(Errno.current) }
            fd = opened
        }
        // Entering it once now reports a file that is no network namespace
        // (or a missing privilege) when the handle is made, not later.
        if fd >= 0 {
            do {
                try run { }
            } catch let error as NetworkNamespace.Failure {
                close(fd)
                throw error
            } catch {
                close(fd)
                throw .enter(Errno(EINVAL))
            }
        }
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// Runs `body` inside the namespace and returns what it returns.
    package func run<T>(_ body: () throws -> T) throws -> T {
        guard fd >= 0 else { return try body() }
        let slot = ResultSlot<T>()
        let fd = self.fd
        try withoutActuallyEscaping(body) { body in
            let work = UncheckedBox(body)
            let thread = try WorkerThread {
                guard cmnl_setns_net(fd) == 0 else {
                    slot.result = .failure(NetworkNamespace.Failure.enter(Errno.current))
                    return
                }
                slot.result = Result { try work.value() }
            }
            thread.join()
        }
        return try slot.result!.get()
    }

    /// A netlink socket of the namespace.
    package func transport() throws -> NetlinkTransport {
        try run { try MnlTransport() }
    }
}

/// Where a session's sockets come from: the kernel of a namespace, or in
/// unit tests a scripted stand-in.
package struct SocketSource: Sendable {
    private let make: @Sendable () throws -> NetlinkTransport
    /// Runs code that opens other kinds of socket (events) in the namespace.
    package let gate: NamespaceGate

    package init(gate: NamespaceGate) {
        self.gate = gate
        make = { try gate.transport() }
    }

    /// Transports from `make` (unit tests).
    package init(_ make: @escaping @Sendable () throws -> NetlinkTransport) {
        gate = .current
        self.make = make
    }

    /// The calling thread's namespace.
    package static let current = SocketSource(gate: .current)

    package func socket() throws -> NetlinkSocket {
        NetlinkSocket(transport: try make())
    }

    /// A socket whose receive buffer holds the replies of a whole batch.
    package func batchSocket() throws -> NetlinkSocket {
        let socket = try socket()
        socket.prepareForBatches()
        return socket
    }
}

/// A result handed from a thread that `join` waits for.
private final class ResultSlot<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}

/// A value handed to a thread that the caller waits for.
package final class UncheckedBox<T>: @unchecked Sendable {
    package let value: T
    package init(_ value: T) { self.value = value }
}
