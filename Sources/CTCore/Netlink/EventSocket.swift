import CMnl
import Glibc

/// ctnetlink's multicast groups, as bits of the bind mask
/// (bit N-1 for group N).
package struct EventGroups: OptionSet, Sendable {
    package let rawValue: UInt32
    package init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `[.a, .b]` without SetAlgebra's generic initialiser, whose
    /// associated-type lookup scans every protocol conformance of the
    /// binary the first time (a cost at each start of ctl).
    package init(arrayLiteral elements: EventGroups...) {
        rawValue = elements.reduce(0) { $0 | $1.rawValue }
    }
    package static let new = EventGroups(rawValue: 1 << 0)         // NFNLGRP_CONNTRACK_NEW
    package static let update = EventGroups(rawValue: 1 << 1)      // NFNLGRP_CONNTRACK_UPDATE
    package static let destroy = EventGroups(rawValue: 1 << 2)     // NFNLGRP_CONNTRACK_DESTROY
    package static let all: EventGroups = [.new, .update, .destroy]
    package static let expectationNew = EventGroups(rawValue: 1 << 3)      // NFNLGRP_CONNTRACK_EXP_NEW
    package static let expectationUpdate = EventGroups(rawValue: 1 << 4)   // NFNLGRP_CONNTRACK_EXP_UPDATE
    package static let expectationDestroy = EventGroups(rawValue: 1 << 5)  // NFNLGRP_CONNTRACK_EXP_DESTROY
    package static let allExpectations: EventGroups = [.expectationNew, .expectationUpdate, .expectationDestroy]
}

/// One classic BPF instruction (`struct sock_filter`).
package struct FilterInstruction: Equatable, Sendable {
    package var code: UInt16
    package var jumpTrue: UInt8
    package var jumpFalse: UInt8
    package var k: UInt32
    package init(code: UInt16, jumpTrue: UInt8 = 0, jumpFalse: UInt8 = 0, k: UInt32 = 0) {
        self.code = code
        self.jumpTrue = jumpTrue
        self.jumpFalse = jumpFalse
        self.k = k
    }
}

/// How a wait for events ended.
package enum EventWait {
    /// Messages were handed out (or the wait found none after all).
    case received
    /// A signal interrupted the wait.
    case interrupted
}

/// Events the kernel dropped without saying so. On an overrun the kernel
/// marks the socket congested and reports ENOBUFS once; it then drops, and
/// only counts (sk_drops, SK_MEMINFO_DROPS), every event until the reader
/// has emptied the queue. A drop that races with the read emptying the
/// queue is counted but never reported, so ctl compares the count, read
/// each time the queue is empty, with the overruns it has reported.
struct DropWatch {
    /// sk_drops at the last check.
    private var counted: UInt32
    /// An overrun was reported (ENOBUFS) since the last check.
    private var reported = false
    /// An overrun was ever seen: from then on the socket is checked now
    /// and then even without events (see EventSocket.receive).
    private(set) var overrunSeen = false

    init(drops: UInt32) { counted = drops }

    mutating func reportedOverrun() {
        reported = true
        overrunSeen = true
    }

    /// With the drop count read once the queue is empty: whether events
    /// were dropped that no ENOBUFS reported.
    mutating func unreported(drops: UInt32) -> Bool {
        defer {
            counted = drops
            reported = false
        }
        guard drops != counted, !reported else { return false }
        overrunSeen = true
        return true
    }
}

/// A NETLINK_NETFILTER socket subscribed to ctnetlink's event groups: the
/// one owner of its descriptor. Events are read many datagrams per system
/// call (`recvmmsg`) into buffers the socket owns; each message is handed
/// out as a `NetlinkMessage` whose view lives until the callback returns.
package final class EventSocket {
    private let handle: OpaquePointer
    private let fd: Int32
    /// Datagrams read per `recvmmsg`.
    private static let batch = 64
    /// Room for one datagram: an event message is well below 4 KiB; the
    /// rest is headroom for attributes a newer kernel may add.
    private static let datagramSize = 16 * 1024
    private let buffers: UnsafeMutableRawBufferPointer
    private let vectors: UnsafeMutablePointer<iovec>
    private let headers: UnsafeMutablePointer<cmnl_mmsghdr>
    /// Datagrams the kernel cut short (they did not fit `datagramSize`).
    package private(set) var truncated = 0
    private var drops: DropWatch

    package init(groups: EventGroups, reliable: Bool = false) throws(Errno) {
        guard let nl = mnl_socket_open(NETLINK_NETFILTER) else { throw Errno.current }
        guard mnl_socket_bind(nl, groups.rawValue, pid_t(cmnl_socket_autopid())) >= 0 else {
            let error = Errno.current
            mnl_socket_close(nl)
            throw error
        }
        handle = nl
        fd = mnl_socket_get_fd(nl)
        if reliable {
            // Delivery failures reach the kernel's sender (ctnetlink then
            // keeps the event and retries) instead of ENOBUFS here.
            var one: Int32 = 1
            let len = socklen_t(MemoryLayout<Int32>.size)
            _ = setsockopt(fd, SOL_NETLINK, NETLINK_BROADCAST_ERROR, &one, len)
            _ = setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, len)
        }
        drops = DropWatch(drops: Self.dropCount(fd))
        let n = Self.batch
        buffers = .allocate(byteCount: n * Self.datagramSize, alignment: 8)
        vectors = .allocate(capacity: n)
        headers = .allocate(capacity: n)
        for i in 0..<n {
            vectors[i] = iovec(iov_base: buffers.baseAddress! + i * Self.datagramSize, iov_len: Self.datagramSize)
        }
    }

    deinit {
        mnl_socket_close(handle)
        buffers.deallocate()
        vectors.deallocate()
        headers.deallocate()
    }

    /// Sets the receive buffer: SO_RCVBUFFORCE (which may pass rmem_max,
    /// with CAP_NET_ADMIN), else SO_RCVBUF (capped at rmem_max).
    package func setReceiveBuffer(bytes: Int) throws(Errno) {
        try setReceiveBufferSize(fd: fd, bytes: bytes)
    }

    /// The receive buffer as the kernel reports it (twice what was set, for
    /// its bookkeeping).
    package var receiveBufferSize: Int {
        var size: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, &len) == 0 else { return 0 }
        return Int(size)
    }

    /// Attaches a classic BPF program: messages it refuses are never queued.
    package func attach(_ program: [FilterInstruction]) throws(Errno) {
        var code = program.map { sock_filter(code: $0.code, jt: $0.jumpTrue, jf: $0.jumpFalse, k: $0.k) }
        let result = code.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var fprog = sock_fprog(len: UInt16(buffer.count), filter: buffer.baseAddress)
            return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, socklen_t(MemoryLayout<sock_fprog>.size))
        }
        guard result == 0 else { throw Errno.current }
    }

    /// Waits for events, then hands out every message that is queued, a
    /// batch of datagrams per system call, and returns once the queue is
    /// empty (or after a bounded number of batches, so that the caller can
    /// flush its output during a long burst).
    ///
    /// `signalMask` is the mask in place while waiting (`ppoll`): the caller
    /// keeps its stop signals blocked otherwise, so a signal can only arrive
    /// in the wait, which then returns `.interrupted`.
    ///
    /// Throws `Errno.noBufferSpace` when the kernel dropped events because
    /// the receive buffer was full (the socket stays usable), and any other
    /// receive error. Drops the kernel counted but did not report (see
    /// DropWatch) are reported the same way once the queue is empty. After
    /// a first overrun the wait ends at least once a second for that check;
    /// the read it makes also clears the kernel's congested mark should it
    /// have outlived the queue.
    ///
    /// `wake`, when not -1, is a descriptor that ends the wait with
    /// `.interrupted` once it is readable (a library stream's cancellation).
    package func receive(signalMask: sigset_t, wake: Int32 = -1,
                         _ body: (NetlinkMessage) throws -> Void) throws -> EventWait {
        var pfds = (pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0))
        var mask = signalMask
        var second = timespec(tv_sec: 1, tv_nsec: 0)
        let count: UInt32 = wake >= 0 ? 2 : 1
        let ready = withUnsafeMutableBytes(of: &pfds) { raw in
            let p = raw.baseAddress!.assumingMemoryBound(to: pollfd.self)
            return drops.overrunSeen ? cmnl_ppoll(p, count, &second, &mask) : cmnl_ppoll(p, count, nil, &mask)
        }
        if ready < 0 {
            if Glibc.errno == EINTR { return .interrupted }
            throw Errno.current
        }
        if wake >= 0, pfds.1.revents != 0 { return .interrupted }
        for _ in 0..<16 {
            for i in 0..<Self.batch {
                headers[i] = cmnl_mmsghdr()
                headers[i].msg_hdr.msg_iov = vectors + i
                headers[i].msg_hdr.msg_iovlen = 1
            }
            let count = cmnl_recvmmsg(fd, headers, UInt32(Self.batch), Int32(MSG_DONTWAIT))
            if count < 0 {
                switch Glibc.errno {
                case EAGAIN:
                    try checkDrops()
                    return .received
                case EINTR:
                    return .received
                case ENOBUFS:
                    drops.reportedOverrun()
                    throw Errno.noBufferSpace
                default:
                    throw Errno.current
                }
            }
            for i in 0..<Int(count) {
                if headers[i].msg_hdr.msg_flags & Int32(MSG_TRUNC) != 0 {
                    truncated += 1
                    continue
                }
                let length = Int(headers[i].msg_len)
                let base = UnsafeRawBufferPointer(start: buffers.baseAddress! + i * Self.datagramSize, count: length)
                try Self.forEachMessage(in: ByteView(base), body)
            }
            if Int(count) < Self.batch {
                // The queue is most likely empty now; after an overrun it is
                // checked here too, not only when a read finds nothing.
                if drops.overrunSeen { try checkDrops() }
                return .received
            }
        }
        return .received
    }

    /// With the queue empty: throws `Errno.noBufferSpace` for drops no
    /// ENOBUFS reported. An ENOBUFS the kernel has stored meanwhile is
    /// taken (SO_ERROR) so that the same overrun is not reported twice.
    private func checkDrops() throws(Errno) {
        guard drops.unreported(drops: Self.dropCount(fd)) else { return }
        var error: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len)
        throw Errno.noBufferSpace
    }

    /// The socket's drop count (SO_MEMINFO's SK_MEMINFO_DROPS), 0 where
    /// the kernel does not report it.
    private static func dropCount(_ fd: Int32) -> UInt32 {
        let skMeminfoDrops = 8          // SK_MEMINFO_DROPS
        let soMeminfo: Int32 = 55       // SO_MEMINFO
        return withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 16) { info in
            var len = socklen_t(16 * MemoryLayout<UInt32>.size)
            guard getsockopt(fd, SOL_SOCKET, soMeminfo, info.baseAddress, &len) == 0,
                  Int(len) > skMeminfoDrops * MemoryLayout<UInt32>.size else { return 0 }
            return info[skMeminfoDrops]
        }
    }

    /// Hands out the data messages of one datagram; control messages
    /// (NLMSG_NOOP, NLMSG_DONE, NLMSG_ERROR) are skipped.
    static func forEachMessage(in view: ByteView, _ body: (NetlinkMessage) throws -> Void) throws {
        _ = try view.forEachNetlinkMessage { message in
            if Int32(message.type) >= NLMSG_MIN_TYPE { try body(message) }
            return false
        }
    }
}

/// Sets a socket's receive buffer: SO_RCVBUFFORCE first, else SO_RCVBUF.
func setReceiveBufferSize(fd: Int32, bytes: Int) throws(Errno) {
    var size = Int32(clamping: bytes)
    let len = socklen_t(MemoryLayout<Int32>.size)
    if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, len) == 0 { return }
    if setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, len) == 0 { return }
    throw Errno.current
}
