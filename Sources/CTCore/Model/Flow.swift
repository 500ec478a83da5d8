/// An IPv4 or IPv6 address, as carried in CTA_IP_V4_* / CTA_IP_V6_*.
public enum IPAddress: Equatable, Hashable, Sendable {
    /// Host-order value of the big-endian address (1.2.3.4 == 0x01020304).
    case v4(UInt32)
    /// The 16 bytes as two big-endian halves (high, low).
    case v6(UInt64, UInt64)
}

/// A layer 3 family (nfgenmsg.nfgen_family, CTA_TUPLE's l3num).
public enum Family: Hashable, Sendable, CustomStringConvertible {
    case ipv4          // AF_INET (2)
    case ipv6          // AF_INET6 (10)
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
    case icmp       // 1
    case tcp        // 6
    case udp        // 17
    case dccp       // 33
    case gre        // 47
    case icmpv6     // 58
    case sctp       // 132
    case udplite    // 136
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

    /// The name conntrack prints ("tcp", "udp", ...), or the number.
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

/// One direction of a connection (CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_TUPLE_MASTER).
public struct Tuple: Hashable, Sendable {
    public var src: IPAddress?           // CTA_IP_V4_SRC / CTA_IP_V6_SRC
    public var dst: IPAddress?           // CTA_IP_V4_DST / CTA_IP_V6_DST
    package var proto: UInt8?            // CTA_PROTO_NUM
    /// Ports for tcp, udp, udplite, sctp, dccp; GRE keys travel in the same
    /// attributes (CTA_PROTO_SRC_PORT / CTA_PROTO_DST_PORT).
    public var srcPort: UInt16?
    public var dstPort: UInt16?
    public var icmpID: UInt16?           // CTA_PROTO_ICMP_ID / CTA_PROTO_ICMPV6_ID
    public var icmpType: UInt8?          // CTA_PROTO_ICMP_TYPE / CTA_PROTO_ICMPV6_TYPE
    public var icmpCode: UInt8?          // CTA_PROTO_ICMP_CODE / CTA_PROTO_ICMPV6_CODE
    public var zone: UInt16?             // CTA_TUPLE_ZONE
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
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let expected = Status(rawValue: 1 << 0)      // IPS_EXPECTED
    public static let seenReply = Status(rawValue: 1 << 1)     // IPS_SEEN_REPLY
    public static let assured = Status(rawValue: 1 << 2)       // IPS_ASSURED
    public static let confirmed = Status(rawValue: 1 << 3)     // IPS_CONFIRMED
    public static let srcNat = Status(rawValue: 1 << 4)        // IPS_SRC_NAT
    public static let dstNat = Status(rawValue: 1 << 5)        // IPS_DST_NAT
    public static let seqAdjust = Status(rawValue: 1 << 6)     // IPS_SEQ_ADJUST
    public static let srcNatDone = Status(rawValue: 1 << 7)    // IPS_SRC_NAT_DONE
    public static let dstNatDone = Status(rawValue: 1 << 8)    // IPS_DST_NAT_DONE
    public static let dying = Status(rawValue: 1 << 9)         // IPS_DYING
    public static let fixedTimeout = Status(rawValue: 1 << 10) // IPS_FIXED_TIMEOUT
    public static let template = Status(rawValue: 1 << 11)     // IPS_TEMPLATE
    public static let untracked = Status(rawValue: 1 << 12)    // IPS_UNTRACKED
    public static let helper = Status(rawValue: 1 << 13)       // IPS_HELPER
    public static let offload = Status(rawValue: 1 << 14)      // IPS_OFFLOAD
    public static let hwOffload = Status(rawValue: 1 << 15)    // IPS_HW_OFFLOAD
}

/// Per-direction TCP flags (struct nf_ct_tcp_flags).
public struct TCPFlags: Equatable, Sendable {
    public var flags: UInt8
    public var mask: UInt8
    public init(flags: UInt8, mask: UInt8) { self.flags = flags; self.mask = mask }
}

/// CTA_PROTOINFO_TCP
public struct TCPInfo: Equatable, Sendable {
    public var state: UInt8?                 // CTA_PROTOINFO_TCP_STATE
    public var windowScaleOriginal: UInt8?   // CTA_PROTOINFO_TCP_WSCALE_ORIGINAL
    public var windowScaleReply: UInt8?      // CTA_PROTOINFO_TCP_WSCALE_REPLY
    public var flagsOriginal: TCPFlags?      // CTA_PROTOINFO_TCP_FLAGS_ORIGINAL
    public var flagsReply: TCPFlags?         // CTA_PROTOINFO_TCP_FLAGS_REPLY
    public init() {}
}

/// CTA_PROTOINFO_SCTP
public struct SCTPInfo: Equatable, Sendable {
    public var state: UInt8?                 // CTA_PROTOINFO_SCTP_STATE
    public var vtagOriginal: UInt32?         // CTA_PROTOINFO_SCTP_VTAG_ORIGINAL
    public var vtagReply: UInt32?            // CTA_PROTOINFO_SCTP_VTAG_REPLY
    public init() {}
}

/// CTA_PROTOINFO_DCCP
public struct DCCPInfo: Equatable, Sendable {
    public var state: UInt8?                 // CTA_PROTOINFO_DCCP_STATE
    public var role: UInt8?                  // CTA_PROTOINFO_DCCP_ROLE
    public var handshakeSeq: UInt64?         // CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ
    public init() {}
}

/// CTA_PROTOINFO
public enum ProtoInfo: Equatable, Sendable {
    case tcp(TCPInfo)
    case sctp(SCTPInfo)
    case dccp(DCCPInfo)
}

/// CTA_COUNTERS_ORIG / CTA_COUNTERS_REPLY
public struct Counters: Equatable, Sendable {
    public var packets: UInt64   // CTA_COUNTERS_PACKETS (or CTA_COUNTERS32_PACKETS)
    public var bytes: UInt64     // CTA_COUNTERS_BYTES (or CTA_COUNTERS32_BYTES)
    public init(packets: UInt64, bytes: UInt64) { self.packets = packets; self.bytes = bytes }
}

/// CTA_SEQ_ADJ_ORIG / CTA_SEQ_ADJ_REPLY
public struct SeqAdjust: Equatable, Sendable {
    public var correctionPos: UInt32?   // CTA_SEQADJ_CORRECTION_POS
    public var offsetBefore: UInt32?    // CTA_SEQADJ_OFFSET_BEFORE
    public var offsetAfter: UInt32?     // CTA_SEQADJ_OFFSET_AFTER
    public init() {}
}

/// CTA_SYNPROXY
public struct SynProxy: Equatable, Sendable {
    public var isn: UInt32?     // CTA_SYNPROXY_ISN
    public var its: UInt32?     // CTA_SYNPROXY_ITS
    public var tsoff: UInt32?   // CTA_SYNPROXY_TSOFF
    public init() {}
}

/// Connection labels (CTA_LABELS): a bit set, bit N is label N.
public struct Labels: Equatable, Sendable {
    /// Up to 128 bits (the kernel's NF_CT_LABELS_MAX_SIZE is 16 bytes),
    /// stored as the kernel sends them: an array of host-order 32-bit words.
    public var words: (UInt64, UInt64)
    public var byteCount: Int
    public init(words: (UInt64, UInt64) = (0, 0), byteCount: Int = 16) { self.words = words; self.byteCount = byteCount }
    public func contains(_ bit: Int) -> Bool {
        guard bit >= 0, bit < 128 else { return false }
        return bit < 64 ? (words.0 >> UInt64(bit)) & 1 == 1 : (words.1 >> UInt64(bit - 64)) & 1 == 1
    }
    public var isEmpty: Bool { words.0 == 0 && words.1 == 0 }
    public var bits: [Int] { (0..<128).filter(contains) }
    public static func == (a: Labels, b: Labels) -> Bool { a.words == b.words && a.byteCount == b.byteCount }
}

/// A connection tracking entry as ctnetlink describes it. Every attribute is
/// optional: absent in the message means nil here.
public struct Flow: Equatable, Sendable {
    public var family: Family = .other(0)    // nfgenmsg.nfgen_family
    public var orig: Tuple?                  // CTA_TUPLE_ORIG
    public var reply: Tuple?                 // CTA_TUPLE_REPLY
    public var master: Tuple?                // CTA_TUPLE_MASTER
    public var status: Status?               // CTA_STATUS
    public var protoInfo: ProtoInfo?         // CTA_PROTOINFO
    public var helper: String?               // CTA_HELP / CTA_HELP_NAME
    public var timeout: UInt32?              // CTA_TIMEOUT
    public var mark: UInt32?                 // CTA_MARK
    public var countersOrig: Counters?       // CTA_COUNTERS_ORIG
    public var countersReply: Counters?      // CTA_COUNTERS_REPLY
    public var use: UInt32?                  // CTA_USE
    public var id: UInt32?                   // CTA_ID
    public var seqAdjOrig: SeqAdjust?        // CTA_SEQ_ADJ_ORIG
    public var seqAdjReply: SeqAdjust?       // CTA_SEQ_ADJ_REPLY
    public var secmark: UInt32?              // CTA_SECMARK
    public var zone: UInt16?                 // CTA_ZONE
    public var secctx: String?               // CTA_SECCTX / CTA_SECCTX_NAME
    public var timestampStart: UInt64?       // CTA_TIMESTAMP / CTA_TIMESTAMP_START (ns)
    public var timestampStop: UInt64?        // CTA_TIMESTAMP / CTA_TIMESTAMP_STOP (ns)
    public var labels: Labels?               // CTA_LABELS
    public var synproxy: SynProxy?           // CTA_SYNPROXY
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
