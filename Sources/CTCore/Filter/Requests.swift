import Glibc

/// NLA_F_NESTED, which libmnl sets on the type of every nest it starts.
let nestedFlag: UInt16 = 0x8000

/// Where attributes are written: a list of RequestAttribute values
/// (AttributeList), or bytes laid out as libmnl lays them out
/// (AttributeBytes), which carry a whole nest as one attribute.
protocol AttributeSink {
    /// One attribute (a nest goes in whole).
    mutating func put(_ attribute: RequestAttribute)
    /// A nest of the attributes `body` writes.
    mutating func nest(_ type: UInt16, _ body: (inout Self) -> Void)
    /// An address as the attribute `v4` or `v6`, by its family.
    mutating func address(_ address: IPAddress, v4: UInt16, v6: UInt16)
}

extension AttributeSink {
    mutating func address(_ address: IPAddress, v4: UInt16, v6: UInt16) {
        put(Encode.address(address, v4: v4, v6: v6))
    }
}

/// Attributes as RequestAttribute values.
struct AttributeList: AttributeSink {
    var items: [RequestAttribute] = []

    mutating func put(_ attribute: RequestAttribute) { items.append(attribute) }

    mutating func nest(_ type: UInt16, _ body: (inout AttributeList) -> Void) {
        var inner = AttributeList()
        body(&inner)
        items.append(.nested(type, inner.items))
    }
}

/// Attributes written as libmnl writes them into a message: a header of
/// length and type (host order), the value, zeros up to a multiple of 4;
/// a nest's type with NLA_F_NESTED and its length covering its members.
/// One array for many attributes, where a tree of RequestAttribute values
/// costs an array per nest (-R creates a hundred thousand entries).
struct AttributeBytes: AttributeSink {
    /// The attributes in the first `count` bytes; zeros after them.
    private var bytes: [UInt8]
    private var count = 0

    init(capacity: Int) { bytes = [UInt8](repeating: 0, count: max(capacity, 16)) }

    /// Room for `n` more bytes.
    private mutating func reserve(_ n: Int) {
        if count + n > bytes.count { bytes.append(contentsOf: repeatElement(0, count: max(n, bytes.count))) }
    }

    /// A header, then `length` bytes that `write` stores at the pointer it
    /// gets, then zeros to a multiple of 4.
    private mutating func value(_ type: UInt16, _ length: Int, _ write: (UnsafeMutableRawPointer) -> Void) {
        let total = (4 + length + 3) & ~3
        reserve(total)
        let at = count
        bytes.withUnsafeMutableBytes { raw in
            let p = raw.baseAddress! + at
            p.storeBytes(of: UInt16(truncatingIfNeeded: 4 + length), as: UInt16.self)
            p.storeBytes(of: type, toByteOffset: 2, as: UInt16.self)
            write(p + 4)
            (p + 4 + length).initializeMemory(as: UInt8.self, repeating: 0, count: total - 4 - length)
        }
        count += total
    }

    mutating func put(_ attribute: RequestAttribute) {
        switch attribute {
        case let .u8(type, v):
            value(type, 1) { $0.storeBytes(of: v, as: UInt8.self) }
        case let .u16(type, v):
            value(type, 2) { $0.storeBytes(of: v.bigEndian, as: UInt16.self) }
        case let .u32(type, v):
            value(type, 4) { $0.storeBytes(of: v.bigEndian, as: UInt32.self) }
        case let .u32Host(type, v):
            value(type, 4) { $0.storeBytes(of: v, as: UInt32.self) }
        case let .u64(type, v):
            value(type, 8) { $0.storeBytes(of: v.bigEndian, as: UInt64.self) }
        case let .bytes(type, v):
            value(type, v.count) { p in v.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
        case let .string(type, v):
            // As mnl_attr_put_strz: up to the first NUL, and a NUL.
            v.withCString { c in
                let n = strlen(c)
                value(type, n + 1) { $0.copyMemory(from: c, byteCount: n + 1) }
            }
        case let .nested(type, members):
            nest(type) { for m in members { $0.put(m) } }
        }
    }

    mutating func nest(_ type: UInt16, _ body: (inout AttributeBytes) -> Void) {
        let start = count
        value(type | nestedFlag, 0) { _ in }
        body(&self)
        let length = UInt16(truncatingIfNeeded: count - start)
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: length, toByteOffset: start, as: UInt16.self) }
    }

    mutating func address(_ address: IPAddress, v4: UInt16, v6: UInt16) {
        switch address {
        case .v4(let a):
            value(v4, 4) { $0.storeBytes(of: a.bigEndian, as: UInt32.self) }
        case .v6(let hi, let lo):
            value(v6, 16) { p in
                p.storeBytes(of: hi.bigEndian, as: UInt64.self)
                p.storeBytes(of: lo.bigEndian, toByteOffset: 8, as: UInt64.self)
            }
        }
    }

    /// How many bytes have been written.
    var byteCount: Int { count }

    /// The bytes as one attribute: a nest of type `type` holding them.
    mutating func nest(_ type: UInt16) -> RequestAttribute {
        bytes.removeLast(bytes.count - count)
        return .bytes(type | nestedFlag, bytes)
    }
}

/// Turns model values into ctnetlink request attributes.
enum Encode {
    /// An address as the attribute `v4` or `v6`, by its family.
    static func address(_ address: IPAddress, v4: UInt16, v6: UInt16) -> RequestAttribute {
        switch address {
        case .v4(let a):
            return .u32(v4, a)
        case .v6(let hi, let lo):
            var bytes = [UInt8](repeating: 0, count: 16)
            for i in 0..<8 {
                bytes[i] = UInt8(truncatingIfNeeded: hi >> UInt64(56 - 8 * i))
                bytes[8 + i] = UInt8(truncatingIfNeeded: lo >> UInt64(56 - 8 * i))
            }
            return .bytes(v6, bytes)
        }
    }

    /// CTA_TUPLE_IP's members: the addresses `t` has.
    static func addresses(_ t: Tuple) -> [RequestAttribute] {
        var list = AttributeList()
        writeAddresses(t, into: &list)
        return list.items
    }

    static func writeAddresses<S: AttributeSink>(_ t: Tuple, into sink: inout S) {
        if let src = t.src { sink.address(src, v4: CTA.IP.v4Src, v6: CTA.IP.v6Src) }
        if let dst = t.dst { sink.address(dst, v4: CTA.IP.v4Dst, v6: CTA.IP.v6Dst) }
    }

    /// CTA_TUPLE_PROTO: the protocol number and the fields it has.
    static func protocolFields(_ t: Tuple) -> RequestAttribute {
        var list = AttributeList()
        writeProtocolFields(t, into: &list)
        return list.items[0]
    }

    static func writeProtocolFields<S: AttributeSink>(_ t: Tuple, into sink: inout S) {
        sink.nest(CTA.Tuple.proto) { l4 in
            let proto = t.proto ?? 0
            l4.put(.u8(CTA.Proto.num, proto))
            switch proto {
            case IPProto.icmp:
                if let v = t.icmpID { l4.put(.u16(CTA.Proto.icmpID, v)) }
                if let v = t.icmpType { l4.put(.u8(CTA.Proto.icmpType, v)) }
                if let v = t.icmpCode { l4.put(.u8(CTA.Proto.icmpCode, v)) }
            case IPProto.icmpv6:
                if let v = t.icmpID { l4.put(.u16(CTA.Proto.icmpv6ID, v)) }
                if let v = t.icmpType { l4.put(.u8(CTA.Proto.icmpv6Type, v)) }
                if let v = t.icmpCode { l4.put(.u8(CTA.Proto.icmpv6Code, v)) }
            default:
                if let v = t.srcPort { l4.put(.u16(CTA.Proto.srcPort, v)) }
                if let v = t.dstPort { l4.put(.u16(CTA.Proto.dstPort, v)) }
            }
        }
    }

    /// A whole tuple (for creating, deleting or getting one entry by it),
    /// as one attribute.
    static func tuple(_ type: UInt16, _ t: Tuple) -> RequestAttribute {
        var members = AttributeBytes(capacity: 96)
        members.nest(CTA.Tuple.ip) { writeAddresses(t, into: &$0) }
        writeProtocolFields(t, into: &members)
        if let zone = t.zone { members.put(.u16(CTA.Tuple.zone, zone)) }
        return members.nest(type)
    }

    /// What names one entry: its original tuple and zone.
    static func entryKey(orig: Tuple, zone: UInt16?) -> [RequestAttribute] {
        var key = [tuple(CTA.tupleOrig, orig)]
        if let zone { key.append(.u16(CTA.zone, zone)) }
        return key
    }
}

/// CTA_FILTER_ORIG_FLAGS / CTA_FILTER_REPLY_FLAGS bits (CTA_FILTER_F_*).
enum FilterFlag {
    static let ipSrc: UInt32 = 1 << 0          // CTA_FILTER_F_CTA_IP_SRC
    static let ipDst: UInt32 = 1 << 1          // CTA_FILTER_F_CTA_IP_DST
    static let protoNum: UInt32 = 1 << 3       // CTA_FILTER_F_CTA_PROTO_NUM
    static let srcPort: UInt32 = 1 << 4        // CTA_FILTER_F_CTA_PROTO_SRC_PORT
    static let dstPort: UInt32 = 1 << 5        // CTA_FILTER_F_CTA_PROTO_DST_PORT
    static let icmpType: UInt32 = 1 << 6       // CTA_FILTER_F_CTA_PROTO_ICMP_TYPE
    static let icmpCode: UInt32 = 1 << 7       // CTA_FILTER_F_CTA_PROTO_ICMP_CODE
    static let icmpID: UInt32 = 1 << 8         // CTA_FILTER_F_CTA_PROTO_ICMP_ID
    static let icmpv6Type: UInt32 = 1 << 9     // CTA_FILTER_F_CTA_PROTO_ICMPV6_TYPE
    static let icmpv6Code: UInt32 = 1 << 10    // CTA_FILTER_F_CTA_PROTO_ICMPV6_CODE
    static let icmpv6ID: UInt32 = 1 << 11      // CTA_FILTER_F_CTA_PROTO_ICMPV6_ID
    static let filterOrigFlags: UInt16 = 1     // CTA_FILTER_ORIG_FLAGS
    static let filterReplyFlags: UInt16 = 2    // CTA_FILTER_REPLY_FLAGS
}

extension Selector {
    /// The dump request attributes that let the kernel drop entries this
    /// selector would drop anyway. Everything sent is exact (never narrower
    /// than the selector); the selector is still applied to every entry.
    package func dumpAttributes(_ support: KernelFilterSupport) -> [RequestAttribute] {
        var attrs: [RequestAttribute] = []
        if support.mark, let mark {
            attrs.append(.u32(CTA.mark, mark))
            attrs.append(.u32(CTA.markMask, markMask))
        }
        if support.status, let status, statusMask.isSuperset(of: status) {
            // Sent even when empty (-u UNSET): the kernel refuses a zero mask
            // with EINVAL, as it does for conntrack.
            attrs.append(.u32(CTA.status, status.rawValue))
            attrs.append(.u32(CTA.statusMask, statusMask.rawValue))
        }
        // Linux 6.8 drops entries of other zones when a dump carries
        // CTA_ZONE; it ignores zone 0 (the default zone), which the check
        // here still selects.
        if support.zoneFilter, let zone, zone != 0 {
            attrs.append(.u16(CTA.zone, zone))
        }
        // IPv4 only: this kernel's tuple filter drops IPv6 entries whose
        // address EQUALS the filter's (and refuses some IPv6 requests), so
        // IPv6 is never handed to it.
        if support.tupleFilter, family == .ipv4 {
            var origFlags: UInt32 = 0, replyFlags: UInt32 = 0
            var orig = Tuple(), reply = Tuple()
            if let m = origSrc, m.isExact { orig.src = m.address; origFlags |= FilterFlag.ipSrc }
            if let m = origDst, m.isExact { orig.dst = m.address; origFlags |= FilterFlag.ipDst }
            if let m = replySrc, m.isExact { reply.src = m.address; replyFlags |= FilterFlag.ipSrc }
            if let m = replyDst, m.isExact { reply.dst = m.address; replyFlags |= FilterFlag.ipDst }
            if let proto {
                orig.proto = proto
                origFlags |= FilterFlag.protoNum
                // The kernel compares ports of tcp and udp only, ICMP fields
                // of icmp and icmpv6 only.
                switch proto {
                case IPProto.tcp, IPProto.udp:
                    if let p = origSrcPort { orig.srcPort = p; origFlags |= FilterFlag.srcPort }
                    if let p = origDstPort { orig.dstPort = p; origFlags |= FilterFlag.dstPort }
                    if replySrcPort != nil || replyDstPort != nil {
                        reply.proto = proto
                        replyFlags |= FilterFlag.protoNum
                        if let p = replySrcPort { reply.srcPort = p; replyFlags |= FilterFlag.srcPort }
                        if let p = replyDstPort { reply.dstPort = p; replyFlags |= FilterFlag.dstPort }
                    }
                case IPProto.icmp:
                    // The kernel refuses (EINVAL) a type it has no reply
                    // type for; only echo request and reply go to it.
                    if let v = icmpType, v == 0 || v == 8 { orig.icmpType = v; origFlags |= FilterFlag.icmpType }
                    if let v = icmpCode { orig.icmpCode = v; origFlags |= FilterFlag.icmpCode }
                    if let v = icmpID { orig.icmpID = v; origFlags |= FilterFlag.icmpID }
                default:
                    break
                }
            }
            if replyFlags != 0, reply.proto == nil, origFlags & FilterFlag.protoNum != 0 {
                // Reply addresses alone: the kernel wants a protocol number
                // in every tuple it parses; give the same one.
                reply.proto = orig.proto
                replyFlags |= FilterFlag.protoNum
            }
            if origFlags != 0 || replyFlags != 0 {
                if origFlags != 0 { attrs.append(filterTuple(CTA.tupleOrig, orig)) }
                if replyFlags != 0 { attrs.append(filterTuple(CTA.tupleReply, reply)) }
                attrs.append(.nested(CTA.filter, [
                    .u32Host(FilterFlag.filterOrigFlags, origFlags),
                    .u32Host(FilterFlag.filterReplyFlags, replyFlags),
                ]))
            }
        }
        return attrs
    }

    /// True when the selector has a field the kernel's tuple filter
    /// (CTA_FILTER) can evaluate exactly.
    package var hasTupleFilter: Bool {
        var probe = self
        probe.family = .ipv4
        return probe.dumpAttributes(KernelFilterSupport(mark: false, status: false, tupleFilter: true))
            .contains { if case .nested(CTA.filter, _) = $0 { return true } else { return false } }
    }

    private func filterTuple(_ type: UInt16, _ t: Tuple) -> RequestAttribute {
        var members: [RequestAttribute] = []
        let ip = Encode.addresses(t)
        if !ip.isEmpty { members.append(.nested(CTA.Tuple.ip, ip)) }
        if t.proto != nil { members.append(Encode.protocolFields(t)) }
        return .nested(type, members)
    }
}

extension FlowFilter {
    /// A part of a filter that the kernel can apply to a dump; each case is
    /// the property of ``FlowFilter`` of the same name.
    public enum Clause: String, Sendable, Hashable, CaseIterable {
        /// ``FlowFilter/family``.
        case family
        /// ``FlowFilter/mark`` under ``FlowFilter/markMask``.
        case mark
        /// ``FlowFilter/status`` under ``FlowFilter/statusMask``.
        case status
        /// ``FlowFilter/zone``.
        case zone
        /// ``FlowFilter/origSrc``.
        case origSrc
        /// ``FlowFilter/origDst``.
        case origDst
        /// ``FlowFilter/replySrc``.
        case replySrc
        /// ``FlowFilter/replyDst``.
        case replyDst
        /// ``FlowFilter/ipProtocol``.
        case ipProtocol
        /// ``FlowFilter/origSrcPort``.
        case origSrcPort
        /// ``FlowFilter/origDstPort``.
        case origDstPort
        /// ``FlowFilter/replySrcPort``.
        case replySrcPort
        /// ``FlowFilter/replyDstPort``.
        case replyDstPort
        /// ``FlowFilter/icmpType``.
        case icmpType
        /// ``FlowFilter/icmpCode``.
        case icmpCode
        /// ``FlowFilter/icmpID``.
        case icmpID
    }

    /// The clauses of this filter that a kernel with `capabilities` applies
    /// itself, so that entries failing them never reach userspace. The rest
    /// is checked here only; a dump is never narrower than the filter. See
    /// <doc:KernelFiltering>.
    ///
    /// For a filter without a family, the tuple clauses are applied to the
    /// IPv4 half of the dump (the kernel's tuple filter is used for IPv4
    /// only).
    public func kernelFilteredClauses(on capabilities: KernelCapabilities) -> Set<Clause> {
        var clauses: Set<Clause> = []
        var filter = self
        if capabilities.family, family != nil { clauses.insert(.family) }
        // Without a family, a dump with a tuple filter goes out once per
        // family, each with the filter.
        if filter.family == nil, capabilities.family, capabilities.tupleFilter { filter.family = .ipv4 }
        for attribute in filter.dumpAttributes(capabilities) {
            switch attribute {
            case .u32(CTA.mark, _): clauses.insert(.mark)
            case .u32(CTA.status, _): clauses.insert(.status)
            case .u16(CTA.zone, _): clauses.insert(.zone)
            case .nested(CTA.filter, let flags):
                for case let .u32Host(kind, bits) in flags {
                    let reply = kind == FilterFlag.filterReplyFlags
                    if bits & FilterFlag.ipSrc != 0 { clauses.insert(reply ? .replySrc : .origSrc) }
                    if bits & FilterFlag.ipDst != 0 { clauses.insert(reply ? .replyDst : .origDst) }
                    if bits & FilterFlag.protoNum != 0 { clauses.insert(.ipProtocol) }
                    if bits & FilterFlag.srcPort != 0 { clauses.insert(reply ? .replySrcPort : .origSrcPort) }
                    if bits & FilterFlag.dstPort != 0 { clauses.insert(reply ? .replyDstPort : .origDstPort) }
                    if bits & FilterFlag.icmpType != 0 { clauses.insert(.icmpType) }
                    if bits & FilterFlag.icmpCode != 0 { clauses.insert(.icmpCode) }
                    if bits & FilterFlag.icmpID != 0 { clauses.insert(.icmpID) }
                }
            default:
                break
            }
        }
        return clauses
    }
}
