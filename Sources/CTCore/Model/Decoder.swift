/// ctnetlink attribute numbers (enum ctattr_type and the nested enums),
/// kept findable by their kernel names.
package enum CTA {
    package static let tupleOrig: UInt16 = 1       // CTA_TUPLE_ORIG
    package static let tupleReply: UInt16 = 2      // CTA_TUPLE_REPLY
    package static let status: UInt16 = 3          // CTA_STATUS
    package static let protoinfo: UInt16 = 4       // CTA_PROTOINFO
    package static let help: UInt16 = 5            // CTA_HELP
    package static let natSrc: UInt16 = 6          // CTA_NAT_SRC
    package static let timeout: UInt16 = 7         // CTA_TIMEOUT
    package static let mark: UInt16 = 8            // CTA_MARK
    package static let countersOrig: UInt16 = 9    // CTA_COUNTERS_ORIG
    package static let countersReply: UInt16 = 10  // CTA_COUNTERS_REPLY
    package static let use: UInt16 = 11            // CTA_USE
    package static let id: UInt16 = 12             // CTA_ID
    package static let natDst: UInt16 = 13         // CTA_NAT_DST
    package static let tupleMaster: UInt16 = 14    // CTA_TUPLE_MASTER
    package static let seqAdjOrig: UInt16 = 15     // CTA_SEQ_ADJ_ORIG
    package static let seqAdjReply: UInt16 = 16    // CTA_SEQ_ADJ_REPLY
    package static let secmark: UInt16 = 17        // CTA_SECMARK
    package static let zone: UInt16 = 18           // CTA_ZONE
    package static let secctx: UInt16 = 19         // CTA_SECCTX
    package static let timestamp: UInt16 = 20      // CTA_TIMESTAMP
    package static let markMask: UInt16 = 21       // CTA_MARK_MASK
    package static let labels: UInt16 = 22         // CTA_LABELS
    package static let labelsMask: UInt16 = 23     // CTA_LABELS_MASK
    package static let synproxy: UInt16 = 24       // CTA_SYNPROXY
    package static let filter: UInt16 = 25         // CTA_FILTER
    package static let statusMask: UInt16 = 26     // CTA_STATUS_MASK
    package static let timestampEvent: UInt16 = 27 // CTA_TIMESTAMP_EVENT (Linux 6.14)

    package enum Tuple {
        package static let ip: UInt16 = 1          // CTA_TUPLE_IP
        package static let proto: UInt16 = 2       // CTA_TUPLE_PROTO
        package static let zone: UInt16 = 3        // CTA_TUPLE_ZONE
    }
    package enum IP {
        package static let v4Src: UInt16 = 1       // CTA_IP_V4_SRC
        package static let v4Dst: UInt16 = 2       // CTA_IP_V4_DST
        package static let v6Src: UInt16 = 3       // CTA_IP_V6_SRC
        package static let v6Dst: UInt16 = 4       // CTA_IP_V6_DST
    }
    package enum Proto {
        package static let num: UInt16 = 1         // CTA_PROTO_NUM
        package static let srcPort: UInt16 = 2     // CTA_PROTO_SRC_PORT
        package static let dstPort: UInt16 = 3     // CTA_PROTO_DST_PORT
        package static let icmpID: UInt16 = 4      // CTA_PROTO_ICMP_ID
        package static let icmpType: UInt16 = 5    // CTA_PROTO_ICMP_TYPE
        package static let icmpCode: UInt16 = 6    // CTA_PROTO_ICMP_CODE
        package static let icmpv6ID: UInt16 = 7    // CTA_PROTO_ICMPV6_ID
        package static let icmpv6Type: UInt16 = 8  // CTA_PROTO_ICMPV6_TYPE
        package static let icmpv6Code: UInt16 = 9  // CTA_PROTO_ICMPV6_CODE
    }
    package enum ProtoInfo {
        package static let tcp: UInt16 = 1         // CTA_PROTOINFO_TCP
        package static let dccp: UInt16 = 2        // CTA_PROTOINFO_DCCP
        package static let sctp: UInt16 = 3        // CTA_PROTOINFO_SCTP
    }
    package enum TCP {
        package static let state: UInt16 = 1           // CTA_PROTOINFO_TCP_STATE
        package static let wscaleOriginal: UInt16 = 2  // CTA_PROTOINFO_TCP_WSCALE_ORIGINAL
        package static let wscaleReply: UInt16 = 3     // CTA_PROTOINFO_TCP_WSCALE_REPLY
        package static let flagsOriginal: UInt16 = 4   // CTA_PROTOINFO_TCP_FLAGS_ORIGINAL
        package static let flagsReply: UInt16 = 5      // CTA_PROTOINFO_TCP_FLAGS_REPLY
    }
    package enum DCCP {
        package static let state: UInt16 = 1           // CTA_PROTOINFO_DCCP_STATE
        package static let role: UInt16 = 2            // CTA_PROTOINFO_DCCP_ROLE
        package static let handshakeSeq: UInt16 = 3    // CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ
    }
    package enum SCTP {
        package static let state: UInt16 = 1           // CTA_PROTOINFO_SCTP_STATE
        package static let vtagOriginal: UInt16 = 2    // CTA_PROTOINFO_SCTP_VTAG_ORIGINAL
        package static let vtagReply: UInt16 = 3       // CTA_PROTOINFO_SCTP_VTAG_REPLY
    }
    package enum Counters {
        package static let packets: UInt16 = 1         // CTA_COUNTERS_PACKETS
        package static let bytes: UInt16 = 2           // CTA_COUNTERS_BYTES
        package static let packets32: UInt16 = 3       // CTA_COUNTERS32_PACKETS
        package static let bytes32: UInt16 = 4         // CTA_COUNTERS32_BYTES
    }
    package enum Timestamp {
        package static let start: UInt16 = 1           // CTA_TIMESTAMP_START
        package static let stop: UInt16 = 2            // CTA_TIMESTAMP_STOP
    }
    package enum SeqAdj {
        package static let correctionPos: UInt16 = 1   // CTA_SEQADJ_CORRECTION_POS
        package static let offsetBefore: UInt16 = 2    // CTA_SEQADJ_OFFSET_BEFORE
        package static let offsetAfter: UInt16 = 3     // CTA_SEQADJ_OFFSET_AFTER
    }
    package enum Help {
        package static let name: UInt16 = 1            // CTA_HELP_NAME
    }
    package enum Secctx {
        package static let name: UInt16 = 1            // CTA_SECCTX_NAME
    }
    package enum Synproxy {
        package static let isn: UInt16 = 1             // CTA_SYNPROXY_ISN
        package static let its: UInt16 = 2             // CTA_SYNPROXY_ITS
        package static let tsoff: UInt16 = 3           // CTA_SYNPROXY_TSOFF
    }
    package enum StatsGlobal {
        package static let entries: UInt16 = 1         // CTA_STATS_GLOBAL_ENTRIES
        package static let maxEntries: UInt16 = 2      // CTA_STATS_GLOBAL_MAX_ENTRIES
    }
}

/// ctnetlink message types (enum cntl_msg_types) and subsystem (the
/// expectation table's: ExpectMessage).
package enum CTMessage {
    package static let subsystem: UInt8 = 1        // NFNL_SUBSYS_CTNETLINK
    package static let new: UInt8 = 0              // IPCTNL_MSG_CT_NEW
    package static let get: UInt8 = 1              // IPCTNL_MSG_CT_GET
    package static let delete: UInt8 = 2           // IPCTNL_MSG_CT_DELETE
    package static let getCtrZero: UInt8 = 3       // IPCTNL_MSG_CT_GET_CTRZERO
    package static let getStatsCPU: UInt8 = 4      // IPCTNL_MSG_CT_GET_STATS_CPU
    package static let getStats: UInt8 = 5         // IPCTNL_MSG_CT_GET_STATS
    package static let getDying: UInt8 = 6         // IPCTNL_MSG_CT_GET_DYING
    package static let getUnconfirmed: UInt8 = 7   // IPCTNL_MSG_CT_GET_UNCONFIRMED
}

/// Turns ctnetlink message payloads into model values. Unknown attributes
/// are skipped; a short, truncated or wrongly sized attribute makes the
/// whole message `MalformedMessage`.
package enum Decoder {
    /// Size of struct nfgenmsg, which precedes the attributes.
    static let nfgenHeader = 4

    /// Decodes a conntrack message payload (nfgenmsg + attributes).
    /// `decode` of `payload`, or nil when the message is malformed: the
    /// problem goes to `onMalformed` (dumps and event streams skip such a
    /// message and report it).
    static func decoded<T>(_ payload: ByteView, _ decode: (ByteView) throws -> T,
                           onMalformed: (MalformedMessage) -> Void) throws -> T? {
        do {
            return try decode(payload)
        } catch let error as MalformedMessage {
            onMalformed(error)
            return nil
        }
    }

    package static func flow(_ payload: ByteView) throws -> Flow {
        guard let family = payload.u8(at: 0), let attrs = payload.slice(nfgenHeader, payload.count - nfgenHeader) else {
            throw MalformedMessage("message shorter than its nfgenmsg header")
        }
        var flow = Flow()
        flow.family = Family(rawValue: family)
        try attrs.forEachAttribute { a in
            switch a.type {
            case CTA.tupleOrig: flow.orig = try tuple(a.value)
            case CTA.tupleReply: flow.reply = try tuple(a.value)
            case CTA.tupleMaster: flow.master = try tuple(a.value)
            case CTA.status: flow.status = Status(rawValue: try u32(a))
            case CTA.protoinfo: flow.protoInfo = try protoInfo(a.value)
            case CTA.help: flow.helper = try nestedString(a.value, CTA.Help.name)
            case CTA.timeout: flow.timeout = try u32(a)
            case CTA.mark: flow.mark = try u32(a)
            case CTA.countersOrig: flow.countersOrig = try counters(a.value)
            case CTA.countersReply: flow.countersReply = try counters(a.value)
            case CTA.use: flow.use = try u32(a)
            case CTA.id: flow.id = try u32(a)
            case CTA.seqAdjOrig: flow.seqAdjOrig = try seqAdj(a.value)
            case CTA.seqAdjReply: flow.seqAdjReply = try seqAdj(a.value)
            case CTA.secmark: flow.secmark = try u32(a)
            case CTA.zone: flow.zone = try u16(a)
            case CTA.secctx: flow.secctx = try nestedString(a.value, CTA.Secctx.name)
            case CTA.timestamp:
                try a.value.forEachAttribute { t in
                    switch t.type {
                    case CTA.Timestamp.start: flow.timestampStart = try u64(t)
                    case CTA.Timestamp.stop: flow.timestampStop = try u64(t)
                    default: break
                    }
                }
            case CTA.timestampEvent: flow.eventTimestamp = try u64(a)
            case CTA.labels: flow.labels = try labels(a.value)
            case CTA.synproxy:
                var s = SynProxy()
                try a.value.forEachAttribute { p in
                    switch p.type {
                    case CTA.Synproxy.isn: s.isn = try u32(p)
                    case CTA.Synproxy.its: s.its = try u32(p)
                    case CTA.Synproxy.tsoff: s.tsoff = try u32(p)
                    default: break
                    }
                }
                flow.synproxy = s
            default: break
            }
        }
        return flow
    }

    /// Decodes a tuple (CTA_TUPLE_IP, CTA_TUPLE_PROTO, CTA_TUPLE_ZONE).
    package static func tuple(_ view: ByteView) throws -> Tuple {
        var t = Tuple()
        try view.forEachAttribute { a in
            switch a.type {
            case CTA.Tuple.ip:
                try a.value.forEachAttribute { ip in
                    switch ip.type {
                    case CTA.IP.v4Src: t.src = .v4(try u32(ip))
                    case CTA.IP.v4Dst: t.dst = .v4(try u32(ip))
                    case CTA.IP.v6Src: t.src = try v6(ip)
                    case CTA.IP.v6Dst: t.dst = try v6(ip)
                    default: break
                    }
                }
            case CTA.Tuple.proto:
                try a.value.forEachAttribute { p in
                    switch p.type {
                    case CTA.Proto.num: t.proto = try u8(p)
                    case CTA.Proto.srcPort: t.srcPort = try u16(p)
                    case CTA.Proto.dstPort: t.dstPort = try u16(p)
                    case CTA.Proto.icmpID, CTA.Proto.icmpv6ID: t.icmpID = try u16(p)
                    case CTA.Proto.icmpType, CTA.Proto.icmpv6Type: t.icmpType = try u8(p)
                    case CTA.Proto.icmpCode, CTA.Proto.icmpv6Code: t.icmpCode = try u8(p)
                    default: break
                    }
                }
            case CTA.Tuple.zone: t.zone = try u16(a)
            default: break
            }
        }
        return t
    }

    static func protoInfo(_ view: ByteView) throws -> ProtoInfo? {
        var result: ProtoInfo? = nil
        try view.forEachAttribute { a in
            switch a.type {
            case CTA.ProtoInfo.tcp:
                var tcp = TCPInfo()
                try a.value.forEachAttribute { f in
                    switch f.type {
                    case CTA.TCP.state: tcp.state = try u8(f)
                    case CTA.TCP.wscaleOriginal: tcp.windowScaleOriginal = try u8(f)
                    case CTA.TCP.wscaleReply: tcp.windowScaleReply = try u8(f)
                    case CTA.TCP.flagsOriginal: tcp.flagsOriginal = try tcpFlags(f)
                    case CTA.TCP.flagsReply: tcp.flagsReply = try tcpFlags(f)
                    default: break
                    }
                }
                result = .tcp(tcp)
            case CTA.ProtoInfo.sctp:
                var sctp = SCTPInfo()
                try a.value.forEachAttribute { f in
                    switch f.type {
                    case CTA.SCTP.state: sctp.state = try u8(f)
                    // Read in host order, as conntrack reads and writes
                    // them, so that a saved vtag loads back as it was.
                    case CTA.SCTP.vtagOriginal: sctp.vtagOriginal = try u32host(f)
                    case CTA.SCTP.vtagReply: sctp.vtagReply = try u32host(f)
                    default: break
                    }
                }
                result = .sctp(sctp)
            case CTA.ProtoInfo.dccp:
                var dccp = DCCPInfo()
                try a.value.forEachAttribute { f in
                    switch f.type {
                    case CTA.DCCP.state: dccp.state = try u8(f)
                    case CTA.DCCP.role: dccp.role = try u8(f)
                    case CTA.DCCP.handshakeSeq: dccp.handshakeSeq = try u64(f)
                    default: break
                    }
                }
                result = .dccp(dccp)
            default: break
            }
        }
        return result
    }

    static func counters(_ view: ByteView) throws -> Counters {
        var packets: UInt64? = nil, bytes: UInt64? = nil
        try view.forEachAttribute { a in
            switch a.type {
            case CTA.Counters.packets: packets = try u64(a)
            case CTA.Counters.bytes: bytes = try u64(a)
            case CTA.Counters.packets32: packets = UInt64(try u32(a))
            case CTA.Counters.bytes32: bytes = UInt64(try u32(a))
            default: break
            }
        }
        guard let packets, let bytes else { throw MalformedMessage("counters without packets and bytes") }
        return Counters(packets: packets, bytes: bytes)
    }

    static func seqAdj(_ view: ByteView) throws -> SeqAdjust {
        var s = SeqAdjust()
        try view.forEachAttribute { a in
            switch a.type {
            case CTA.SeqAdj.correctionPos: s.correctionPos = try u32(a)
            case CTA.SeqAdj.offsetBefore: s.offsetBefore = try u32(a)
            case CTA.SeqAdj.offsetAfter: s.offsetAfter = try u32(a)
            default: break
            }
        }
        return s
    }

    static func labels(_ view: ByteView) throws -> Labels {
        guard view.count <= 16, view.count % 4 == 0 else {
            throw MalformedMessage("labels of \(view.count) bytes")
        }
        // The kernel sends its label bitmap as host-order longs: on a
        // little-endian host bit N is bit N%8 of byte N/8.
        var lo: UInt64 = 0, hi: UInt64 = 0
        for i in 0..<view.count {
            let byte = UInt64(view.u8(at: i)!)
            if i < 8 { lo |= byte << UInt64(8 * i) } else { hi |= byte << UInt64(8 * (i - 8)) }
        }
        return Labels(words: (lo, hi), byteCount: view.count)
    }

    static func nestedString(_ view: ByteView, _ type: UInt16) throws -> String? {
        var s: String? = nil
        try view.forEachAttribute { a in
            if a.type == type { s = a.value.cString }
        }
        return s
    }

    static func tcpFlags(_ a: Attribute) throws -> TCPFlags {
        guard a.value.count == 2 else { throw wrongLength(a, 2) }
        return TCPFlags(flags: a.value.u8(at: 0)!, mask: a.value.u8(at: 1)!)
    }

    static func v6(_ a: Attribute) throws -> IPAddress {
        guard a.value.count == 16 else { throw wrongLength(a, 16) }
        return .v6(a.value.u64be(at: 0)!, a.value.u64be(at: 8)!)
    }

    @inline(__always) static func u8(_ a: Attribute) throws -> UInt8 {
        guard a.value.count == 1, let v = a.value.u8(at: 0) else { throw wrongLength(a, 1) }
        return v
    }
    @inline(__always) static func u16(_ a: Attribute) throws -> UInt16 {
        guard a.value.count == 2, let v = a.value.u16be(at: 0) else { throw wrongLength(a, 2) }
        return v
    }
    @inline(__always) static func u32(_ a: Attribute) throws -> UInt32 {
        guard a.value.count == 4, let v = a.value.u32be(at: 0) else { throw wrongLength(a, 4) }
        return v
    }
    @inline(__always) static func u32host(_ a: Attribute) throws -> UInt32 {
        guard a.value.count == 4, let v = a.value.u32host(at: 0) else { throw wrongLength(a, 4) }
        return v
    }
    @inline(__always) static func u64(_ a: Attribute) throws -> UInt64 {
        guard a.value.count == 8, let v = a.value.u64be(at: 0) else { throw wrongLength(a, 8) }
        return v
    }
    static func wrongLength(_ a: Attribute, _ expected: Int) -> MalformedMessage {
        MalformedMessage("attribute \(a.type) has \(a.value.count) bytes, expected \(expected)")
    }

    /// Decodes an IPCTNL_MSG_CT_GET_STATS_CPU message.
    package static func cpuStats(_ payload: ByteView) throws -> CPUStats {
        guard let cpu = payload.u16be(at: 2), let attrs = payload.slice(nfgenHeader, payload.count - nfgenHeader) else {
            throw MalformedMessage("message shorter than its nfgenmsg header")
        }
        var values: [(attribute: UInt16, value: UInt32)] = []
        try attrs.forEachAttribute { a in values.append((a.type, try u32(a))) }
        values.sort { $0.attribute < $1.attribute }
        return CPUStats(cpu: cpu, values: values)
    }

    /// Decodes an IPCTNL_MSG_CT_GET_STATS message: the number of entries.
    package static func globalEntries(_ payload: ByteView) throws -> UInt32? {
        try globalStats(payload).entries
    }

    /// The same message's entry count and table limit.
    package static func globalStats(_ payload: ByteView) throws -> (entries: UInt32?, limit: UInt32?) {
        guard let attrs = payload.slice(nfgenHeader, payload.count - nfgenHeader) else {
            throw MalformedMessage("message shorter than its nfgenmsg header")
        }
        var entries: UInt32? = nil, limit: UInt32? = nil
        try attrs.forEachAttribute { a in
            if a.type == CTA.StatsGlobal.entries { entries = try u32(a) }
            if a.type == CTA.StatsGlobal.maxEntries { limit = try u32(a) }
        }
        return (entries, limit)
    }
}
