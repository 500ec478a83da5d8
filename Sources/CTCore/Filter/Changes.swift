/// What a create (-I, -A) or an update (-U) asks the kernel to set.
/// `entry` carries the tuples and the values to set; the label change is
/// expressed as bits to set and a mask of the bits it touches.
package struct EntryChange: Equatable, Sendable {
    package var entry: Flow
    /// CTA_MARK_MASK: the bits of the mark the change sets; the kernel
    /// makes the new mark `(old & ~mask) ^ mark`, atomically. nil sends no
    /// mask: the mark is replaced.
    package var markMask: UInt32?
    /// CTA_LABELS_MASK: which label bits `entry.labels` sets or clears.
    package var labelsMask: Labels?
    /// CTA_NAT_SRC / CTA_NAT_DST: a translation the kernel sets up on create.
    package var sourceNAT: NATMatch?
    package var destinationNAT: NATMatch?

    package init(entry: Flow, markMask: UInt32? = nil, labelsMask: Labels? = nil) {
        self.entry = entry
        self.markMask = markMask
        self.labelsMask = labelsMask
    }
}

/// CTA_NAT_* and CTA_PROTONAT_* attribute numbers.
enum NATAttr {
    static let v4MinIP: UInt16 = 1      // CTA_NAT_V4_MINIP
    static let proto: UInt16 = 3        // CTA_NAT_PROTO
    static let v6MinIP: UInt16 = 4      // CTA_NAT_V6_MINIP
    static let portMin: UInt16 = 1      // CTA_PROTONAT_PORT_MIN
    static let portMax: UInt16 = 2      // CTA_PROTONAT_PORT_MAX
}

extension Encode {
    /// IPCTNL_MSG_CT_NEW attributes for `change`: tuples (original first),
    /// zone, status, timeout, mark, protocol state, labels, secmark.
    static func changeAttributes(_ change: EntryChange) -> [RequestAttribute] {
        let flow = change.entry
        var attrs: [RequestAttribute] = []
        attrs.reserveCapacity(10)
        if let t = flow.orig { attrs.append(tuple(CTA.tupleOrig, t)) }
        if let t = flow.reply { attrs.append(tuple(CTA.tupleReply, t)) }
        if let zone = flow.zone { attrs.append(.u16(CTA.zone, zone)) }
        if let status = flow.status { attrs.append(.u32(CTA.status, status.rawValue)) }
        if let timeout = flow.timeout { attrs.append(.u32(CTA.timeout, timeout)) }
        if let mark = flow.mark {
            attrs.append(.u32(CTA.mark, mark))
            if let mask = change.markMask { attrs.append(.u32(CTA.markMask, mask)) }
        }
        if let info = flow.protoInfo, let encoded = protoInfo(info) { attrs.append(encoded) }
        if let nat = change.sourceNAT, let encoded = natAttribute(CTA.natSrc, nat) { attrs.append(encoded) }
        if let nat = change.destinationNAT, let encoded = natAttribute(CTA.natDst, nat) { attrs.append(encoded) }
        if let labels = flow.labels {
            attrs.append(.bytes(CTA.labels, labelBytes(labels)))
            if let mask = change.labelsMask { attrs.append(.bytes(CTA.labelsMask, labelBytes(mask))) }
        }
        if let secmark = flow.secmark { attrs.append(.u32(CTA.secmark, secmark)) }
        return attrs
    }

    /// A one-address (and optionally one-port) NAT range; nil without an address.
    static func natAttribute(_ type: UInt16, _ nat: NATMatch) -> RequestAttribute? {
        guard let ip = nat.address else { return nil }
        var members = [address(ip, v4: NATAttr.v4MinIP, v6: NATAttr.v6MinIP)]
        if let port = nat.port {
            members.append(.nested(NATAttr.proto, [.u16(NATAttr.portMin, port), .u16(NATAttr.portMax, port)]))
        }
        return .nested(type, members)
    }

    /// CTA_PROTOINFO with the fields a create or update may set, as one
    /// attribute; nil when there are none.
    static func protoInfo(_ info: ProtoInfo) -> RequestAttribute? {
        var members = AttributeBytes(capacity: 48)
        let kind: UInt16
        switch info {
        case .tcp: kind = CTA.ProtoInfo.tcp
        case .sctp: kind = CTA.ProtoInfo.sctp
        case .dccp: kind = CTA.ProtoInfo.dccp
        }
        members.nest(kind) { inner in
            switch info {
            case .tcp(let tcp):
                if let v = tcp.state { inner.put(.u8(CTA.TCP.state, v)) }
                if let v = tcp.windowScaleOriginal { inner.put(.u8(CTA.TCP.wscaleOriginal, v)) }
                if let v = tcp.windowScaleReply { inner.put(.u8(CTA.TCP.wscaleReply, v)) }
                if let f = tcp.flagsOriginal { inner.put(.u16(CTA.TCP.flagsOriginal, UInt16(f.flags) << 8 | UInt16(f.mask))) }
                if let f = tcp.flagsReply { inner.put(.u16(CTA.TCP.flagsReply, UInt16(f.flags) << 8 | UInt16(f.mask))) }
            case .sctp(let sctp):
                if let v = sctp.state { inner.put(.u8(CTA.SCTP.state, v)) }
                // Host order, as conntrack sends them (see Decoder).
                if let v = sctp.vtagOriginal { inner.put(.u32Host(CTA.SCTP.vtagOriginal, v)) }
                if let v = sctp.vtagReply { inner.put(.u32Host(CTA.SCTP.vtagReply, v)) }
            case .dccp(let dccp):
                if let v = dccp.state { inner.put(.u8(CTA.DCCP.state, v)) }
                if let v = dccp.role { inner.put(.u8(CTA.DCCP.role, v)) }
                if let v = dccp.handshakeSeq { inner.put(.u64(CTA.DCCP.handshakeSeq, v)) }
            }
        }
        // Only the nest's header: nothing to set.
        guard members.byteCount > 4 else { return nil }
        return members.nest(CTA.protoinfo)
    }

    /// The kernel's label bitmap layout (host-order longs; on a
    /// little-endian host bit N is bit N%8 of byte N/8), `byteCount` long.
    static func labelBytes(_ labels: Labels) -> [UInt8] {
        (0..<labels.byteCount).map { i in
            let word = i < 8 ? labels.words.0 : labels.words.1
            return UInt8(truncatingIfNeeded: word >> UInt64(8 * (i % 8)))
        }
    }
}
