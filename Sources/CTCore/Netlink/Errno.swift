import Glibc

/// A POSIX error number, as returned by a system call or carried in a
/// netlink error reply (`NLMSG_ERROR`).
public struct Errno: Error, Equatable, Hashable, CustomStringConvertible, Sendable {
    public let rawValue: Int32
    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's current `errno`.
    public static var current: Errno { Errno(Glibc.errno) }

    /// `strerror(3)` text, e.g. "Operation not permitted".
    public var description: String { String(cString: strerror(rawValue)) }

    public static let notPermitted = Errno(EPERM)
    public static let interrupted = Errno(EINTR)
    public static let noBufferSpace = Errno(ENOBUFS)
    public static let protocolError = Errno(EPROTO)
    public static let badMessage = Errno(EBADMSG)
    public static let noSuchProcess = Errno(ESRCH)
    public static let notSupported = Errno(EOPNOTSUPP)
    public static let noEntry = Errno(ENOENT)
    public static let exists = Errno(EEXIST)
    public static let brokenPipe = Errno(EPIPE)
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
