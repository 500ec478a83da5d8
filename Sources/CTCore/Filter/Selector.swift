/// An address under a mask of the same family: `10.0.0.0/8`, or one exact
/// address (a mask of all ones).
public struct AddressMatch: Equatable, Sendable {
    /// The address.
    public var address: IPAddress
    /// The bits of the address to compare, as an address of the same family.
    public var mask: IPAddress

    /// `address` under `mask`.
    public init(address: IPAddress, mask: IPAddress) {
        self.address = address
        self.mask = mask
    }

    /// `address` under a prefix of `prefixLength` bits (all bits by default).
    public init(_ address: IPAddress, prefixLength: Int? = nil) {
        self.address = address
        mask = AddressMatch.mask(for: address, prefix: prefixLength)
    }

    /// The all-ones mask of `address`'s family, or the mask of a prefix length.
    public static func mask(for address: IPAddress, prefix: Int? = nil) -> IPAddress {
        switch address {
        case .v4:
            let bits = min(max(prefix ?? 32, 0), 32)
            return .v4(bits == 0 ? 0 : UInt32.max << UInt32(32 - bits))
        case .v6:
            let bits = min(max(prefix ?? 128, 0), 128)
            let hi: UInt64 = bits == 0 ? 0 : (bits >= 64 ? UInt64.max : UInt64.max << UInt64(64 - bits))
            let lo: UInt64 = bits <= 64 ? 0 : (bits == 128 ? UInt64.max : UInt64.max << UInt64(128 - bits))
            return .v6(hi, lo)
        }
    }

    /// True when the mask selects one exact address.
    public var isExact: Bool { mask == AddressMatch.mask(for: address) }

    /// Whether `other` is of the same family and equal under the mask.
    public func matches(_ other: IPAddress?) -> Bool {
        guard let other else { return false }
        switch (address, mask, other) {
        case let (.v4(a), .v4(m), .v4(o)):
            return a & m == o & m
        case let (.v6(ah, al), .v6(mh, ml), .v6(oh, ol)):
            return ah & mh == oh & mh && al & ml == ol & ml
        default:
            return false
        }
    }
}

/// A NAT condition, or a NAT to set up when creating an entry: an address
/// and a port, each optional.
public struct NATMatch: Equatable, Sendable {
    /// The address translated to. As a condition, the address and the
    /// port must both match where given; with neither, any such NAT does.
    public var address: IPAddress?
    /// The port translated to (for ICMP, the raw 16-bit field: the id, or
    /// type and code).
    public var port: UInt16?
    /// A NAT to `address` and `port`; either may be nil.
    public init(address: IPAddress?, port: UInt16? = nil) {
        self.address = address
        self.port = port
    }
}

/// Which conntrack entries an operation is about: every field is optional,
/// and an entry matches when it matches them all (an empty filter matches
/// every entry).
///
/// The same filter serves dumps, bulk deletes and event streams. Where the
/// kernel can apply a clause exactly (see ``kernelFilteredClauses(on:)``)
/// it is sent along and the kernel drops non-matching entries early; every
/// entry that arrives is still checked against the whole filter here.
public struct FlowFilter: Equatable, Sendable {
    /// The layer 3 family.
    public var family: Family?
    /// The original direction's source address, under a mask.
    public var origSrc: AddressMatch?
    /// The original direction's destination address, under a mask.
    public var origDst: AddressMatch?
    /// The reply direction's source address, under a mask.
    public var replySrc: AddressMatch?
    /// The reply direction's destination address, under a mask.
    public var replyDst: AddressMatch?
    /// The layer 4 protocol number (see ``ipProtocol``).
    package var proto: UInt8?
    /// The original direction's source port (protocols with ports).
    public var origSrcPort: UInt16?
    /// The original direction's destination port.
    public var origDstPort: UInt16?
    /// The reply direction's source port.
    public var replySrcPort: UInt16?
    /// The reply direction's destination port.
    public var replyDstPort: UInt16?
    /// The protocol state: TCP's `enum tcp_conntrack`, SCTP's or DCCP's
    /// state number (see ``TCPInfo/state``).
    public var state: UInt8?
    /// The ICMP or ICMPv6 type of the original direction.
    public var icmpType: UInt8?
    /// The ICMP or ICMPv6 code of the original direction.
    public var icmpCode: UInt8?
    /// The ICMP or ICMPv6 echo id of the original direction.
    public var icmpID: UInt16?
    /// The DCCP role (CTA_PROTOINFO_DCCP_ROLE).
    public var dccpRole: UInt8?
    /// The mark: an entry matches when `(its mark & markMask) == mark`. An
    /// entry without a mark attribute (an event that leaves a zero mark
    /// out) does not match.
    public var mark: UInt32?
    /// The bits of the mark to compare (all by default).
    public var markMask: UInt32 = .max
    /// Status bits: an entry matches when `(its status & statusMask) == status`.
    public var status: Status?
    /// The status bits to compare (none by default: set it with ``status``).
    public var statusMask: Status = []
    /// The timeout left, exactly (seconds).
    public var timeout: UInt32?
    /// The entry id (CTA_ID).
    public var id: UInt32?
    /// The zone (CTA_ZONE; an entry without one is in zone 0).
    public var zone: UInt16?
    /// The zone of the original tuple (CTA_TUPLE_ZONE; 0 when it has none).
    public var origZone: UInt16?
    /// The zone of the reply tuple.
    public var replyZone: UInt16?
    /// Source NAT done on the entry (its status has `srcNatDone` and the
    /// tuples differ); with an address or port, to that address or port.
    public var srcNAT: NATMatch?
    /// Destination NAT done on the entry, likewise.
    public var dstNAT: NATMatch?
    /// Source or destination NAT done on the entry, likewise; when set,
    /// ``srcNAT`` and ``dstNAT`` are not looked at.
    public var anyNAT: NATMatch?
    /// Label bits that must all be set.
    public var labels: [Int] = []

    /// A filter that matches every entry.
    public init() {}

    /// The layer 4 protocol.
    public var ipProtocol: IPProtocol? {
        get { proto.map(IPProtocol.init(rawValue:)) }
        set { proto = newValue?.rawValue }
    }

    /// TCP entries in this state: sets ``ipProtocol`` to TCP and ``state``.
    public var tcpState: TCPState? {
        get { proto == IPProto.tcp ? state.flatMap(TCPState.init(rawValue:)) : nil }
        set {
            state = newValue?.rawValue
            if newValue != nil { proto = IPProto.tcp }
        }
    }
}

/// The engine's name for the filter.
package typealias Selector = FlowFilter

extension FlowFilter {
    /// Whether `flow` matches. The library applies this to every entry,
    /// whatever the kernel filtered already.
    public func matches(_ flow: Flow) -> Bool {
        if let family, flow.family != family { return false }
        let orig = flow.orig, reply = flow.reply
        if let m = origSrc, !m.matches(orig?.src) { return false }
        if let m = origDst, !m.matches(orig?.dst) { return false }
        if let m = replySrc, !m.matches(reply?.src) { return false }
        if let m = replyDst, !m.matches(reply?.dst) { return false }
        if let proto, orig?.proto != proto { return false }
        if let p = origSrcPort, orig?.srcPort != p { return false }
        if let p = origDstPort, orig?.dstPort != p { return false }
        if let p = replySrcPort, reply?.srcPort != p { return false }
        if let p = replyDstPort, reply?.dstPort != p { return false }
        if let t = icmpType, orig?.icmpType != t { return false }
        if let c = icmpCode, orig?.icmpCode != c { return false }
        if let i = icmpID, orig?.icmpID != i { return false }
        if let state {
            switch flow.protoInfo {
            case .tcp(let t)?: if t.state != state { return false }
            case .sctp(let s)?: if s.state != state { return false }
            case .dccp(let d)?: if d.state != state { return false }
            case nil: return false
            }
        }
        if let role = dccpRole {
            guard case .dccp(let d)? = flow.protoInfo, d.role == role else { return false }
        }
        // An entry without a mark attribute has none to match (events leave
        // a zero mark out; dumps always carry it).
        if let mark, flow.mark.map({ $0 & markMask }) != mark { return false }
        if let status, (flow.status ?? []).intersection(statusMask) != status { return false }
        if let timeout, flow.timeout != timeout { return false }
        if let id, flow.id != id { return false }
        if let zone, (flow.zone ?? 0) != zone { return false }
        if let z = origZone, (orig?.zone ?? 0) != z { return false }
        if let z = replyZone, (reply?.zone ?? 0) != z { return false }
        if !labels.isEmpty {
            guard let set = flow.labels, labels.allSatisfy(set.contains) else { return false }
        }
        if srcNAT != nil || dstNAT != nil || anyNAT != nil {
            guard matchesNAT(flow) else { return false }
        }
        return true
    }

    /// The NAT test. Source NAT is done when the status has SRC_NAT_DONE
    /// and the original source differs from the reply destination (SNAT),
    /// or the original source "port" from the reply destination "port"
    /// (SPAT). Ports are compared as raw 16-bit tuple fields, so for ICMP
    /// the id meets the type and code. Destination NAT likewise with
    /// DST_NAT_DONE, orig destination and reply source. A condition with an
    /// address wants that NAT to that address, with a port that NAT to that
    /// port, with both both; without either, any such NAT.
    package func matchesNAT(_ flow: Flow) -> Bool {
        let status = flow.status ?? []
        let orig = flow.orig ?? Tuple(), reply = flow.reply ?? Tuple()
        let proto = orig.proto ?? 0
        let isSNAT = status.contains(.srcNatDone) && orig.src != reply.dst
        let isSPAT = status.contains(.srcNatDone) && Selector.l4src(orig, proto) != Selector.l4dst(reply, proto)
        let isDNAT = status.contains(.dstNatDone) && orig.dst != reply.src
        let isDPAT = status.contains(.dstNatDone) && Selector.l4dst(orig, proto) != Selector.l4src(reply, proto)
        func check(_ m: NATMatch, addressed: Bool, ported: Bool, address: IPAddress?, port: UInt16) -> Bool {
            if m.address == nil, m.port == nil { return addressed || ported }
            if let a = m.address, !(addressed && address == a) { return false }
            if let p = m.port, !(ported && port == p) { return false }
            return true
        }
        func src(_ m: NATMatch) -> Bool {
            check(m, addressed: isSNAT, ported: isSPAT, address: reply.dst, port: Selector.l4dst(reply, proto))
        }
        func dst(_ m: NATMatch) -> Bool {
            check(m, addressed: isDNAT, ported: isDPAT, address: reply.src, port: Selector.l4src(reply, proto))
        }
        if let any = anyNAT { return src(any) || dst(any) }
        if let s = srcNAT, !src(s) { return false }
        if let d = dstNAT, !dst(d) { return false }
        return true
    }

    /// The raw 16-bit source "port" of a tuple (the ICMP id for ICMP).
    package static func l4src(_ t: Tuple, _ proto: UInt8) -> UInt16 {
        switch proto {
        case IPProto.icmp, IPProto.icmpv6: return t.icmpID ?? 0
        default: return t.srcPort ?? 0
        }
    }

    /// The raw 16-bit destination "port" (type and code bytes for ICMP).
    package static func l4dst(_ t: Tuple, _ proto: UInt8) -> UInt16 {
        switch proto {
        case IPProto.icmp, IPProto.icmpv6: return UInt16(t.icmpType ?? 0) << 8 | UInt16(t.icmpCode ?? 0)
        default: return t.dstPort ?? 0
        }
    }
}
