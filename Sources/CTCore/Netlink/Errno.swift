import Glibc

/// A POSIX error number, as returned by a system call or carried in a
/// netlink error reply (`NLMSG_ERROR`).
package struct Errno: Error, Equatable, Hashable, CustomStringConvertible, Sendable {
    package let rawValue: Int32
    package init(_ rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's current `errno`.
    package static var current: Errno { Errno(Glibc.errno) }

    /// `strerror(3)` text, e.g. "Operation not permitted".
    package var description: String { String(cString: strerror(rawValue)) }

    package static let notPermitted = Errno(EPERM)
    package static let interrupted = Errno(EINTR)
    package static let noBufferSpace = Errno(ENOBUFS)
    package static let protocolError = Errno(EPROTO)
    package static let badMessage = Errno(EBADMSG)
    package static let noSuchProcess = Errno(ESRCH)
    package static let notSupported = Errno(EOPNOTSUPP)
    package static let noEntry = Errno(ENOENT)
    package static let exists = Errno(EEXIST)
    package static let brokenPipe = Errno(EPIPE)
    package static let tryAgain = Errno(EAGAIN)
}

/// Runs `body` until it does not fail with EINTR.
@inline(__always)
func retryOnInterrupt<T: BinaryInteger>(_ body: () -> T) -> T {
    while true {
        let result = body()
        if result >= 0 || Glibc.errno != EINTR { return result }
    }
}
