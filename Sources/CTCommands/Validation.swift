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
    static let list: OptSet = [.timeout, .eventMask, .bufferSize, .tupleSrc, .tupleDst, .id, .labelAdd, .labelDel]
    static let update: OptSet = [.zero, .eventMask, .anyNat, .secmark, .bufferSize, .zone, .tupleSrc, .tupleDst,
                                 .origZone, .replyZone]
    static let delete: OptSet = [.zero, .eventMask, .anyNat, .secmark, .bufferSize, .tupleSrc, .tupleDst,
                                 .labelAdd, .labelDel]
    static let event: OptSet = [.timeout, .status, .zero, .tupleSrc, .tupleDst, .id, .labelAdd, .labelDel]
    static let get: OptSet = [.timeout, .status, .zero, .eventMask, .tupleSrc, .tupleDst, .maskSrc, .maskDst,
                              .mark, .family, .srcNat, .dstNat, .anyNat, .secmark, .bufferSize, .zone,
                              .origZone, .replyZone, .labelAdd, .labelDel]
    static let flush = OptSet.all.subtracting([.family])
    static let count = OptSet.all
    static let create: OptSet = [.zero, .eventMask, .tupleSrc, .tupleDst, .maskSrc, .maskDst, .id, .family, .output,
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
/// presence, then combinations. (The session gives the label names.)
func validate(_ inv: Invocation, _ session: Session) throws(Failure) {
    guard let command = inv.command else {
        // Without a command every option is out of place.
        if let o = inv.options.sorted().first { throw .parameter("Illegal option `--\(o.longName)' with this command") }
        _ = try GroupOptions(inv)
        return
    }
    // ctl's own --group-by, --top, --all-netns against the command.
    _ = try GroupOptions(inv)
    if command == .load { return }
    try checkLabels(inv, session)
    // ctl's additions (-o metrics, --interval): their own checks.
    try checkAnswerOptions(inv)
    if inv.table == .expect, command != .help, command != .version {
        return try validateExpect(inv, command)
    }
    var illegal = illegalOptions(command)
    if command == .count || command == .stats {
        // ctl's additions: -o json and -o metrics on both, selectors on -C.
        if inv.output == .json || inv.output.contains(.metrics) { illegal = illegal.subtracting([.output]) }
        if command == .count { illegal = illegal.subtracting(countSelectorOptions) }
    }
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
    // The selecting commands, -U and -E refuse masks, tuples and the role;
    // all but -G and -U the sctp vtags too. (-I and -A: checkCreateTuple.)
    if command == .list || command == .delete || command == .get || command == .update || command == .event ||
        command == .count {
        let vtagsAllowed = command == .get || command == .update
        if let name = refusedProtoOptions.first(where: { inv.protoOptions.contains($0) && !(vtagsAllowed && $0.hasSuffix("vtag")) }) {
            throw .parameter("Illegal option `--\(name)' with this command")
        }
    }
    try checkAnyNAT(inv)
    // (conntrack checks these while it sets up its filter, which the dying
    // and unconfirmed lists do without)
    if inv.options.contains(.maskSrc), !inv.options.contains(.src), inv.table == .conntrack {
        throw .parameter("Can't use --mask-src without --src")
    }
    if inv.options.contains(.maskDst), !inv.options.contains(.dst), inv.table == .conntrack {
        throw .parameter("Can't use --mask-dst without --dst")
    }
    if command == .list, inv.table == .conntrack, inv.options.contains(.zero), !inv.options.isDisjoint(with: filterOptions) {
        throw .parameter("Can't use -z with filtering parameters")
    }
    try checkOutputFormats(inv)
    if command == .get, inv.table == .conntrack {
        try checkGetTuple(inv)
    }
    if command == .create || command == .add, inv.table == .conntrack {
        try checkCreateTuple(inv)
    }
}

/// -o combinations: json is a format of its own and does not mix with the
/// other two document formats (checked before conntrack's save check, so
/// json with save is this parameter error too); save mixes with nothing
/// but userspace.
private func checkOutputFormats(_ inv: Invocation) throws(Failure) {
    if inv.output.contains(.json), !inv.output.isDisjoint(with: [.xml, .save]) {
        throw .parameter("cannot combine json output with xml or save output")
    }
    if inv.output.contains(.save), inv.output.subtracting(.userspace) != .save {
        throw .other("cannot combine save output with any other output type, use -o save only")
    }
}

/// --any-nat with --src-nat or --dst-nat.
private func checkAnyNAT(_ inv: Invocation) throws(Failure) {
    if inv.options.contains(.anyNat), inv.options.contains(.srcNat) || inv.options.contains(.dstNat) {
        throw .parameter("cannot specify `--src-nat' or `--dst-nat' with `--any-nat'")
    }
}

/// conntrack reads the label file as soon as a label option or -o labels
/// is given (warning when it is missing) and refuses unknown label names,
/// before it checks which options the command takes.
private func checkLabels(_ inv: Invocation, _ session: Session) throws(Failure) {
    let names = inv.selection.labelNames + inv.change.labelAddNames + (inv.change.labelDelNames ?? [])
    guard !names.isEmpty || inv.output.contains(.labels) || inv.options.contains(.labelDel) else { return }
    let map = try session.labelMap() ?? LabelMap(names: [:])
    _ = try labelBits(names, map)
}

/// -I and -A need a whole tuple (either direction) and each protocol's
/// mandatory fields, checked in conntrack's order.
private func checkCreateTuple(_ inv: Invocation) throws(Failure) {
    let sel = inv.selection.selector
    guard (sel.origSrc != nil && sel.origDst != nil) || (sel.replySrc != nil && sel.replyDst != nil) else {
        throw .parameter("you have to specify `--src' and `--dst'")
    }
    func need(_ present: Bool, _ name: String) throws(Failure) {
        if !present { throw .parameter("You need to supply the `--\(name)' option for this command") }
    }
    let given = inv.protoOptions
    let ports = (given.contains("sport") || given.contains("orig-port-src")) &&
        (given.contains("dport") || given.contains("orig-port-dst"))
    // The protocol's table, in its order: what -I needs (state, vtags,
    // role) and refuses (masks and tuples, which only expectations take).
    // (Checked per -R line: the tables are made once, nothing allocated.)
    if let proto = sel.proto, let table = ExpectProtocolOptions.forProtocol(proto) {
        for (name, refused) in table.createChecks {
            let present = given.contains { ExpectProtocolOptions.canonical($0) == name }
            if refused, present { throw .parameter("Illegal option `--\(name)' with this command") }
            if !refused, !present { try need(false, name) }
        }
    }
    switch sel.proto ?? 0 {
    case IPProto.tcp, IPProto.sctp, IPProto.dccp:
        if !ports { throw .parameter("you have to specify `--sport' and `--dport'") }
    case IPProto.udp, IPProto.udplite:
        if !ports { throw .parameter("you have to specify `--sport' and `--dport'") }
    case IPProto.gre:
        guard inv.selection.greSrcKey != nil, inv.selection.greDstKey != nil else {
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
    let sel = inv.selection.selector
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
        guard inv.selection.greSrcKey != nil, inv.selection.greDstKey != nil else {
            throw .parameter("you have to specify `--srckey' and `--dstkey'")
        }
    default:
        break
    }
}

/// conntrack's option table for the expectation table: what each command
/// needs (compulsory) and what it accepts besides; everything else is
/// refused.
private enum ExpectOptions {
    static let list: (needed: OptSet, allowed: OptSet) = ([], [.family, .output])
    static let create: (needed: OptSet, allowed: OptSet) =
        ([.src, .dst, .proto, .timeout, .tupleSrc, .tupleDst, .maskSrc, .maskDst], [.replySrc, .replyDst, .status])
    static let lookup: (needed: OptSet, allowed: OptSet) = ([.src, .dst, .proto], [.replySrc, .replyDst])
    static let event: (needed: OptSet, allowed: OptSet) = ([], [.output])
    static let none: (needed: OptSet, allowed: OptSet) = ([], [])
}

/// The protocol options the expectation commands need or refuse, in the
/// order conntrack checks them: 1 needed, 2 accepted, 0 refused. The names
/// are the ones conntrack's messages use.
private struct ExpectProtocolOptions {
    let names: [String]
    let create: [UInt8]
    let lookup: [UInt8]
    /// What -I and -A check of the table, in its order: the options they
    /// refuse (masks and tuples, `refused`) and those they need (state,
    /// vtags, role).
    let createChecks: [(name: String, refused: Bool)]

    init(names: [String], create: [UInt8], lookup: [UInt8]) {
        self.names = names
        self.create = create
        self.lookup = lookup
        createChecks = names.compactMap { name in
            if name.hasPrefix("mask-") || name.hasPrefix("tuple-") { return (name, true) }
            if name == "state" || name == "role" || name.hasSuffix("vtag") { return (name, false) }
            return nil
        }
    }

    static func forProtocol(_ proto: UInt8) -> ExpectProtocolOptions? {
        switch proto {
        case IPProto.tcp: tcp
        case IPProto.udp, IPProto.udplite: udp
        case IPProto.sctp: sctp
        case IPProto.dccp: dccp
        case IPProto.gre: gre
        case IPProto.icmp: icmp
        case IPProto.icmpv6: icmpv6
        default: nil
        }
    }

    // Each protocol's table, made once (-R checks every line against one).
    private static let ports = ["sport", "dport", "reply-port-src", "reply-port-dst", "mask-port-src", "mask-port-dst"]
    private static let tuplePorts = ["tuple-port-src", "tuple-port-dst"]
    private static let tcp = ExpectProtocolOptions(names: ports + ["state"] + tuplePorts,
        create: [1, 1, 0, 0, 1, 1, 0, 1, 1], lookup: [1, 1, 1, 1, 0, 0, 0, 0, 0])
    private static let udp = ExpectProtocolOptions(names: ports + tuplePorts,
        create: [1, 1, 0, 0, 1, 1, 1, 1], lookup: [1, 1, 1, 1, 0, 0, 0, 0])
    private static let sctp = ExpectProtocolOptions(names: ports + ["state"] + tuplePorts + ["orig-vtag", "reply-vtag"],
        create: [1, 1, 0, 0, 1, 1, 0, 1, 1, 1, 1], lookup: [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    private static let dccp = ExpectProtocolOptions(names: ports + ["state"] + tuplePorts + ["role"],
        create: [1, 1, 0, 0, 1, 1, 0, 1, 1, 1], lookup: [1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    private static let gre = ExpectProtocolOptions(names: ["srckey", "dstkey", "reply-key-src", "reply-key-dst",
                                                           "mask-key-src", "mask-key-dst", "tuple-key-src", "tuple-key-dst"],
        create: [1, 1, 1, 1, 1, 1, 1, 1], lookup: [1, 1, 1, 1, 0, 0, 0, 0])
    private static let icmp = ExpectProtocolOptions(names: ["icmp-type", "icmp-code", "icmp-id"],
        create: [0, 0, 0], lookup: [0, 0, 0])
    private static let icmpv6 = ExpectProtocolOptions(names: ["icmpv6-type", "icmpv6-code", "icmpv6-id"],
        create: [0, 0, 0], lookup: [0, 0, 0])

    /// The name conntrack's table gives an option that has two spellings.
    static func canonical(_ name: String) -> String {
        switch name {
        case "orig-port-src": return "sport"
        case "orig-port-dst": return "dport"
        case "orig-key-src": return "srckey"
        case "orig-key-dst": return "dstkey"
        default: return name
        }
    }
}

/// conntrack's checks for the expectation table, in its order: the option
/// table, then the protocol's own table.
private func validateExpect(_ inv: Invocation, _ command: Command) throws(Failure) {
    try checkOutputFormats(inv)
    try checkAnyNAT(inv)
    var table: (needed: OptSet, allowed: OptSet)
    switch command {
    case .list: table = ExpectOptions.list
    case .create: table = ExpectOptions.create
    case .delete: table = ExpectOptions.lookup
    case .get:
        // conntrack's -G expect takes no -o; ctl's own json output is the
        // one it takes (an addition: -o xml and the rest stay refused).
        table = ExpectOptions.lookup
        if inv.output.contains(.json) { table.allowed.insert(.output) }
    case .event: table = ExpectOptions.event
    default: table = ExpectOptions.none
    }
    for o in Opt.allCases {
        let given = inv.options.contains(o)
        if !given, table.needed.contains(o) {
            throw .parameter("You need to supply the `--\(o.longName)' option for this command")
        }
        if given, !table.needed.contains(o), !table.allowed.contains(o) {
            throw .parameter("Illegal option `--\(o.longName)' with this command")
        }
    }
    guard command == .create || command == .delete || command == .get,
          let proto = inv.selection.selector.proto, let options = ExpectProtocolOptions.forProtocol(proto) else { return }
    let row = command == .create ? options.create : options.lookup
    let given = Set(inv.protoOptions.map(ExpectProtocolOptions.canonical))
    for (i, name) in options.names.enumerated() {
        if !given.contains(name), row[i] == 1 {
            throw .parameter("You need to supply the `--\(name)' option for this command")
        }
        if given.contains(name), row[i] == 0 {
            throw .parameter("Illegal option `--\(name)' with this command")
        }
    }
}
