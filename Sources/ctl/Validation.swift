import CTCore

/// Which options each command refuses (conntrack's option table for the
/// conntrack table). Options not listed are optional.
private func illegalOptions(_ command: Command) -> OptSet {
    switch command {
    case .list: return Refused.list
    case .update: return Refused.update
    case .delete: return Refused.delete
    case .event: return Refused.event
    case .get: return Refused.get
    case .flush: return Refused.flush
    case .count, .stats: return Refused.count
    case .create, .add: return Refused.create
    case .help, .version: return OptSet.all
    default: return []
    }
}

/// The sets illegalOptions gives, made once (-R checks many lines).
private enum Refused {
    static let list: OptSet = [.timeout, .eventMask, .bufferSize, .tupleSrc, .tupleDst, .id]
    static let update: OptSet = [.zero, .eventMask, .anyNat, .secmark, .bufferSize, .zone, .tupleSrc, .tupleDst,
                                 .origZone, .replyZone]
    static let delete: OptSet = [.zero, .eventMask, .anyNat, .secmark, .bufferSize, .tupleSrc, .tupleDst]
    static let event: OptSet = [.timeout, .status, .zero, .tupleSrc, .tupleDst, .id]
    static let get: OptSet = [.timeout, .status, .zero, .eventMask, .tupleSrc, .tupleDst, .maskSrc, .maskDst,
                              .mark, .family, .srcNat, .dstNat, .anyNat, .secmark, .bufferSize, .zone,
                              .origZone, .replyZone]
    static let flush = OptSet.all.subtracting([.family, .label, .labelAdd, .labelDel])
    static let count = OptSet.all.subtracting([.label, .labelAdd, .labelDel])
    static let create: OptSet = [.zero, .eventMask, .tupleSrc, .tupleDst, .maskSrc, .maskDst, .family, .output,
                                 .secmark, .bufferSize, .anyNat, .label, .labelDel]
}

/// Options a command needs.
private func mandatoryOptions(_ command: Command) -> OptSet {
    switch command {
    case .create, .add: return Needed.create
    case .get: return Needed.get
    default: return []
    }
}

private enum Needed {
    static let create: OptSet = [.proto, .timeout]
    static let get: OptSet = [.proto]
}

/// Selectors that make `-z` refuse to run.
private let filterOptions: OptSet = [
    .src, .dst, .replySrc, .replyDst, .proto, .status, .mark, .zone, .origZone, .replyZone,
    .label, .maskSrc, .maskDst, .secmark,
]

/// conntrack's checks after parsing, in its order: option legality and
/// presence, then combinations.
func validate(_ inv: Invocation) throws(Failure) {
    guard let command = inv.command else {
        // Without a command every option is out of place.
        if let o = inv.options.sorted().first { throw .parameter("Illegal option `--\(o.longName)' with this command") }
        return
    }
    if command == .load { return }
    if inv.table == .dying || inv.table == .unconfirmed, command != .list {
        throw .parameter("Can't do that command with tables `dying' and `unconfirmed'")
    }
    let illegal = illegalOptions(command)
    let mandatory = mandatoryOptions(command)
    // The first option in conntrack's order that is refused or missing.
    if !inv.options.isDisjoint(with: illegal) || !mandatory.subtracting(inv.options).isEmpty {
        for o in Opt.allCases {
            if inv.options.contains(o), illegal.contains(o) {
                throw .parameter("Illegal option `--\(o.longName)' with this command")
            }
            if !inv.options.contains(o), mandatory.contains(o) {
                throw .parameter("You need to supply the `--\(o.longName)' option for this command")
            }
        }
    }
    if command == .list || command == .delete || command == .get, let name = inv.illegalProtoOption,
       !(command == .get && name.hasSuffix("vtag")) {
        throw .parameter("Illegal option `--\(name)' with this command")
    }
    if inv.options.contains(.anyNat), inv.options.contains(.srcNat) || inv.options.contains(.dstNat) {
        throw .parameter("cannot specify `--src-nat' or `--dst-nat' with `--any-nat'")
    }
    if inv.options.contains(.maskSrc), !inv.options.contains(.src) {
        throw .parameter("Can't use --mask-src without --src")
    }
    if inv.options.contains(.maskDst), !inv.options.contains(.dst) {
        throw .parameter("Can't use --mask-dst without --dst")
    }
    if command == .list, inv.options.contains(.zero), !inv.options.isDisjoint(with: filterOptions) {
        throw .parameter("Can't use -z with filtering parameters")
    }
    if inv.output.contains(.save), inv.output.subtracting(.userspace) != .save {
        throw .other("cannot combine save output with any other output type, use -o save only")
    }
    if command == .get, inv.table == .conntrack {
        try checkGetTuple(inv)
    }
    if command == .create || command == .add, inv.table == .conntrack {
        try checkCreateTuple(inv)
    }
}

/// -I and -A need a whole tuple (either direction) and each protocol's
/// mandatory fields, checked in conntrack's order.
private func checkCreateTuple(_ inv: Invocation) throws(Failure) {
    let sel = inv.selector
    guard (sel.origSrc != nil && sel.origDst != nil) || (sel.replySrc != nil && sel.replyDst != nil) else {
        throw .parameter("you have to specify `--src' and `--dst'")
    }
    func need(_ present: Bool, _ name: String) throws(Failure) {
        if !present { throw .parameter("You need to supply the `--\(name)' option for this command") }
    }
    let given = inv.protoOptions
    let ports = (given.contains("sport") || given.contains("orig-port-src")) &&
        (given.contains("dport") || given.contains("orig-port-dst"))
    switch sel.proto ?? 0 {
    case IPProto.tcp:
        try need(sel.state != nil, "state")
        if !ports { throw .parameter("you have to specify `--sport' and `--dport'") }
    case IPProto.sctp:
        try need(sel.state != nil, "state")
        try need(given.contains("orig-vtag"), "orig-vtag")
        try need(given.contains("reply-vtag"), "reply-vtag")
        if !ports { throw .parameter("you have to specify `--sport' and `--dport'") }
    case IPProto.dccp:
        try need(sel.state != nil, "state")
        try need(given.contains("role"), "role")
        if !ports { throw .parameter("you have to specify `--sport' and `--dport'") }
    case IPProto.udp, IPProto.udplite:
        if !ports { throw .parameter("you have to specify `--sport' and `--dport'") }
    case IPProto.gre:
        guard sel.greSrcKey != nil, sel.greDstKey != nil else {
            throw .parameter("you have to specify `--srckey' and `--dstkey'")
        }
    case IPProto.icmp, IPProto.icmpv6:
        let prefix = sel.proto == IPProto.icmp ? "icmp" : "icmpv6"
        try need(sel.icmpType != nil, "\(prefix)-type")
        try need(sel.icmpCode != nil, "\(prefix)-code")
    default:
        break
    }
}

/// -G names one entry by its original tuple: addresses and the protocol's
/// fields must all be there.
private func checkGetTuple(_ inv: Invocation) throws(Failure) {
    let sel = inv.selector
    // Either direction's tuple will do for these checks, as in conntrack.
    guard (sel.origSrc != nil && sel.origDst != nil) || (sel.replySrc != nil && sel.replyDst != nil) else {
        throw .parameter("you have to specify `--src' and `--dst'")
    }
    switch sel.proto ?? 0 {
    case IPProto.tcp, IPProto.udp, IPProto.udplite, IPProto.sctp, IPProto.dccp:
        guard (sel.origSrcPort != nil && sel.origDstPort != nil) || (sel.replySrcPort != nil && sel.replyDstPort != nil) else {
            throw .parameter("you have to specify `--sport' and `--dport'")
        }
    case IPProto.icmp, IPProto.icmpv6:
        // The id may be left out: the lookup then uses id 0.
        let prefix = sel.proto == IPProto.icmp ? "icmp" : "icmpv6"
        if sel.icmpType == nil { throw .parameter("You need to supply the `--\(prefix)-type' option for this command") }
        if sel.icmpCode == nil { throw .parameter("You need to supply the `--\(prefix)-code' option for this command") }
    case IPProto.gre:
        guard sel.greSrcKey != nil, sel.greDstKey != nil else {
            throw .parameter("you have to specify `--srckey' and `--dstkey'")
        }
    default:
        break
    }
}

/// What this version of ctl does not do yet; later milestones add it.
func checkImplemented(_ inv: Invocation) throws(Failure) {
    guard let command = inv.command else { return }
    if command == .help || command == .version { return }
    if inv.table != .conntrack {
        throw .notImplemented("the `\(inv.table.rawValue)' table with -\(command.rawValue)")
    }
    var supported = supportedOptions
    if command == .delete || command == .get { supported.formUnion([.timeout, .id]) }
    if command == .create || command == .add || command == .update {
        supported.formUnion([.timeout, .labelAdd, .labelDel])
    }
    if command == .load { return }
    if command == .list { supported.insert(.zero) }
    if command == .event { supported.formUnion([.eventMask, .bufferSize]) }
    if !inv.options.subtracting(supported).isEmpty, let o = inv.options.subtracting(supported).sorted().first {
        throw .notImplemented("option `--\(o.longName)'")
    }
}

/// The options every command of checkImplemented's takes.
private let supportedOptions: OptSet = [
    .family, .output, .src, .dst, .replySrc, .replyDst, .proto, .status, .mark, .secmark,
    .zone, .origZone, .replyZone, .srcNat, .dstNat, .anyNat, .label, .maskSrc, .maskDst,
]
