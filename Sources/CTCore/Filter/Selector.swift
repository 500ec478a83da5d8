/// An address selector: an address and a mask of the same family
/// (`-s 10.0.0.0/8`, `-s 10.1.2.3 --mask-src 255.0.0.0`, or all ones).
package struct AddressMatch: Equatable, Sendable {
    package var address: IPAddress
    package var mask: IPAddress

    package init(address: IPAddress, mask: IPAddress) {
        self.address = address
        self.mask = mask
    }

    /// The all-ones mask of `address`'s family, or the mask of a prefix length.
    package static func mask(for address: IPAddress, prefix: Int? = nil) -> IPAddress {
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
    package var isExact: Bool { mask == AddressMatch.mask(for: address) }

    package func matches(_ other: IPAddress?) -> Bool {
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

/// A NAT selector (`-n`, `-g`, `-j`), with or without an address and port.
package struct NATMatch: Equatable, Sendable {
    /// Compared for IPv4 only: conntrack 1.4.7 checks just the family of
    /// an IPv6 address.
    package var address: IPAddress?
    package var port: UInt16?
    package init(address: IPAddress?, port: UInt16? = nil) {
        self.address = address
        self.port = port
    }
}

/// Everything that selects entries for -L, -D, -G (and later -U, -E).
/// Every field is optional; an entry is selected when it matches them all.
package struct Selector: Equatable, Sendable {
    package var family: Family?
    package var origSrc: AddressMatch?        // -s
    package var origDst: AddressMatch?        // -d
    package var replySrc: AddressMatch?       // -r
    package var replyDst: AddressMatch?       // -q
    package var proto: UInt8?                 // -p
    package var origSrcPort: UInt16?          // --sport / --orig-port-src
    package var origDstPort: UInt16?          // --dport / --orig-port-dst
    package var replySrcPort: UInt16?         // --reply-port-src
    package var replyDstPort: UInt16?         // --reply-port-dst
    package var state: UInt8?                 // --state (tcp, sctp, dccp)
    package var icmpType: UInt8?              // --icmp-type / --icmpv6-type
    package var icmpCode: UInt8?              // --icmp-code / --icmpv6-code
    package var icmpID: UInt16?               // --icmp-id / --icmpv6-id
    /// --srckey / --dstkey: used by -G to name an entry; conntrack 1.4.7
    /// accepts them for -L and -D but selects nothing by them.
    package var greSrcKey: UInt16?
    package var greDstKey: UInt16?
    /// --orig-vtag / --reply-vtag: values for -I and -U; conntrack 1.4.7's
    /// -G accepts them without selecting by them.
    package var origVtag: UInt32?
    package var replyVtag: UInt32?
    package var dccpRole: UInt8?              // --role
    package var mark: UInt32?                 // -m MARK
    package var markMask: UInt32 = .max       // -m MARK/MASK
    /// For -L: the last -m value as given, when a later -u replaced `mark`
    /// (a conntrack 1.4.7 quirk). conntrack's kernel filter and its own
    /// check use one each, so an entry must match both; ctl checks both
    /// here and sends the kernel `mark`.
    package var listMark: UInt32?
    /// -u: an entry matches when (status & statusMask) == status. conntrack
    /// 1.4.7 lists with the bits of all -u options as the value and those
    /// of the first one as the mask; -D uses the value as the mask.
    package var status: Status?
    package var statusMask: Status = []
    /// -t with -D: the timeout must be exactly this.
    package var timeout: UInt32?
    /// -i with -D and -G: the entry id.
    package var id: UInt32?
    package var zone: UInt16?                 // -w
    package var origZone: UInt16?             // --orig-zone
    package var replyZone: UInt16?            // --reply-zone
    /// -c: conntrack 1.4.7 accepts it with -L and selects nothing by it.
    package var secmark: UInt32?
    package var srcNAT: NATMatch?             // -n
    package var dstNAT: NATMatch?             // -g
    package var anyNAT: NATMatch?             // -j
    /// -l: label bits that must all be set.
    package var labels: [Int] = []

    package init() {}
}

extension Selector {
    /// Whether `flow` is selected. This is conntrack's selection, applied in
    /// userspace to every entry whatever the kernel filtered already.
    package func matches(_ flow: Flow) -> Bool {
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
        if let listMark, flow.mark.map({ $0 & markMask }) != listMark { return false }
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

    /// conntrack's NAT test. Source NAT is done when the status has
    /// SRC_NAT_DONE and the original source differs from the reply
    /// destination (SNAT), or the original source "port" from the reply
    /// destination "port" (SPAT). Ports are compared as raw 16-bit tuple
    /// fields, so for ICMP the id meets the type and code. Destination NAT
    /// likewise with DST_NAT_DONE, orig destination and reply source.
    func matchesNAT(_ flow: Flow) -> Bool {
        let status = flow.status ?? []
        let orig = flow.orig ?? Tuple(), reply = flow.reply ?? Tuple()
        let proto = orig.proto ?? 0
        let isSNAT = status.contains(.srcNatDone) && orig.src != reply.dst
        let isSPAT = status.contains(.srcNatDone) && Selector.l4src(orig, proto) != Selector.l4dst(reply, proto)
        let isDNAT = status.contains(.dstNatDone) && orig.dst != reply.src
        let isDPAT = status.contains(.dstNatDone) && Selector.l4dst(orig, proto) != Selector.l4src(reply, proto)
        func check(_ m: NATMatch, addressed: Bool, ported: Bool, address: IPAddress?, port: UInt16) -> Bool {
            var matched = false
            var checked = false
            if let a = m.address, case .v4 = a {
                checked = true
                matched = addressed && address == a
            }
            if let p = m.port {
                checked = true
                matched = ported && port == p
            }
            if !checked { matched = addressed || ported }
            return matched
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
    static func l4src(_ t: Tuple, _ proto: UInt8) -> UInt16 {
        switch proto {
        case IPProto.icmp, IPProto.icmpv6: return t.icmpID ?? 0
        default: return t.srcPort ?? 0
        }
    }

    /// The raw 16-bit destination "port" (type and code bytes for ICMP).
    static func l4dst(_ t: Tuple, _ proto: UInt8) -> UInt16 {
        switch proto {
        case IPProto.icmp, IPProto.icmpv6: return UInt16(t.icmpType ?? 0) << 8 | UInt16(t.icmpCode ?? 0)
        default: return t.dstPort ?? 0
        }
    }
}
