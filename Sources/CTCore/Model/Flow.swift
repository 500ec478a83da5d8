/// An IPv4 or IPv6 address, as carried in CTA_IP_V4_* / CTA_IP_V6_*.
public enum IPAddress: Equatable, Hashable, Sendable {
    /// Host-order value of the big-endian address (1.2.3.4 == 0x01020304).
    case v4(UInt32)
    /// The 16 bytes as two big-endian halves (high, low).
    case v6(UInt64, UInt64)
}

/// Layer 3 families (nfgen_family / l3num).
public enum Family: UInt8, Sendable {
    case unspec = 0   // AF_UNSPEC
    case ipv4 = 2     // AF_INET
    case ipv6 = 10    // AF_INET6
}

/// Well-known layer 4 protocol numbers (CTA_PROTO_NUM).
public enum IPProto {
    public static let icmp: UInt8 = 1
    public static let tcp: UInt8 = 6
    public static let udp: UInt8 = 17
    public static let dccp: UInt8 = 33
    public static let gre: UInt8 = 47
    public static let icmpv6: UInt8 = 58
    public static let sctp: UInt8 = 132
    public static let udplite: UInt8 = 136

    /// Whether tuples of `proto` carry ports (CTA_PROTO_SRC_PORT/DST_PORT).
    public static func hasPorts(_ proto: UInt8) -> Bool {
        proto == tcp || proto == udp || proto == udplite || proto == sctp || proto == dccp
    }
}

/// One direction of a connection (CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_TUPLE_MASTER).
public struct Tuple: Equatable, Sendable {
    public var src: IPAddress?           // CTA_IP_V4_SRC / CTA_IP_V6_SRC
    public var dst: IPAddress?           // CTA_IP_V4_DST / CTA_IP_V6_DST
    public var proto: UInt8?             // CTA_PROTO_NUM
    /// Ports for tcp, udp, udplite, sctp, dccp; GRE keys travel in the same
    /// attributes (CTA_PROTO_SRC_PORT / CTA_PROTO_DST_PORT).
    public var srcPort: UInt16?
    public var dstPort: UInt16?
    public var icmpID: UInt16?           // CTA_PROTO_ICMP_ID / CTA_PROTO_ICMPV6_ID
    public var icmpType: UInt8?          // CTA_PROTO_ICMP_TYPE / CTA_PROTO_ICMPV6_TYPE
    public var icmpCode: UInt8?          // CTA_PROTO_ICMP_CODE / CTA_PROTO_ICMPV6_CODE
    public var zone: UInt16?             // CTA_TUPLE_ZONE
    public init() {}
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
    public var family: UInt8 = 0             // nfgenmsg.nfgen_family
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
    public var proto: UInt8? { orig?.proto ?? reply?.proto }
}

/// Per-CPU statistics (IPCTNL_MSG_CT_GET_STATS_CPU): the CPU number and the
/// counters present in the message, by attribute number (CTA_STATS_*).
public struct CPUStats: Equatable, Sendable {
    public var cpu: UInt16
    public var values: [(attribute: UInt16, value: UInt32)]
    public init(cpu: UInt16, values: [(attribute: UInt16, value: UInt32)]) { self.cpu = cpu; self.values = values }
    public static func == (a: CPUStats, b: CPUStats) -> Bool {
        a.cpu == b.cpu && a.values.elementsEqual(b.values, by: { $0.attribute == $1.attribute && $0.value == $1.value })
    }
}

extension Flow {
    /// Whole seconds from the start timestamp to the stop timestamp, or to
    /// `now` (a wall-clock second) while the entry lives; nil without a
    /// start timestamp. conntrack prints it as delta-time / deltatime.
    public func deltaTime(now: Int) -> UInt64? {
        guard let start = timestampStart else { return nil }
        let end = timestampStop.map { Int($0 / 1_000_000_000) } ?? now
        return UInt64(bitPattern: Int64(end - Int(start / 1_000_000_000)))
    }
}
