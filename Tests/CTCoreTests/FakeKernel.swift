import Foundation
import XCTest
@testable import CTCore

/// A scripted stand-in for the kernel's ctnetlink, under `NetlinkTransport`:
/// it records every datagram the library sends (so tests can assert the
/// request bytes) and answers each one with what the test's script returns,
/// typically recorded kernel bytes (the fixtures) with the sequence number
/// and port id taken from the request, or deliberately wrong ones.
///
/// One `FakeKernel` stands for one network namespace: every socket the
/// library opens from `sockets` is a `FakeSocket` of it, with a port id of
/// its own, all sharing the script and the record.
final class FakeKernel: @unchecked Sendable {
    /// One netlink message the library sent.
    struct Message: Equatable {
        let type: UInt16
        let flags: UInt16
        let sequence: UInt32
        let portID: UInt32
        /// nfgenmsg and attributes.
        let payload: [UInt8]
        /// The whole message, header included (without trailing padding).
        let bytes: [UInt8]
        /// The port id of the socket that sent it (what the kernel puts in
        /// the header of its answers).
        let socket: UInt32

        var isDump: Bool { flags & 0x300 == 0x300 }       // NLM_F_DUMP
        var wantsAck: Bool { flags & 0x4 != 0 }           // NLM_F_ACK
        /// nfgenmsg.nfgen_family, version.
        var family: UInt8 { payload[0] }
        var version: UInt8 { payload[1] }
    }

    /// One datagram the library sent (one sendmsg), from the socket `port`.
    struct Datagram {
        let port: UInt32
        let bytes: [UInt8]
        let messages: [Message]
    }

    /// What a socket receives next: a datagram, or an error of recvmsg.
    enum Answer {
        case datagram([UInt8])
        case error(Errno)
    }

    typealias Script = @Sendable (Datagram) -> [Answer]

    private let lock = NSLock()
    private let script: Script
    private let readAheadAfter: Int?
    private let firstSequence: UInt32
    private var nextPort: UInt32 = 0x1001
    private var record: [Datagram] = []
    private var openedCount = 0
    private var starvedCount = 0
    private var receiverThreads: [pthread_t] = []

    /// - Parameters:
    ///   - readAhead: whether dumps are read ahead on a second thread from
    ///     their first datagram (the sockets' `readAheadAfter` is then 0);
    ///     `readAheadAfter` sets another number.
    ///   - initialSequence: the first sequence number of every socket.
    ///   - script: the answers to each datagram, queued on its socket.
    init(readAhead: Bool = false, readAheadAfter: Int? = nil, initialSequence: UInt32 = 1000,
         script: @escaping Script) {
        self.readAheadAfter = readAheadAfter ?? (readAhead ? 0 : nil)
        self.firstSequence = initialSequence
        self.script = script
    }

    /// Where a `Conntrack` handle or a session gets its sockets.
    var sockets: SocketSource {
        SocketSource { [self] in openSocket() }
    }

    func openSocket() -> FakeSocket {
        lock.withLock {
            openedCount += 1
            defer { nextPort += 1 }
            return FakeSocket(kernel: self, portID: nextPort, initialSequence: firstSequence,
                              readAheadAfter: readAheadAfter)
        }
    }

    /// Every datagram sent so far, in order.
    var datagrams: [Datagram] { lock.withLock { record } }
    /// Every message sent so far, in order.
    var messages: [Message] { datagrams.flatMap(\.messages) }
    /// How many sockets were opened.
    var opened: Int { lock.withLock { openedCount } }
    /// How many receives found nothing queued (a real socket would block).
    var starved: Int { lock.withLock { starvedCount } }

    fileprivate func received(_ datagram: Datagram) -> [Answer] {
        lock.withLock { record.append(datagram) }
        return script(datagram)
    }

    fileprivate func noteStarved() { lock.withLock { starvedCount += 1 } }

    /// The thread of each receive so far, in order.
    var receivingThreads: [pthread_t] { lock.withLock { receiverThreads } }

    fileprivate func noteReceive() { lock.withLock { receiverThreads.append(pthread_self()) } }

    /// Splits a datagram into netlink messages (the test's own parser, not
    /// the library's).
    static func parse(_ bytes: [UInt8], socket: UInt32 = 0) -> [Message] {
        var messages: [Message] = []
        var at = 0
        while at + 16 <= bytes.count {
            let length = Int(le32(bytes, at))
            guard length >= 16, at + length <= bytes.count else {
                XCTFail("bad message length \(length) at \(at) of \(bytes.count)")
                break
            }
            messages.append(Message(type: le16(bytes, at + 4), flags: le16(bytes, at + 6),
                                    sequence: le32(bytes, at + 8), portID: le32(bytes, at + 12),
                                    payload: Array(bytes[at + 16 ..< at + length]),
                                    bytes: Array(bytes[at ..< at + length]), socket: socket))
            at += (length + 3) & ~3
        }
        XCTAssertEqual(at, bytes.count, "trailing bytes in a datagram")
        return messages
    }

    static func le16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(b[at]) | UInt16(b[at + 1]) << 8 }
    static func le32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }
}

/// One socket of a `FakeKernel`: its own port id and queue of answers.
///
/// The queue is limited as a netlink socket's is: what the kernel queues
/// at once (acknowledgements, error replies) counts against SO_RCVBUF, and
/// a datagram past it is dropped, the next receive failing with ENOBUFS.
/// Dump answers are left out of the count: the kernel makes them as the
/// reader reads.
final class FakeSocket: NetlinkTransport, @unchecked Sendable {
    private unowned let kernel: FakeKernel
    let portID: UInt32
    let initialSequence: UInt32
    let readAheadAfter: Int?
    private let lock = NSLock()
    private var queue: [FakeKernel.Answer] = []
    /// SO_RCVBUF: net.core.rmem_default until `setReceiveBuffer`.
    private var receiveLimit = 212_992
    /// What the queue holds against it.
    private var queued = 0
    /// An overrun not yet reported.
    private var overrun = false

    /// What a queued datagram costs against SO_RCVBUF: its bytes and about
    /// 768 bytes of sk_buff. (Measured in a namespace of this machine: 250
    /// error replies to one batch fit in the default buffer, 300 do not.)
    static func cost(_ bytes: [UInt8]) -> Int { bytes.count + 768 }

    /// Whether a datagram is (part of) a dump answer, made as it is read.
    static func isDumpPart(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 8 && FakeKernel.le16(bytes, 6) & K.NLM_F_MULTI != 0
    }

    fileprivate init(kernel: FakeKernel, portID: UInt32, initialSequence: UInt32, readAheadAfter: Int?) {
        self.kernel = kernel
        self.portID = portID
        self.initialSequence = initialSequence
        self.readAheadAfter = readAheadAfter
    }

    func send(_ bytes: UnsafeRawBufferPointer) throws(Errno) {
        let copy = [UInt8](bytes)
        let answers = kernel.received(FakeKernel.Datagram(port: portID, bytes: copy, messages: FakeKernel.parse(copy, socket: portID)))
        lock.withLock {
            for answer in answers {
                if case .datagram(let bytes) = answer, !Self.isDumpPart(bytes) {
                    guard queued + Self.cost(bytes) <= receiveLimit else {
                        overrun = true
                        continue
                    }
                    queued += Self.cost(bytes)
                }
                queue.append(answer)
            }
        }
    }

    func receive(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        kernel.noteReceive()
        let next: FakeKernel.Answer? = lock.withLock {
            // A pending overrun is reported before any queued datagram.
            if overrun {
                overrun = false
                return .error(.noBufferSpace)
            }
            guard !queue.isEmpty else { return nil }
            let next = queue.removeFirst()
            if case .datagram(let bytes) = next, !Self.isDumpPart(bytes) { queued -= Self.cost(bytes) }
            return next
        }
        switch next {
        case nil:
            // A real socket would block here for good: report it, fail the read.
            kernel.noteStarved()
            throw Errno.tryAgain
        case .error(let errno)?:
            throw errno
        case .datagram(let bytes)?:
            // recvmsg truncates a datagram longer than the buffer (MSG_TRUNC).
            let n = min(bytes.count, buffer.count)
            bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: n) }
            return n
        }
    }

    /// As SO_RCVBUF(FORCE): the kernel doubles the value for its overhead.
    func setReceiveBuffer(bytes: Int) throws(Errno) {
        lock.withLock { receiveLimit = 2 * bytes }
    }
}

// MARK: - Kernel answers

/// Netlink and ctnetlink numbers, written out from the kernel's headers
/// (linux/netlink.h, linux/netfilter/nfnetlink.h, nfnetlink_conntrack.h)
/// rather than taken from the library under test.
enum K {
    // nlmsghdr types and flags (linux/netlink.h)
    static let NLMSG_NOOP: UInt16 = 1, NLMSG_ERROR: UInt16 = 2, NLMSG_DONE: UInt16 = 3, NLMSG_OVERRUN: UInt16 = 4
    static let NLM_F_REQUEST: UInt16 = 0x01, NLM_F_MULTI: UInt16 = 0x02, NLM_F_ACK: UInt16 = 0x04
    static let NLM_F_DUMP_INTR: UInt16 = 0x10
    static let NLM_F_DUMP: UInt16 = 0x300, NLM_F_EXCL: UInt16 = 0x200, NLM_F_CREATE: UInt16 = 0x400
    // NFNL_SUBSYS_CTNETLINK << 8 | enum cntl_msg_types
    static let CT_NEW: UInt16 = 0x100, CT_GET: UInt16 = 0x101, CT_DELETE: UInt16 = 0x102
    // enum ctattr_type
    static let CTA_TUPLE_ORIG: UInt16 = 1, CTA_TUPLE_REPLY: UInt16 = 2, CTA_STATUS: UInt16 = 3
    static let CTA_TIMEOUT: UInt16 = 7, CTA_MARK: UInt16 = 8, CTA_ID: UInt16 = 12, CTA_ZONE: UInt16 = 18
    static let CTA_MARK_MASK: UInt16 = 21, CTA_FILTER: UInt16 = 25, CTA_STATUS_MASK: UInt16 = 26
    // enum ctattr_tuple, ctattr_ip, ctattr_l4proto, ctattr_filter
    static let CTA_TUPLE_IP: UInt16 = 1, CTA_TUPLE_PROTO: UInt16 = 2
    static let CTA_IP_V4_SRC: UInt16 = 1, CTA_IP_V4_DST: UInt16 = 2, CTA_IP_V6_SRC: UInt16 = 3, CTA_IP_V6_DST: UInt16 = 4
    static let CTA_PROTO_NUM: UInt16 = 1, CTA_PROTO_SRC_PORT: UInt16 = 2, CTA_PROTO_DST_PORT: UInt16 = 3
    static let CTA_FILTER_ORIG_FLAGS: UInt16 = 1, CTA_FILTER_REPLY_FLAGS: UInt16 = 2
    static let NLA_F_NESTED: UInt16 = 0x8000
}

/// Bytes as the kernel lays them out, built by hand for expected requests
/// and for answers.
enum Bytes {
    static func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
    static func be32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * $0)) } }

    /// One attribute: nla_len, nla_type (host order), value, zero padding.
    static func attr(_ type: UInt16, _ value: [UInt8]) -> [UInt8] {
        var out = le16(UInt16(4 + value.count)) + le16(type) + value
        while out.count % 4 != 0 { out.append(0) }
        return out
    }

    /// A nest: the type with NLA_F_NESTED, the members.
    static func nest(_ type: UInt16, _ members: [UInt8]...) -> [UInt8] {
        let body = members.flatMap { $0 }
        return le16(UInt16(4 + body.count)) + le16(type | K.NLA_F_NESTED) + body
    }

    /// An IPv4 tuple of a protocol with ports, as CTA_TUPLE_ORIG/REPLY.
    static func tuple(_ type: UInt16, src: UInt32, dst: UInt32, proto: UInt8, sport: UInt16?, dport: UInt16?) -> [UInt8] {
        var l4 = attr(K.CTA_PROTO_NUM, [proto])
        if let sport { l4 += attr(K.CTA_PROTO_SRC_PORT, be16(sport)) }
        if let dport { l4 += attr(K.CTA_PROTO_DST_PORT, be16(dport)) }
        return nest(type,
                    nest(K.CTA_TUPLE_IP, attr(K.CTA_IP_V4_SRC, be32(src)), attr(K.CTA_IP_V4_DST, be32(dst))),
                    nest(K.CTA_TUPLE_PROTO, l4))
    }

    /// A netlink message: nlmsghdr (host order) + payload, padded.
    static func message(type: UInt16, flags: UInt16, seq: UInt32, port: UInt32, _ payload: [UInt8]) -> [UInt8] {
        var out = le32(UInt32(16 + payload.count)) + le16(type) + le16(flags) + le32(seq) + le32(port) + payload
        while out.count % 4 != 0 { out.append(0) }
        return out
    }

    /// A request as the library should send it: NLM_F_REQUEST | `flags`,
    /// port id 0, nfgenmsg (family, version, res_id 0), attributes.
    static func request(_ type: UInt16, flags: UInt16, seq: UInt32, family: UInt8, version: UInt8 = 0,
                        _ attributes: [UInt8]...) -> [UInt8] {
        message(type: type, flags: K.NLM_F_REQUEST | flags, seq: seq, port: 0,
                [family, version, 0, 0] + attributes.flatMap { $0 })
    }
}

/// What a ctnetlink kernel sends, with the sequence number and port id of
/// the request it answers (or others, given explicitly).
enum Reply {
    /// A conntrack entry (IPCTNL_MSG_CT_NEW) with the recorded payload.
    static func entry(_ payload: [UInt8], to request: FakeKernel.Message, flags: UInt16 = K.NLM_F_MULTI,
                      seq: UInt32? = nil, port: UInt32? = nil) -> [UInt8] {
        Bytes.message(type: K.CT_NEW, flags: flags, seq: seq ?? request.sequence,
                      port: port ?? request.socket, payload)
    }

    /// NLMSG_ERROR: `error` (0 for an acknowledgement, else -errno) and the
    /// request's header: NETLINK_CAP_ACK leaves out the rest, and the
    /// kernel flags the reply NLM_F_CAPPED (0x100).
    static func ack(_ request: FakeKernel.Message, error: Int32 = 0, seq: UInt32? = nil, port: UInt32? = nil,
                    flags: UInt16 = 0x100) -> [UInt8] {
        Bytes.message(type: K.NLMSG_ERROR, flags: flags, seq: seq ?? request.sequence,
                      port: port ?? request.socket,
                      Bytes.le32(UInt32(bitPattern: error)) + Array(request.bytes[0..<16]))
    }

    /// NLMSG_DONE carrying `error` (0, or -errno when the dump failed).
    static func done(_ request: FakeKernel.Message, error: Int32 = 0, seq: UInt32? = nil, port: UInt32? = nil) -> [UInt8] {
        Bytes.message(type: K.NLMSG_DONE, flags: K.NLM_F_MULTI, seq: seq ?? request.sequence,
                      port: port ?? request.socket, Bytes.le32(UInt32(bitPattern: error)))
    }

    static func overrun(_ request: FakeKernel.Message) -> [UInt8] {
        Bytes.message(type: K.NLMSG_OVERRUN, flags: 0, seq: request.sequence, port: request.socket, [])
    }

    /// A whole dump answer: the entries `perDatagram` to a datagram (the
    /// kernel fills a buffer's worth at a time), NLMSG_DONE after the last.
    static func dump(_ request: FakeKernel.Message, _ payloads: [[UInt8]], perDatagram: Int = 2,
                     flags: UInt16 = K.NLM_F_MULTI) -> [FakeKernel.Answer] {
        var answers: [FakeKernel.Answer] = []
        var index = 0
        repeat {
            let chunk = payloads[index ..< min(index + perDatagram, payloads.count)]
            var bytes = chunk.flatMap { entry($0, to: request, flags: flags) }
            index += chunk.count
            if index >= payloads.count { bytes += done(request) }
            answers.append(.datagram(bytes))
        } while index < payloads.count
        return answers
    }

    /// How ctnetlink answers a batch of non-dump requests: each request in
    /// order, its data reply (`data`), then an NLMSG_ERROR when it failed
    /// (`errors`, as errno values) or, when it asked for one, an
    /// acknowledgement; each in a datagram of its own, as the kernel sends
    /// them.
    static func batch(_ datagram: FakeKernel.Datagram, errors: [Int: Int32] = [:],
                      data: [Int: [UInt8]] = [:]) -> [FakeKernel.Answer] {
        var answers: [FakeKernel.Answer] = []
        for (i, m) in datagram.messages.enumerated() {
            if let payload = data[i], errors[i] == nil { answers.append(.datagram(entry(payload, to: m, flags: 0))) }
            if let e = errors[i] {
                answers.append(.datagram(ack(m, error: -e)))
            } else if m.wantsAck {
                answers.append(.datagram(ack(m)))
            }
        }
        return answers
    }
}
