import CMnl
import Glibc

/// A netlink message handed to a receive callback: the header fields and a
/// view of the payload after `struct nlmsghdr`.
package struct NetlinkMessage {
    package let type: UInt16
    package let flags: UInt16
    package let sequence: UInt32
    package let portID: UInt32
    package let payload: ByteView

    /// Subsystem id (`NFNL_SUBSYS_ID(type)`), e.g. 1 for ctnetlink.
    package var subsystem: UInt8 { UInt8(truncatingIfNeeded: type >> 8) }
    /// Message type within the subsystem (`NFNL_MSG_TYPE(type)`).
    package var subsystemMessage: UInt8 { UInt8(truncatingIfNeeded: type & 0xff) }
}

extension ByteView {
    /// Calls `body` with each netlink message of a received chunk, in order
    /// (control messages included: `type` tells), until `body` returns true;
    /// returns whether it did. A header that is short, or whose length is
    /// below the header's or runs past the chunk, throws `Errno.badMessage`.
    func forEachNetlinkMessage(_ body: (NetlinkMessage) throws -> Bool) throws -> Bool {
        var offset = 0
        while offset < count {
            guard let len32 = u32host(at: offset), let type = u16host(at: offset + 4),
                  let flags = u16host(at: offset + 6), let seq = u32host(at: offset + 8),
                  let pid = u32host(at: offset + 12) else {
                throw Errno.badMessage
            }
            let len = Int(len32)
            guard len >= 16, len <= count - offset else { throw Errno.badMessage }
            let message = NetlinkMessage(type: type, flags: flags, sequence: seq, portID: pid,
                                         payload: slice(offset + 16, len - 16)!)
            if try body(message) { return true }
            offset += (len + 3) & ~3
        }
        return false
    }
}

/// One attribute of a request, serialised by libmnl. Integer values are
/// written in network byte order, as ctnetlink expects.
package enum RequestAttribute {
    case u8(UInt16, UInt8)
    case u16(UInt16, UInt16)
    case u32(UInt16, UInt32)
    /// A u32 in host byte order (the few attributes ctnetlink reads so,
    /// such as CTA_FILTER's flags).
    case u32Host(UInt16, UInt32)
    case u64(UInt16, UInt64)
    case bytes(UInt16, [UInt8])
    case string(UInt16, String)
    case nested(UInt16, [RequestAttribute])
}

/// An nfnetlink request: `nlmsghdr` + `nfgenmsg` + attributes.
package struct NetlinkRequest {
    /// NFNL_SUBSYS_* (1 = NFNL_SUBSYS_CTNETLINK, 2 = NFNL_SUBSYS_CTNETLINK_EXP).
    package var subsystem: UInt8
    /// Message type within the subsystem, e.g. IPCTNL_MSG_CT_GET.
    package var message: UInt8
    /// NLM_F_* flags besides NLM_F_REQUEST (always set).
    package var flags: UInt16
    /// nfgenmsg.nfgen_family (AF_UNSPEC, AF_INET, AF_INET6).
    package var family: UInt8
    /// nfgenmsg.version: NFNETLINK_V0 (0) unless a message needs another.
    package var version: UInt8
    /// nfgenmsg.res_id (host value; sent big-endian).
    package var resourceID: UInt16
    package var attributes: [RequestAttribute]

    package init(subsystem: UInt8, message: UInt8, flags: UInt16, family: UInt8,
                version: UInt8 = 0, resourceID: UInt16 = 0, attributes: [RequestAttribute] = []) {
        self.subsystem = subsystem
        self.message = message
        self.flags = flags
        self.family = family
        self.version = version
        self.resourceID = resourceID
        self.attributes = attributes
    }

    /// True for NLM_F_DUMP requests, which end with NLMSG_DONE.
    package var isDump: Bool { flags & UInt16(NLM_F_DUMP) == UInt16(NLM_F_DUMP) }

    /// Why this request must never reach a kernel, or nil. ctnetlink reads
    /// a DELETE without a tuple as a flush of the whole table, whatever
    /// else it carries, so:
    /// - a DELETE that names an entry some other way (CTA_ID alone, say)
    ///   would empty the table instead;
    /// - a flush with filter attributes empties the table on every kernel
    ///   that does not know them (before 6.12);
    /// - a flush of one family with nfgenmsg version 0 flushes every
    ///   family (the kernel honours the family only from version 1).
    package var refusal: String? {
        guard subsystem == CTMessage.subsystem, message == CTMessage.delete else { return nil }
        let hasTuple = attributes.contains { a in
            switch a {
            case .nested(CTA.tupleOrig, _), .nested(CTA.tupleReply, _): return true
            case .bytes(let type, _): return type & ~nestedFlag == CTA.tupleOrig || type & ~nestedFlag == CTA.tupleReply
            default: return false
            }
        }
        if hasTuple { return nil }
        if !attributes.isEmpty { return "a conntrack DELETE without a tuple (the kernel would flush the table)" }
        if family != 0, version == 0 { return "a family flush with nfgenmsg version 0 (the kernel would flush every family)" }
        return nil
    }
}

/// A request the netlink layer refused to send (see `NetlinkRequest.refusal`).
package struct RefusedRequest: Error, CustomStringConvertible {
    package let reason: String
    package var description: String { "refused to send \(reason)" }
}

/// Netlink header flags a request may carry besides NLM_F_REQUEST.
package enum NetlinkFlags {
    package static let ack = UInt16(NLM_F_ACK)     // NLM_F_ACK
    package static let dump = UInt16(NLM_F_DUMP)   // NLM_F_DUMP (NLM_F_ROOT | NLM_F_MATCH)
    package static let create = UInt16(NLM_F_CREATE) // NLM_F_CREATE
    package static let exclusive = UInt16(NLM_F_EXCL) // NLM_F_EXCL
}

/// What a completed request reports besides its messages.
package struct RequestOutcome: Equatable {
    /// The kernel flagged at least one dump message with NLM_F_DUMP_INTR:
    /// the table changed while it was being dumped.
    package var interrupted = false
}

/// What carries netlink messages to the kernel and back: a NETLINK_NETFILTER
/// socket (`MnlTransport`), or in unit tests a stand-in that answers with
/// recorded kernel bytes. `send` takes whole messages; `receive` fills the
/// buffer with one datagram and returns its length. Both may be called from
/// two threads at once (a dump is read ahead on a second thread).
package protocol NetlinkTransport: AnyObject, Sendable {
    /// The port id the kernel assigned at bind time.
    var portID: UInt32 { get }
    /// The first sequence number to use (any value; a socket uses the time).
    var initialSequence: UInt32 { get }
    /// Sends the messages in `bytes` in one datagram.
    func send(_ bytes: UnsafeRawBufferPointer) throws(Errno)
    /// Receives one datagram into `buffer`; returns its length.
    func receive(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int
    /// Sets the socket's receive buffer (SO_RCVBUF); a stand-in ignores it.
    func setReceiveBuffer(bytes: Int) throws(Errno)
    /// How many datagrams of a dump are received on the calling thread
    /// before the rest of it is read ahead on a second thread; nil: never.
    var readAheadAfter: Int? { get }
}

/// A NETLINK_NETFILTER socket opened and bound with libmnl: the one owner
/// of the descriptor. It belongs to the network namespace of the thread
/// that opened it.
package final class MnlTransport: NetlinkTransport, @unchecked Sendable {
    private let handle: OpaquePointer
    package let portID: UInt32
    package let initialSequence = UInt32(truncatingIfNeeded: time(nil))
    /// A dump that has not ended after this many datagrams (about 250 KiB,
    /// some 900 entries) is read ahead. A second thread costs more than it
    /// saves for smaller dumps (issue 18: -L of 500 entries took 10% longer
    /// with it).
    package var readAheadAfter: Int? { 8 }

    package init() throws(Errno) {
        guard let nl = mnl_socket_open(NETLINK_NETFILTER) else { throw Errno.current }
        guard mnl_socket_bind(nl, 0, pid_t(cmnl_socket_autopid())) >= 0 else {
            let error = Errno.current
            mnl_socket_close(nl)
            throw error
        }
        handle = nl
        portID = mnl_socket_get_portid(nl)
        // Error replies carry only the request's header, not all of it
        // (Linux 4.3+; older kernels keep sending the whole request).
        var one: Int32 = 1
        _ = setsockopt(mnl_socket_get_fd(nl), SOL_NETLINK, NETLINK_CAP_ACK, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { mnl_socket_close(handle) }

    package func send(_ bytes: UnsafeRawBufferPointer) throws(Errno) {
        let sent = retryOnInterrupt { mnl_socket_sendto(handle, bytes.baseAddress, bytes.count) }
        guard sent >= 0 else { throw Errno.current }
    }

    package func receive(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        let received = retryOnInterrupt { mnl_socket_recvfrom(handle, buffer.baseAddress, buffer.count) }
        guard received >= 0 else { throw Errno.current }
        return received
    }

    package func setReceiveBuffer(bytes: Int) throws(Errno) {
        try setReceiveBufferSize(fd: mnl_socket_get_fd(handle), bytes: bytes)
    }
}

/// Requests, answers and their checks over one transport: sequence numbers,
/// port ids, error replies mapped to `Errno`, interrupted dumps, and the
/// requests that must never reach a kernel (see `NetlinkRequest.refusal`).
package final class NetlinkSocket {
    private let transport: NetlinkTransport
    /// The port id the kernel assigned at bind time.
    package var portID: UInt32 { transport.portID }
    private var nextSequence: UInt32
    private var preparedForBatches = false
    private let receiveBuffer: UnsafeMutableRawBufferPointer
    private let sendBuffer: UnsafeMutableRawBufferPointer

    /// Size of the receive buffer handed to recvmsg. The kernel sizes dump
    /// batches after the largest buffer it has seen (up to 32 KiB), so a
    /// large buffer means fewer system calls per dump and never a message
    /// that does not fit.
    package static let receiveBufferSize = 128 * 1024
    /// Size of the send buffer: room for a batch of about a thousand
    /// delete requests, well below the socket's default send limit.
    package static let sendBufferSize = 128 * 1024

    /// A socket of the calling thread's network namespace.
    package convenience init() throws(Errno) {
        try self.init(transport: MnlTransport())
    }

    package init(transport: NetlinkTransport) {
        self.transport = transport
        nextSequence = transport.initialSequence
        receiveBuffer = .allocate(byteCount: Self.receiveBufferSize, alignment: 8)
        // libmnl 1.0.4 leaves attribute padding as it finds it: the buffer
        // is all zeros whenever no request is being written or sent. calloc
        // gives a buffer this size fresh zeroed pages of its own, so only
        // the pages a request writes are ever touched (a -C writes one; a
        // memset of the whole buffer cost 32 page faults at start).
        guard let zeroed = calloc(Self.sendBufferSize, 1) else { fatalError("out of memory") }
        sendBuffer = UnsafeMutableRawBufferPointer(start: zeroed, count: Self.sendBufferSize)
    }

    /// Makes this socket ready for `performBatch`: its receive buffer then
    /// holds the replies of a whole batch, even when every request of it
    /// fails (entries that exist or vanished), which the default does not
    /// (about 280 error replies fill it). `performBatch` does this itself
    /// on first use.
    package func prepareForBatches() {
        guard !preparedForBatches else { return }
        preparedForBatches = true
        try? transport.setReceiveBuffer(bytes: 4 << 20)
    }

    deinit {
        receiveBuffer.deallocate()
        free(sendBuffer.baseAddress)
    }

    /// Sets SO_RCVBUF (SO_RCVBUFFORCE first, which root may use past rmem_max).
    package func setSocketReceiveBuffer(bytes: Int) throws(Errno) {
        try transport.setReceiveBuffer(bytes: bytes)
    }

    /// Sends `request` and calls `onMessage` for every data message of the
    /// answer, until the kernel ends it (NLMSG_DONE for dumps, the
    /// acknowledgement otherwise). A kernel error reply is thrown as `Errno`;
    /// an error thrown by `onMessage` stops the request and is rethrown after
    /// the rest of the answer has been drained.
    @discardableResult
    package func perform(_ request: NetlinkRequest, onMessage: (NetlinkMessage) throws -> Void) throws -> RequestOutcome {
        if let reason = request.refusal { throw RefusedRequest(reason: reason) }
        let sequence = nextSequence
        nextSequence &+= 1
        let length: Int
        do {
            length = try serialise(request, sequence: sequence)
        } catch {
            clearSendBuffer(sendBuffer.count)
            throw error
        }
        try sendAndClear(length)

        var outcome = RequestOutcome()
        var deferred: Error? = nil
        // Returns true when the chunk ended the answer.
        func process(_ view: ByteView) throws -> Bool {
            try view.forEachNetlinkMessage { message in
                // mnl_nlmsg_seq_ok / mnl_nlmsg_portid_ok semantics.
                guard message.sequence == 0 || message.sequence == sequence else { throw Errno.protocolError }
                guard message.portID == 0 || message.portID == portID else { throw Errno.noSuchProcess }
                switch Int32(message.type) {
                case NLMSG_NOOP:
                    return false
                case NLMSG_ERROR:
                    guard let code = message.payload.i32host(at: 0) else { throw Errno.badMessage }
                    if code != 0 { throw Errno(0 &- code) }
                    return !request.isDump
                case NLMSG_DONE:
                    if let code = message.payload.i32host(at: 0), code < 0 { throw Errno(0 &- code) }
                    return true
                case NLMSG_OVERRUN:
                    throw Errno.noBufferSpace
                default:
                    if message.flags & UInt16(NLM_F_DUMP_INTR) != 0 { outcome.interrupted = true }
                    if deferred == nil {
                        do {
                            try onMessage(message)
                        } catch {
                            deferred = error
                        }
                    }
                    return false
                }
            }
        }

        // A dump starts on this thread; one that goes on past
        // `readAheadAfter` datagrams is read ahead on a second thread.
        let readAheadAfter = request.isDump && Self.readAhead ? transport.readAheadAfter : nil
        var received = 0
        var ended = false
        while !ended, readAheadAfter.map({ received < $0 }) ?? true {
            let length = try transport.receive(into: receiveBuffer)
            received += 1
            ended = try process(ByteView(UnsafeRawBufferPointer(rebasing: receiveBuffer[0..<length])))
        }
        if !ended {
            let reader = ReadAhead(transport: transport, sequence: sequence, buffers: 4, size: receiveBuffer.count)
            try reader.start()
            defer { reader.finish() }
            while let chunk = reader.next() {
                guard chunk.length >= 0 else { throw Errno(Int32(-chunk.length)) }
                let done = try process(reader.view(chunk))
                reader.release(chunk)
                if done { break }
            }
        }
        if let deferred { throw deferred }
        return outcome
    }

    /// Whether dumps are received on a second thread (see `ReadAhead`).
    /// CTL_NO_READ_AHEAD=1 turns it off.
    static let readAhead: Bool = {
        guard let v = getenv("CTL_NO_READ_AHEAD") else { return true }
        return String(cString: v) != "1"
    }()

    /// Sends `requests` in one sendmsg (the kernel handles every message of
    /// the buffer in order) with an acknowledgement asked for the last one
    /// only, then reads until that acknowledgement. Returns the error of
    /// each request that failed, by its index; requests without an entry
    /// succeeded. Data replies go to `onData` with their request's index.
    package func performBatch(_ requests: [NetlinkRequest],
                             onData: ((Int, NetlinkMessage) throws -> Void)? = nil) throws -> [Int: Errno] {
        guard !requests.isEmpty else { return [:] }
        if let reason = requests.lazy.compactMap(\.refusal).first { throw RefusedRequest(reason: reason) }
        prepareForBatches()
        let first = nextSequence
        var offset = 0
        do {
            for (i, var request) in requests.enumerated() {
                if i == requests.count - 1 { request.flags |= NetlinkFlags.ack }
                let length = try serialise(request, sequence: first &+ UInt32(i), at: offset)
                offset += (length + 3) & ~3
            }
        } catch {
            clearSendBuffer(sendBuffer.count)
            throw error
        }
        nextSequence &+= UInt32(requests.count)
        try sendAndClear(offset)

        let last = first &+ UInt32(requests.count - 1)
        var failures: [Int: Errno] = [:]
        while true {
            let received = try transport.receive(into: receiveBuffer)
            let view = ByteView(UnsafeRawBufferPointer(rebasing: receiveBuffer[0..<received]))
            let done = try view.forEachNetlinkMessage { message in
                guard message.portID == 0 || message.portID == portID else { throw Errno.noSuchProcess }
                let index = Int(message.sequence &- first)
                guard index >= 0, index < requests.count else { throw Errno.protocolError }
                switch Int32(message.type) {
                case NLMSG_ERROR:
                    guard let code = message.payload.i32host(at: 0) else { throw Errno.badMessage }
                    if code != 0 { failures[index] = Errno(0 &- code) }
                    return message.sequence == last
                case NLMSG_NOOP:
                    return false
                case NLMSG_DONE:
                    // The end of a dump's answer (a dump gets no
                    // acknowledgement); an error in it is that request's.
                    if let code = message.payload.i32host(at: 0), code < 0 { failures[index] = Errno(0 &- code) }
                    return message.sequence == last
                case NLMSG_OVERRUN:
                    throw Errno.noBufferSpace
                default:
                    try onData?(index, message)
                    return false
                }
            }
            if done { return failures }
        }
    }

    /// The attributes as libmnl lays them out in a message (for tests).
    static func encode(_ attributes: [RequestAttribute]) throws(Errno) -> [UInt8] {
        let size = 8192
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 8)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        let nlh = mnl_nlmsg_put_header(buffer.baseAddress)!
        let start = Int(nlh.pointee.nlmsg_len)
        for attribute in attributes {
            guard put(attribute, into: nlh, size: size) else { throw Errno(EMSGSIZE) }
        }
        return Array(buffer[start..<Int(nlh.pointee.nlmsg_len)])
    }

    /// Room in the send buffer, for callers sizing their batches.
    package var sendCapacity: Int { sendBuffer.count }

    /// Sends the first `length` bytes of the send buffer in one datagram,
    /// then zeroes them (see `clearSendBuffer`).
    private func sendAndClear(_ length: Int) throws(Errno) {
        defer { clearSendBuffer(length) }
        try transport.send(UnsafeRawBufferPointer(rebasing: sendBuffer[0..<length]))
    }

    /// Zeroes the first `count` bytes of the send buffer. libmnl 1.0.4
    /// writes attribute padding as it finds the buffer, so without this a
    /// request's padding carried bytes of the one before it on the socket.
    private func clearSendBuffer(_ count: Int) {
        UnsafeMutableRawBufferPointer(rebasing: sendBuffer[0..<min(count, sendBuffer.count)])
            .initializeMemory(as: UInt8.self, repeating: 0)
    }

    /// Writes `request` into the send buffer with libmnl and returns its length.
    private func serialise(_ request: NetlinkRequest, sequence: UInt32, at offset: Int = 0) throws(Errno) -> Int {
        guard let base = sendBuffer.baseAddress, sendBuffer.count - offset >= 64 else { throw Errno(EMSGSIZE) }
        // mnl_nlmsg_put_header and _put_extra_header zero the headers they
        // write; attribute padding keeps what the buffer held, which is
        // zeros (the buffer is cleared after each send).
        let nlh = mnl_nlmsg_put_header(base + offset)!
        nlh.pointee.nlmsg_type = UInt16(request.subsystem) << 8 | UInt16(request.message)
        nlh.pointee.nlmsg_flags = UInt16(NLM_F_REQUEST) | request.flags
        nlh.pointee.nlmsg_seq = sequence
        let extra = mnl_nlmsg_put_extra_header(nlh, MemoryLayout<nfgenmsg>.size)!
        let nfg = extra.assumingMemoryBound(to: nfgenmsg.self)
        nfg.pointee.nfgen_family = request.family
        nfg.pointee.version = request.version
        nfg.pointee.res_id = request.resourceID.bigEndian
        for attribute in request.attributes {
            guard Self.put(attribute, into: nlh, size: sendBuffer.count - offset) else { throw Errno(EMSGSIZE) }
        }
        return Int(nlh.pointee.nlmsg_len)
    }

    private static func put(_ attribute: RequestAttribute, into nlh: UnsafeMutablePointer<nlmsghdr>, size: Int) -> Bool {
        switch attribute {
        case let .u8(type, value):
            return mnl_attr_put_u8_check(nlh, size, type, value)
        case let .u16(type, value):
            return mnl_attr_put_u16_check(nlh, size, type, value.bigEndian)
        case let .u32(type, value):
            return mnl_attr_put_u32_check(nlh, size, type, value.bigEndian)
        case let .u32Host(type, value):
            return mnl_attr_put_u32_check(nlh, size, type, value)
        case let .u64(type, value):
            return mnl_attr_put_u64_check(nlh, size, type, value.bigEndian)
        case let .bytes(type, value):
            return value.withUnsafeBytes { mnl_attr_put_check(nlh, size, type, $0.count, $0.baseAddress) }
        case let .string(type, value):
            return mnl_attr_put_strz_check(nlh, size, type, value)
        case let .nested(type, children):
            guard let nest = mnl_attr_nest_start_check(nlh, size, type) else { return false }
            for child in children where !Self.put(child, into: nlh, size: size) {
                mnl_attr_nest_cancel(nlh, nest)
                return false
            }
            mnl_attr_nest_end(nlh, nest)
            return true
        }
    }
}
