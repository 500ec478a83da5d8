/// An address selector: an address and a mask of the same family
/// (`-s 10.0.0.0/8`, `-s 10.1.2.3 --mask-src 255.0.0.0`, or all ones).
public struct AddressMatch: Equatable, Sendable {
    public var address: IPAddress
    public var mask: IPAddress

    public init(address: IPAddress, mask: IPAddress) {
        self.address = address
        self.mask = mask
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

/// A NAT selector (`-n`, `-g`, `-j`), with or without an address.
public struct NATMatch: Equatable, Sendable {
    public var address: IPAddress?
    public init(address: IPAddress?) { self.address = address }
}

/// Everything that selects entries for -L, -D, -G (and later -U, -E).
/// Every field is optional; an entry is selected when it matches them all.
public struct Selector: Equatable, Sendable {
    public var family: Family?
    public var origSrc: AddressMatch?        // -s
    public var origDst: AddressMatch?        // -d
    public var replySrc: AddressMatch?       // -r
    public var replyDst: AddressMatch?       // -q
    public var proto: UInt8?                 // -p
    public var origSrcPort: UInt16?          // --sport / --orig-port-src
    public var origDstPort: UInt16?          // --dport / --orig-port-dst
    public var replySrcPort: UInt16?         // --reply-port-src
    public var replyDstPort: UInt16?         // --reply-port-dst
    public var state: UInt8?                 // --state (tcp, sctp, dccp)
    public var icmpType: UInt8?              // --icmp-type / --icmpv6-type
    public var icmpCode: UInt8?              // --icmp-code / --icmpv6-code
    public var icmpID: UInt16?               // --icmp-id / --icmpv6-id
    public var greSrcKey: UInt16?            // --srckey
    public var greDstKey: UInt16?            // --dstkey
    public var origVtag: UInt32?             // --orig-vtag
    public var replyVtag: UInt32?            // --reply-vtag
    public var dccpRole: UInt8?              // --role
    public var mark: UInt32?                 // -m MARK
    public var markMask: UInt32 = .max       // -m MARK/MASK
    public var status: Status?               // -u (all flags must be set)
    public var zone: UInt16?                 // -w
    public var origZone: UInt16?             // --orig-zone
    public var replyZone: UInt16?            // --reply-zone
    public var secmark: UInt32?              // -c
    public var srcNAT: NATMatch?             // -n
    public var dstNAT: NATMatch?             // -g
    public var anyNAT: NATMatch?             // -j
    /// -l: label bits that must all be set.
    public var labels: [Int] = []

    public init() {}

    /// True when nothing is selected by content: every entry matches.
    public var isEmpty: Bool { self == Selector(family: family) }

    init(family: Family?) { self.family = family }
}

extension Selector {
    /// Whether `flow` is selected. This is conntrack's selection, applied in
    /// userspace to every entry whatever the kernel filtered already.
    public func matches(_ flow: Flow) -> Bool {
        if let family, flow.family != family.rawValue { return false }
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
        if let k = greSrcKey, orig?.srcPort != k { return false }
        if let k = greDstKey, orig?.dstPort != k { return false }
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
        if origVtag != nil || replyVtag != nil {
            guard case .sctp(let s)? = flow.protoInfo else { return false }
            if let v = origVtag, s.vtagOriginal != v { return false }
            if let v = replyVtag, s.vtagReply != v { return false }
        }
        if let role = dccpRole {
            guard case .dccp(let d)? = flow.protoInfo, d.role == role else { return false }
        }
        if let mark, (flow.mark ?? 0) & markMask != mark { return false }
        if let status, !(flow.status ?? []).contains(status) { return false }
        if let zone, (flow.zone ?? 0) != zone { return false }
        if let z = origZone, (orig?.zone ?? 0) != z { return false }
        if let z = replyZone, (reply?.zone ?? 0) != z { return false }
        if let secmark, (flow.secmark ?? 0) != secmark { return false }
        if !labels.isEmpty {
            guard let set = flow.labels, labels.allSatisfy(set.contains) else { return false }
        }
        if srcNAT != nil || dstNAT != nil || anyNAT != nil {
            guard matchesNAT(flow) else { return false }
        }
        return true
    }

    /// conntrack's NAT test: source NAT is done when the status says so and
    /// the original source differs from the reply destination (or the
    /// ports differ); an address given must equal the reply destination
    /// (source NAT) or reply source (destination NAT).
    func matchesNAT(_ flow: Flow) -> Bool {
        let status = flow.status ?? []
        let orig = flow.orig, reply = flow.reply
        let isSNAT = status.contains(.srcNatDone) && orig?.src != reply?.dst
        let isSPAT = status.contains(.srcNatDone) && orig?.srcPort != reply?.dstPort
        let isDNAT = status.contains(.dstNatDone) && orig?.dst != reply?.src
        let isDPAT = status.contains(.dstNatDone) && orig?.dstPort != reply?.srcPort
        func src(_ m: NATMatch) -> Bool {
            if let a = m.address { return isSNAT && reply?.dst == a }
            return isSNAT || isSPAT
        }
        func dst(_ m: NATMatch) -> Bool {
            if let a = m.address { return isDNAT && reply?.src == a }
            return isDNAT || isDPAT
        }
        if let any = anyNAT { return src(any) || dst(any) }
        if let s = srcNAT, !src(s) { return false }
        if let d = dstNAT, !dst(d) { return false }
        return true
    }
}
