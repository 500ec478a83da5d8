import CTCore
import Glibc

// -I, -A and -U: what the command line asks to set, turned into changes.

/// Label names to bits; an unknown name is a parameter error.
func labelBits(_ names: [String], _ map: LabelMap) throws(Failure) -> [Int] {
    var bits: [Int] = []
    for name in names {
        guard let bit = map.bit(named: name) else { throw .parameter("unknown label '\(name)'") }
        bits.append(bit)
    }
    return bits
}

extension Labels {
    /// The bits, in a bitmap of `4 * (highest / 32 + 1)` bytes (conntrack's
    /// size for a label set it sends without a mask), or 16 bytes.
    init(bits: [Int], fullSize: Bool) {
        var lo: UInt64 = 0, hi: UInt64 = 0
        for bit in bits where bit >= 0 && bit < 128 {
            if bit < 64 { lo |= 1 << UInt64(bit) } else { hi |= 1 << UInt64(bit - 64) }
        }
        let highest = bits.max() ?? 0
        self.init(words: (lo, hi), byteCount: fullSize ? 16 : 4 * (highest / 32 + 1))
    }
}

/// The TCP flags conntrack sends with a state: SACK_PERM | BE_LIBERAL, plus
/// CLOSE_INIT for TIME_WAIT, CLOSE and SYN_SENT2.
private func tcpInfo(state: UInt8) -> TCPInfo {
    var info = TCPInfo()
    info.state = state
    let flags: UInt8 = state >= 7 ? 0x0e : 0x0a
    info.flagsOriginal = TCPFlags(flags: flags, mask: flags)
    info.flagsReply = TCPFlags(flags: flags, mask: flags)
    return info
}

/// The protocol state -p's options give, if any.
private func requestedProtoInfo(_ selection: Selection, forCreate: Bool) -> ProtoInfo? {
    let sel = selection.selector
    switch sel.proto ?? 0 {
    case IPProto.tcp:
        guard let state = sel.state else { return nil }
        return .tcp(tcpInfo(state: state))
    case IPProto.sctp:
        guard sel.state != nil || (forCreate && (selection.origVtag != nil || selection.replyVtag != nil)) else {
            return nil
        }
        var info = SCTPInfo()
        info.state = sel.state
        info.vtagOriginal = selection.origVtag
        info.vtagReply = selection.replyVtag
        return .sctp(info)
    case IPProto.dccp:
        guard sel.state != nil || sel.dccpRole != nil else { return nil }
        var info = DCCPInfo()
        info.state = sel.state
        info.role = sel.dccpRole
        return .dccp(info)
    default:
        return nil
    }
}

/// The reply type conntrack derives for an ICMP/ICMPv6 type (255: none).
private func replyICMPType(_ type: UInt8?, v6: Bool) -> UInt8? {
    guard let type else { return nil }
    let pairs: [(UInt8, UInt8)] = v6 ? [(128, 129), (139, 140)] : [(8, 0), (13, 14), (15, 16), (17, 18)]
    for (a, b) in pairs {
        if type == a { return b }
        if type == b { return a }
    }
    return 255
}

/// The original tuple of -s/-d and -p's fields.
private func originalTuple(_ selection: Selection) -> Tuple {
    let sel = selection.selector
    var t = Tuple()
    t.src = sel.origSrc?.address
    t.dst = sel.origDst?.address
    t.proto = sel.proto ?? 0
    switch t.proto! {
    case IPProto.icmp, IPProto.icmpv6:
        t.icmpType = sel.icmpType
        t.icmpCode = sel.icmpCode
        t.icmpID = sel.icmpID ?? 0
    case IPProto.gre:
        t.srcPort = selection.greSrcKey
        t.dstPort = selection.greDstKey
    case IPProto.tcp, IPProto.udp, IPProto.udplite, IPProto.sctp, IPProto.dccp:
        t.srcPort = sel.origSrcPort
        t.dstPort = sel.origDstPort
    default:
        break
    }
    t.zone = sel.origZone
    return t
}

/// `t` seen from the other side: addresses and ports swapped, ICMP types
/// mapped to their reply types (by the family's table, as conntrack maps
/// them: ICMP in IPv6 gets no reply type the kernel accepts).
private func inverted(_ t: Tuple, family: Family) -> Tuple {
    var r = t
    r.src = t.dst
    r.dst = t.src
    r.srcPort = t.dstPort
    r.dstPort = t.srcPort
    if let p = t.proto, p == IPProto.icmp || p == IPProto.icmpv6 {
        r.icmpType = replyICMPType(t.icmpType, v6: family == .ipv6)
    }
    r.zone = nil
    return r
}

/// The entry -I / -A describe, built the way conntrack builds it.
func createChange(_ inv: Invocation, _ session: Session) throws(Failure) -> EntryChange {
    let sel = inv.selection.selector
    var flow = Flow()
    let family = inv.selection.family ?? .ipv4
    flow.family = family
    let haveOrig = sel.origSrc != nil && sel.origDst != nil
    let haveReply = sel.replySrc != nil || sel.replyDst != nil
    let zero: IPAddress = inv.selection.family == .ipv6 ? .v6(0, 0) : .v4(0)
    if haveOrig {
        let orig = originalTuple(inv.selection)
        flow.orig = orig
        if haveReply {
            // The reply tuple is what -r, -q and the reply ports (or keys)
            // say; for a protocol with ports or keys but none given it has
            // no protocol (the kernel refuses that). ICMP fields are derived
            // from the original's.
            var reply = inverted(orig, family: family)
            reply.src = sel.replySrc?.address ?? zero
            reply.dst = sel.replyDst?.address ?? zero
            let proto = orig.proto ?? 0
            if proto == IPProto.gre {
                let given = inv.change.replyKeySrc != nil || inv.change.replyKeyDst != nil
                reply.proto = given ? proto : 0
                reply.srcPort = given ? inv.change.replyKeySrc ?? 0 : nil
                reply.dstPort = given ? inv.change.replyKeyDst ?? 0 : nil
            } else if IPProto.hasPorts(proto) {
                let given = sel.replySrcPort != nil || sel.replyDstPort != nil
                reply.proto = given ? proto : 0
                reply.srcPort = given ? sel.replySrcPort ?? 0 : nil
                reply.dstPort = given ? sel.replyDstPort ?? 0 : nil
            }
            reply.zone = sel.replyZone
            flow.reply = reply
        } else {
            var reply = inverted(orig, family: family)
            reply.zone = sel.replyZone
            flow.reply = reply
        }
        flow.protoInfo = requestedProtoInfo(inv.selection, forCreate: true)
    } else {
        // Only -r and -q: conntrack derives the original tuple from them
        // and sends both without any layer 4 fields.
        var reply = Tuple()
        reply.src = sel.replySrc?.address
        reply.dst = sel.replyDst?.address
        reply.proto = 0
        var orig = inverted(reply, family: family)
        orig.zone = sel.origZone
        reply.zone = sel.replyZone
        flow.orig = orig
        flow.reply = reply
    }
    flow.zone = sel.zone
    flow.timeout = sel.timeout
    flow.mark = sel.mark
    // -u's bits, always with CONFIRMED, as conntrack sends them.
    if inv.options.contains(.status) { flow.status = (sel.status ?? []).union(.confirmed) }
    if !inv.change.labelAddNames.isEmpty {
        let bits = try labelBits(inv.change.labelAddNames, session.labelMap() ?? LabelMap(names: [:]))
        flow.labels = Labels(bits: bits, fullSize: false)
    }
    var change = EntryChange(entry: flow)
    if haveOrig {
        // conntrack sends a NAT port only for protocols with ports.
        let keepPort = IPProto.hasPorts(sel.proto ?? 0)
        change.sourceNAT = sel.srcNAT.map { NATMatch(address: $0.address, port: keepPort ? $0.port : nil) }
        change.destinationNAT = sel.dstNAT.map { NATMatch(address: $0.address, port: keepPort ? $0.port : nil) }
    }
    return change
}

/// -I and -A: create one entry.
func create(_ inv: Invocation, _ session: Session) throws(Failure) -> ExitCode {
    let command = inv.command!
    let change = try createChange(inv, session)
    let ct = try session.engine()
    do {
        try ct.create(change)
    } catch let error as Errno where command == .add && error == Errno.exists {
        // -A leaves an existing entry alone and is content.
        try session.console.message("0 flow entries have been added.")
        return .ok
    } catch {
        try session.console.error(operationFailed(error, command))
        return .failure
    }
    try session.console.message(command == .add ? "1 flow entries have been added." : "1 flow entries have been created.")
    return .ok
}

/// What -U changes in `old`, or nil when it would change nothing.
struct UpdatePlan {
    var mark: (value: UInt32, mask: UInt32)?
    var timeout: UInt32?
    var status: Status?
    var protoInfo: ProtoInfo?
    var labelAdd: [Int]?
    var labelDel: [Int]??

    init(_ inv: Invocation, _ session: Session) throws(Failure) {
        let sel = inv.selection.selector
        if let m = sel.mark { mark = (m, sel.markMask) }
        timeout = sel.timeout
        if inv.options.contains(.status) { status = sel.status ?? [] }
        protoInfo = requestedProtoInfo(inv.selection, forCreate: false)
        // Names are checked first (conntrack does so while parsing), then
        // the two options together are refused.
        let names = inv.change.labelAddNames + (inv.change.labelDelNames ?? [])
        let map = names.isEmpty ? LabelMap(names: [:]) : try session.labelMap() ?? LabelMap(names: [:])
        if inv.options.contains(.labelAdd) { labelAdd = try labelBits(inv.change.labelAddNames, map) }
        if let names = inv.change.labelDelNames {
            labelDel = .some(names.isEmpty ? nil : try labelBits(names, map))
        }
        if labelAdd != nil, labelDel != nil {
            throw .other("cannot use --label-add and --label-del at the same time")
        }
    }

    func change(for old: Flow) -> EntryChange? {
        var entry = Flow()
        var changed = false
        if let (value, mask) = mark {
            let new = ((old.mark ?? 0) & ~mask) ^ value
            if new != (old.mark ?? 0) { changed = true }
            entry.mark = new
        }
        if let timeout {
            if timeout != old.timeout { changed = true }
            entry.timeout = timeout
        }
        if let status {
            let new = (old.status ?? []).union(status)
            if new != (old.status ?? []) { changed = true }
            entry.status = new
        }
        if let info = protoInfo {
            if let newState = stateValue(info), newState != old.protoInfo.flatMap(stateValue) { changed = true }
            entry.protoInfo = info
        }
        var labelsMask: Labels? = nil
        let oldLabels = old.labels ?? Labels(words: (0, 0), byteCount: 16)
        if let bits = labelAdd {
            // Always sent, as conntrack does: an add counts as a change.
            changed = true
            if oldLabels.isEmpty {
                entry.labels = Labels(bits: bits, fullSize: false)
            } else {
                entry.labels = Labels(bits: bits, fullSize: true)
                labelsMask = entry.labels
            }
        }
        if let del = labelDel, !oldLabels.isEmpty {
            changed = true
            if let bits = del {
                let remove = Labels(bits: bits, fullSize: true)
                entry.labels = Labels(words: (oldLabels.words.0 & ~remove.words.0, oldLabels.words.1 & ~remove.words.1),
                                      byteCount: 16)
            } else {
                entry.labels = Labels(words: (0, 0), byteCount: 4)
            }
        }
        guard changed else { return nil }
        return EntryChange(entry: entry, labelsMask: labelsMask)
    }
}

/// The state number a protocol info carries.
private func stateValue(_ info: ProtoInfo) -> UInt8? {
    switch info {
    case .tcp(let t): return t.state
    case .sctp(let s): return s.state
    case .dccp(let d): return d.state
    }
}

/// -U: change the selected entries, printing each as it is afterwards.
/// `plan`: the change, when the caller has made it already (-R does, as it
/// checks its lines).
func update(_ inv: Invocation, _ session: Session, plan given: UpdatePlan? = nil) throws(Failure) -> ExitCode {
    let console = session.console
    let plan: UpdatePlan
    if let given {
        plan = given
    } else {
        plan = try UpdatePlan(inv, session)
    }
    let selector = try inv.selector(for: .update, session)
    // conntrack prints updated entries without kernel timestamps, and with
    // labels whenever it has read the label names.
    let printer = try FlowPrinter(inv, session, output: inv.output.subtracting(.ktimestamp),
                                  labels: inv.output.contains(.labels) || inv.options.contains(.label)
                                      || inv.options.contains(.labelAdd) || inv.options.contains(.labelDel),
                                  xmlHeader: false, xmlFooter: false)
    let ct = try session.engine()
    do {
        try ct.update(selector, kernel: session.capabilities, change: plan.change(for:)) { result in
            switch result {
            case .vanished:
                break
            case .updated(let flow, let updateError):
                if let updateError {
                    try console.raw(operationFailed(updateError, .update))
                }
                try printer.print(flow)
            }
        }
    } catch let failure as Failure {
        throw failure
    } catch let error as OutputError {
        throw .output(error)
    } catch {
        try console.error(operationFailed(error, .update))
        return .failure
    }
    try console.flushOut()
    for problem in ct.malformed { try console.message("skipped a \(problem)") }
    try console.summary("\(printer.count) flow entries have been updated.")
    return printer.count > 0 || console.inLoadFile ? .ok : .failure
}
