import Glibc

/// A POSIX error number, as returned by a system call or carried in a
/// netlink error reply (`NLMSG_ERROR`).
public struct Errno: Error, Equatable, Hashable, CustomStringConvertible, Sendable {
    /// The number, as `errno.h` defines it.
    public let rawValue: Int32
    /// The error number `rawValue`.
    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's current `errno`.
    public static var current: Errno { Errno(Glibc.errno) }

    /// `strerror(3)` text, e.g. "Operation not permitted".
    public var description: String { String(cString: strerror(rawValue)) }

    /// EPERM: the caller lacks CAP_NET_ADMIN.
    public static let notPermitted = Errno(EPERM)
    /// EINTR.
    public static let interrupted = Errno(EINTR)
    /// ENOBUFS: a socket buffer overflowed.
    public static let noBufferSpace = Errno(ENOBUFS)
    /// EPROTO.
    public static let protocolError = Errno(EPROTO)
    /// EBADMSG.
    public static let badMessage = Errno(EBADMSG)
    /// ESRCH.
    public static let noSuchProcess = Errno(ESRCH)
    /// EOPNOTSUPP.
    public static let notSupported = Errno(EOPNOTSUPP)
    /// ENOENT: no such entry.
    public static let noEntry = Errno(ENOENT)
    /// EEXIST: the entry exists.
    public static let exists = Errno(EEXIST)
    /// EPIPE.
    public static let brokenPipe = Errno(EPIPE)
    /// EAGAIN.
    public static let tryAgain = Errno(EAGAIN)
}

/// Runs `body` until it does not fail with EINTR.
@inline(__always)
func retryOnInterrupt<T: BinaryInteger>(_ body: () -> T) -> T {
    while true {
        let result = body()
        if result >= 0 || Glibc.errno != EINTR { return result }
    }
}
