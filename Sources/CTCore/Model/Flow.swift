import Glibc

/// An IPv4 or IPv6 address, as carried in CTA_IP_V4_* / CTA_IP_V6_*.
///
/// ```swift
/// let a: IPAddress = .v4(0x0a00_0001)   // 10.0.0.1
/// let b: IPAddress = .v6(0xfd00_0000_0000_0000, 1)   // fd00::1
/// ```
public enum IPAddress: Equatable, Hashable, Sendable {
    /// Host-order value of the big-endian address (1.2.3.4 == 0x01020304).
    case v4(UInt32)
    /// The 16 bytes as two big-endian halves (high, low).
    case v6(UInt64, UInt64)
}

/// A layer 3 family (nfgenmsg.nfgen_family, CTA_TUPLE's l3num).
public enum Family: Hashable, Sendable, CustomStringConvertible {
    /// IPv4 (AF_INET, 2).
    case ipv4
    /// IPv6 (AF_INET6, 10).
    case ipv6
    /// Any other number the kernel reports (AF_UNSPEC is 0).
    case other(UInt8)

    /// The family of the address family number `rawValue`.
    public init(rawValue: UInt8) {
        switch rawValue {
        case 2: self = .ipv4
        case 10: self = .ipv6
        default: self = .other(rawValue)
        }
    }

    /// The address family number (AF_INET, AF_INET6, ...).
    public var rawValue: UInt8 {
        switch self {
        case .ipv4: 2
        case .ipv6: 10
        case .other(let n): n
        }
    }

    /// "ipv4", "ipv6", or "family N".
    public var description: String {
        switch self {
        case .ipv4: "ipv4"
        case .ipv6: "ipv6"
        case .other(let n): "family \(n)"
        }
    }
}

/// A layer 4 protocol (CTA_PROTO_NUM).
public enum IPProtocol: Hashable, Sendable, CustomStringConvertible {
    /// ICMP (1).
    case icmp
    /// TCP (6).
    case tcp
    /// UDP (17).
    case udp
    /// DCCP (33).
    case dccp
    /// GRE (47).
    case gre
    /// ICMPv6 (58).
    case icmpv6
    /// SCTP (132).
    case sctp
    /// UDP-Lite (136).
    case udplite
    /// Any other protocol number.
    case other(UInt8)

    /// The protocol with IANA number `rawValue`.
    public init(rawValue: UInt8) {
        switch rawValue {
        case IPProto.icmp: self = .icmp
        case IPProto.tcp: self = .tcp
        case IPProto.udp: self = .udp
        case IPProto.dccp: self = .dccp
        case IPProto.gre: self = .gre
        case IPProto.icmpv6: self = .icmpv6
        case IPProto.sctp: self = .sctp
        case IPProto.udplite: self = .udplite
        default: self = .other(rawValue)
        }
    }

    /// The IANA protocol number.
    public var rawValue: UInt8 {
        switch self {
        case .icmp: IPProto.icmp
        case .tcp: IPProto.tcp
        case .udp: IPProto.udp
        case .dccp: IPProto.dccp
        case .gre: IPProto.gre
        case .icmpv6: IPProto.icmpv6
        case .sctp: IPProto.sctp
        case .udplite: IPProto.udplite
        case .other(let n): n
        }
    }

    /// Whether tuples of this protocol carry ports.
    public var hasPorts: Bool { IPProto.hasPorts(rawValue) }

    /// The protocol's name ("tcp", "udp", ...), or its number.
    public var description: String {
        if case .other(let n) = self { return String(n) }
        return "\(Names.proto(rawValue))"
    }
}

/// Well-known layer 4 protocol numbers (CTA_PROTO_NUM).
package enum IPProto {
    package static let icmp: UInt8 = 1
    package static let tcp: UInt8 = 6
    package static let udp: UInt8 = 17
    package static let dccp: UInt8 = 33
    package static let gre: UInt8 = 47
    package static let icmpv6: UInt8 = 58
    package static let sctp: UInt8 = 132
    package static let udplite: UInt8 = 136

    /// Whether tuples of `proto` carry ports (CTA_PROTO_SRC_PORT/DST_PORT).
    package static func hasPorts(_ proto: UInt8) -> Bool {
        proto == tcp || proto == udp || proto == udplite || proto == sctp || proto == dccp
    }
}

/// One direction of a connection: addresses, layer 4 protocol and the
/// protocol's fields (CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_TUPLE_MASTER).
public struct Tuple: Hashable, Sendable {
    /// The source address (CTA_IP_V4_SRC or CTA_IP_V6_SRC).
    public var src: IPAddress?
    /// The destination address (CTA_IP_V4_DST or CTA_IP_V6_DST).
    public var dst: IPAddress?
    package var proto: UInt8?            // CTA_PROTO_NUM
    /// The source port, for tcp, udp, udplite, sctp and dccp; for GRE the
    /// source key, which travels in the same attribute (CTA_PROTO_SRC_PORT).
    public var srcPort: UInt16?
    /// The destination port, or GRE's destination key (CTA_PROTO_DST_PORT).
    public var dstPort: UInt16?
    /// The ICMP or ICMPv6 echo identifier (CTA_PROTO_ICMP_ID, CTA_PROTO_ICMPV6_ID).
    public var icmpID: UInt16?
    /// The ICMP or ICMPv6 type (CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMPV6_TYPE).
    public var icmpType: UInt8?
    /// The ICMP or ICMPv6 code (CTA_PROTO_ICMP_CODE, CTA_PROTO_ICMPV6_CODE).
    public var icmpCode: UInt8?
    /// The zone of this direction's tuple (CTA_TUPLE_ZONE), where it differs
    /// from the entry's ``Flow/zone``.
    public var zone: UInt16?
    /// An empty tuple, to fill in field by field.
    public init() {}

    /// A tuple of addresses, protocol and (for protocols with ports) ports.
    public init(source: IPAddress, destination: IPAddress, protocol: IPProtocol,
                sourcePort: UInt16? = nil, destinationPort: UInt16? = nil) {
        src = source
        dst = destination
        proto = `protocol`.rawValue
        srcPort = sourcePort
        dstPort = destinationPort
    }

    /// The layer 4 protocol (CTA_PROTO_NUM).
    public var ipProtocol: IPProtocol? {
        get { proto.map(IPProtocol.init(rawValue:)) }
        set { proto = newValue?.rawValue }
    }
}

/// Connection status bits (CTA_STATUS, enum ip_conntrack_status).
public struct Status: OptionSet, Equatable, Sendable {
    /// The bits, as the kernel numbers them.
    public let rawValue: UInt32
    /// The status with bits `rawValue`.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// The entry was expected by a helper (IPS_EXPECTED).
    public static let expected = Status(rawValue: 1 << 0)
    /// Packets have been seen in both directions (IPS_SEEN_REPLY).
    public static let seenReply = Status(rawValue: 1 << 1)
    /// The entry is assured: the kernel does not drop it early when the
    /// table is full (IPS_ASSURED).
    public static let assured = Status(rawValue: 1 << 2)
    /// The entry is in the table, not only attached to a packet (IPS_CONFIRMED).
    public static let confirmed = Status(rawValue: 1 << 3)
    /// The entry needs source NAT in the original direction (IPS_SRC_NAT).
    public static let srcNat = Status(rawValue: 1 << 4)
    /// The entry needs destination NAT in the original direction (IPS_DST_NAT).
    public static let dstNat = Status(rawValue: 1 << 5)
    /// TCP sequence numbers are adjusted, after a helper changed a payload
    /// (IPS_SEQ_ADJUST).
    public static let seqAdjust = Status(rawValue: 1 << 6)
    /// Source NAT has been set up (IPS_SRC_NAT_DONE).
    public static let srcNatDone = Status(rawValue: 1 << 7)
    /// Destination NAT has been set up (IPS_DST_NAT_DONE).
    public static let dstNatDone = Status(rawValue: 1 << 8)
    /// The entry is being removed (IPS_DYING).
    public static let dying = Status(rawValue: 1 << 9)
    /// The timeout is fixed: traffic does not refresh it (IPS_FIXED_TIMEOUT).
    public static let fixedTimeout = Status(rawValue: 1 << 10)
    /// A template for new entries, not a connection (IPS_TEMPLATE).
    public static let template = Status(rawValue: 1 << 11)
    /// The placeholder of untracked packets (IPS_UNTRACKED).
    public static let untracked = Status(rawValue: 1 << 12)
    /// A helper was assigned explicitly, by a CT target (IPS_HELPER).
    public static let helper = Status(rawValue: 1 << 13)
    /// The connection is offloaded to a flow table (IPS_OFFLOAD).
    public static let offload = Status(rawValue: 1 << 14)
    /// The connection is offloaded to hardware (IPS_HW_OFFLOAD).
    public static let hwOffload = Status(rawValue: 1 << 15)
}

/// Per-direction TCP flags (struct nf_ct_tcp_flags).
public struct TCPFlags: Equatable, Sendable {
    /// The tracker's flags: 0x01 window scale, 0x02 SACK permitted,
    /// 0x04 close init, 0x08 be liberal, 0x10 unacknowledged data,
    /// 0x20 maximum ack set (IP_CT_TCP_FLAG_*).
    public var flags: UInt8
    /// The flags that are valid (for an update: the flags to change).
    public var mask: UInt8
    /// `flags`, valid under `mask`.
    public init(flags: UInt8, mask: UInt8) { self.flags = flags; self.mask = mask }
}

/// The TCP tracker's state of an entry (CTA_PROTOINFO_TCP).
public struct TCPInfo: Equatable, Sendable {
    /// The TCP state, as the kernel's `enum tcp_conntrack` numbers it:
    /// 0 none, 1 SYN_SENT, 2 SYN_RECV, 3 ESTABLISHED, 4 FIN_WAIT, 5 CLOSE_WAIT,
    /// 6 LAST_ACK, 7 TIME_WAIT, 8 CLOSE, 9 SYN_SENT2 (CTA_PROTOINFO_TCP_STATE).
    public var state: UInt8?
    /// The window scale of the original direction (CTA_PROTOINFO_TCP_WSCALE_ORIGINAL).
    public var windowScaleOriginal: UInt8?
    /// The window scale of the reply direction (CTA_PROTOINFO_TCP_WSCALE_REPLY).
    public var windowScaleReply: UInt8?
    /// The tracker's flags for the original direction (CTA_PROTOINFO_TCP_FLAGS_ORIGINAL).
    public var flagsOriginal: TCPFlags?
    /// The tracker's flags for the reply direction (CTA_PROTOINFO_TCP_FLAGS_REPLY).
    public var flagsReply: TCPFlags?
    /// No fields set.
    public init() {}
}

/// The SCTP tracker's state of an entry (CTA_PROTOINFO_SCTP).
public struct SCTPInfo: Equatable, Sendable {
    /// The SCTP state, as the kernel's `enum sctp_conntrack` numbers it
    /// (CTA_PROTOINFO_SCTP_STATE).
    public var state: UInt8?
    /// The verification tag of the original direction (CTA_PROTOINFO_SCTP_VTAG_ORIGINAL).
    public var vtagOriginal: UInt32?
    /// The verification tag of the reply direction (CTA_PROTOINFO_SCTP_VTAG_REPLY).
    public var vtagReply: UInt32?
    /// No fields set.
    public init() {}
}

/// The DCCP tracker's state of an entry (CTA_PROTOINFO_DCCP).
public struct DCCPInfo: Equatable, Sendable {
    /// The DCCP state, as the kernel's `enum ct_dccp_states` numbers it
    /// (CTA_PROTOINFO_DCCP_STATE).
    public var state: UInt8?
    /// The role of the original direction's sender: 0 client, 1 server
    /// (CTA_PROTOINFO_DCCP_ROLE).
    public var role: UInt8?
    /// The sequence number of the handshake (CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ).
    public var handshakeSeq: UInt64?
    /// No fields set.
    public init() {}
}

/// The protocol tracker's state of an entry (CTA_PROTOINFO), for the
/// protocols that keep one.
public enum ProtoInfo: Equatable, Sendable {
    /// TCP's state, window scales and flags.
    case tcp(TCPInfo)
    /// SCTP's state and verification tags.
    case sctp(SCTPInfo)
    /// DCCP's state, role and handshake sequence number.
    case dccp(DCCPInfo)
}

/// Packet and byte counters of one direction (CTA_COUNTERS_ORIG,
/// CTA_COUNTERS_REPLY), where the kernel's accounting is on
/// (`net.netfilter.nf_conntrack_acct`).
public struct Counters: Equatable, Sendable {
    /// Packets (CTA_COUNTERS_PACKETS, or CTA_COUNTERS32_PACKETS).
    public var packets: UInt64
    /// Bytes (CTA_COUNTERS_BYTES, or CTA_COUNTERS32_BYTES).
    public var bytes: UInt64
    /// Counters of `packets` packets and `bytes` bytes.
    public init(packets: UInt64, bytes: UInt64) { self.packets = packets; self.bytes = bytes }
}

/// The TCP sequence number adjustment of one direction, after a helper
/// or NAT changed a payload's length (CTA_SEQ_ADJ_ORIG, CTA_SEQ_ADJ_REPLY).
public struct SeqAdjust: Equatable, Sendable {
    /// The sequence number from which the offsets apply (CTA_SEQADJ_CORRECTION_POS).
    public var correctionPos: UInt32?
    /// The offset before that position (CTA_SEQADJ_OFFSET_BEFORE).
    public var offsetBefore: UInt32?
    /// The offset from that position on (CTA_SEQADJ_OFFSET_AFTER).
    public var offsetAfter: UInt32?
    /// No fields set.
    public init() {}
}

/// The SYN proxy's state of an entry (CTA_SYNPROXY).
public struct SynProxy: Equatable, Sendable {
    /// The client's initial sequence number (CTA_SYNPROXY_ISN).
    public var isn: UInt32?
    /// The initial timestamp (CTA_SYNPROXY_ITS).
    public var its: UInt32?
    /// The timestamp offset (CTA_SYNPROXY_TSOFF).
    public var tsoff: UInt32?
    /// No fields set.
    public init() {}
}

/// Connection labels (CTA_LABELS): a bit set, bit N is label N.
public struct Labels: Equatable, Sendable {
    /// Up to 128 bits (the kernel's NF_CT_LABELS_MAX_SIZE is 16 bytes):
    /// labels 0 to 63 are bits 0 to 63 of the first word, labels 64 to 127
    /// those of the second.
    public var words: (UInt64, UInt64)
    /// The length of the kernel's label attribute in bytes.
    public var byteCount: Int
    /// Labels with the bits of `words` set.
    public init(words: (UInt64, UInt64) = (0, 0), byteCount: Int = 16) { self.words = words; self.byteCount = byteCount }
    /// Whether label `bit` (0 to 127) is set.
    public func contains(_ bit: Int) -> Bool {
        guard bit >= 0, bit < 128 else { return false }
        return bit < 64 ? (words.0 >> UInt64(bit)) & 1 == 1 : (words.1 >> UInt64(bit - 64)) & 1 == 1
    }
    /// No label is set.
    public var isEmpty: Bool { words.0 == 0 && words.1 == 0 }
    /// The labels that are set, in ascending order.
    public var bits: [Int] { (0..<128).filter(contains) }
    /// Equal bits and byte count.
    public static func == (a: Labels, b: Labels) -> Bool { a.words == b.words && a.byteCount == b.byteCount }
}

/// A connection tracking entry as ctnetlink describes it. Every attribute is
/// optional: absent in the message means nil here.
///
/// Dumps and gets report whole entries; events report what the kernel put
/// in the event (an update may carry only what changed). To create an
/// entry, fill in at least ``orig``, ``timeout`` and, for TCP, the state in
/// ``protoInfo``; see ``Conntrack/create(_:sourceNAT:destinationNAT:)``.
public struct Flow: Equatable, Sendable {
    /// The layer 3 family (nfgenmsg.nfgen_family).
    public var family: Family = .other(0)
    /// The original direction: the first packet's addresses and ports
    /// (CTA_TUPLE_ORIG).
    public var orig: Tuple?
    /// The reply direction, as answers are expected after NAT (CTA_TUPLE_REPLY).
    public var reply: Tuple?
    /// For an expected entry, the original tuple of the entry that expected it
    /// (CTA_TUPLE_MASTER).
    public var master: Tuple?
    /// The status bits (CTA_STATUS).
    public var status: Status?
    /// The protocol tracker's state (CTA_PROTOINFO).
    public var protoInfo: ProtoInfo?
    /// The name of the helper assigned to the entry (CTA_HELP_NAME).
    public var helper: String?
    /// Seconds until the entry expires (CTA_TIMEOUT).
    public var timeout: UInt32?
    /// The connection mark (CTA_MARK).
    public var mark: UInt32?
    /// Packets and bytes of the original direction, where accounting is on
    /// (CTA_COUNTERS_ORIG).
    public var countersOrig: Counters?
    /// Packets and bytes of the reply direction (CTA_COUNTERS_REPLY).
    public var countersReply: Counters?
    /// References the kernel holds on the entry (CTA_USE).
    public var use: UInt32?
    /// The entry id, unique while the entry lives (CTA_ID).
    public var id: UInt32?
    /// Sequence adjustment of the original direction (CTA_SEQ_ADJ_ORIG).
    public var seqAdjOrig: SeqAdjust?
    /// Sequence adjustment of the reply direction (CTA_SEQ_ADJ_REPLY).
    public var seqAdjReply: SeqAdjust?
    /// The security mark (CTA_SECMARK).
    public var secmark: UInt32?
    /// The conntrack zone (CTA_ZONE); nil is zone 0.
    public var zone: UInt16?
    /// The security context, such as an SELinux label (CTA_SECCTX_NAME).
    public var secctx: String?
    /// When the entry was created, in nanoseconds since the epoch, where
    /// timestamping is on (CTA_TIMESTAMP_START).
    public var timestampStart: UInt64?
    /// When the entry was destroyed, in nanoseconds since the epoch (in
    /// destroy events; CTA_TIMESTAMP_STOP).
    public var timestampStop: UInt64?
    /// When the kernel raised the event this entry came with, in
    /// nanoseconds since the epoch (CTA_TIMESTAMP_EVENT): sent in events by
    /// Linux 6.14 and later while net.netfilter.nf_conntrack_timestamp is
    /// 1; nil in dumps, on older kernels and with timestamping off.
    public var eventTimestamp: UInt64?
    /// The connection labels (CTA_LABELS).
    public var labels: Labels?
    /// SYN proxy state (CTA_SYNPROXY).
    public var synproxy: SynProxy?
    /// An entry with no attributes, to fill in.
    public init() {}

    /// The layer 4 protocol number of the original tuple.
    package var proto: UInt8? { orig?.proto ?? reply?.proto }

    /// The layer 4 protocol of the original tuple.
    public var ipProtocol: IPProtocol? { proto.map(IPProtocol.init(rawValue:)) }
}

/// Per-CPU statistics (IPCTNL_MSG_CT_GET_STATS_CPU): the CPU number and the
/// counters present in the message, by attribute number (CTA_STATS_*).
package struct CPUStats: Equatable, Sendable {
    package var cpu: UInt16
    package var values: [(attribute: UInt16, value: UInt32)]
    package init(cpu: UInt16, values: [(attribute: UInt16, value: UInt32)]) { self.cpu = cpu; self.values = values }
    package static func == (a: CPUStats, b: CPUStats) -> Bool {
        a.cpu == b.cpu && a.values.elementsEqual(b.values, by: { $0.attribute == $1.attribute && $0.value == $1.value })
    }
}

extension Flow {
    /// Whole seconds from the start timestamp to the stop timestamp, or to
    /// `now` (a wall-clock second) while the entry lives; nil without a
    /// start timestamp. conntrack prints it as delta-time / deltatime.
    package func deltaTime(now: Int) -> UInt64? {
        guard let start = timestampStart else { return nil }
        let end = timestampStop.map { Int($0 / 1_000_000_000) } ?? now
        return UInt64(bitPattern: Int64(end - Int(start / 1_000_000_000)))
    }
}

extension IPAddress: CustomStringConvertible {
    /// Parses an address as inet_pton(3) reads it: a dotted quad, or IPv6
    /// text. Nil for anything else.
    public init?(_ text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self = .v4(UInt32(bigEndian: v4.s_addr))
            return
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        self = withUnsafeBytes(of: &v6) { bytes in
            let hi = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let lo = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return .v6(hi, lo)
        }
    }

    /// The address as inet_ntop(3) writes it.
    public var description: String {
        let buffer = OutputBuffer(fd: -1, capacity: 64)
        buffer.append(address: self)
        return String(decoding: buffer.pending, as: UTF8.self)
    }

    /// The family of the address.
    public var family: Family {
        switch self {
        case .v4: .ipv4
        case .v6: .ipv6
        }
    }
}

/// TCP connection tracking states (enum tcp_conntrack).
public enum TCPState: UInt8, Sendable, CaseIterable {
    case none = 0, synSent, synReceived, established, finWait, closeWait, lastAck, timeWait, close, synSent2
}

/// SCTP connection tracking states (enum sctp_conntrack).
public enum SCTPState: UInt8, Sendable, CaseIterable {
    case none = 0, closed, cookieWait, cookieEchoed, established, shutdownSent, shutdownReceived,
         shutdownAckSent, heartbeatSent, heartbeatAcked
}

/// DCCP connection tracking states (enum ct_dccp_states).
public enum DCCPState: UInt8, Sendable, CaseIterable {
    case none = 0, request, respond, partOpen, open, closeRequest, closing, timeWait, ignore, invalid
}

extension TCPInfo {
    /// ``state`` as a ``TCPState``; nil when absent or unknown.
    public var tcpState: TCPState? { state.flatMap(TCPState.init(rawValue:)) }
}

extension SCTPInfo {
    /// ``state`` as an ``SCTPState``; nil when absent or unknown.
    public var sctpState: SCTPState? { state.flatMap(SCTPState.init(rawValue:)) }
}

extension DCCPInfo {
    /// ``state`` as a ``DCCPState``; nil when absent or unknown.
    public var dccpState: DCCPState? { state.flatMap(DCCPState.init(rawValue:)) }
}

extension Flow {
    /// The TCP state of a TCP entry.
    public var tcpState: TCPState? {
        if case .tcp(let info)? = protoInfo { return info.tcpState }
        return nil
    }
}
