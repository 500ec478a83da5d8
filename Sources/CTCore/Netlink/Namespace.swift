import CMnl
import Glibc

/// Network namespaces: ctl's sockets are opened in the namespace of the
/// thread that opens them, so entering one before the first socket (and
/// before any thread is started) moves the whole run there.
package enum NetworkNamespace {
    /// The file behind `name`: a path as it is (e.g. /proc/PID/ns/net),
    /// a bare name under /run/netns as `ip netns` keeps them.
    package static func path(for name: String) -> String {
        name.contains("/") ? name : "/run/netns/" + name
    }

    /// Where opening or entering `name` failed.
    package enum Failure: Error {
        case open(Errno)
        case enter(Errno)
    }

    /// Moves the calling thread into the network namespace `name`.
    package static func enter(_ name: String) throws(Failure) {
        let fd = open(path(for: name), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .open(Errno.current) }
        defer { close(fd) }
        guard cmnl_setns_net(fd) == 0 else { throw .enter(Errno.current) }
    }
}
