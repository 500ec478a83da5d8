import CTCore
import Glibc

/// Runs a parsed, validated command and returns the exit code; what ends
/// the run otherwise (a failure, a reader gone away) is thrown.
func run(_ inv: Invocation, _ session: Session) throws(Failure) -> ExitCode {
    let console = session.console
    switch inv.command {
    case nil, .help?:
        console.out.append(usage)
        try console.flushOut()
        return .ok
    case .version?:
        console.out.append("ctl v\(version) (conntrack 1.4.7 compatible)\n")
        try console.flushOut()
        return .ok
    case _ where inv.table == .expect: return try runExpect(inv, session)
    case .list? where inv.table != .conntrack: return try listOther(inv, session)
    case .list?: return try list(inv, session)
    case .delete?: return try delete(inv, session)
    case .get?: return try get(inv, session)
    case .count? where inv.own.allNetns: return try countAllNamespaces(inv, session)
    case .count?: return try count(inv, session)
    case .stats?: return try stats(inv, session)
    case .flush?: return try flush(inv, session)
    case .create?, .add?: return try create(inv, session)
    case .update?: return try update(inv, session)
    case .load?: return try load(inv, session)
    case .event?: return try events(inv, session)
    }
}

func operationFailed(_ error: Error, _ command: Command, table: Table = .conntrack) -> String {
    if let errno = error as? Errno ?? (error as? ConntrackError)?.errno {
        return "Operation failed: \(describe(errno, command: command, table: table))"
    }
    return "Operation failed: \(error)"
}

/// The kernel features ctl uses, as the running kernel has them (by its
/// version), less those CTL_KERNEL_LACKS names: worked out once per run
/// (-R runs many lines; the Session keeps them). CTL_KERNEL_LACKS lets
/// tests force each fallback path on a kernel that has every feature; it
/// is a comma list of
/// - `family`, `mark`, `status`, `tuple`: the dump filters (nfgen_family,
///   CTA_MARK, CTA_STATUS, CTA_FILTER; the tuple filter needs the family
///   and goes with it); the userspace check alone then selects;
/// - `socket`: -E's socket filter;
/// - `stats`: ctnetlink's statistics messages (-C and -S then fall back to
///   /proc, as on kernels before 3.x with conntrack);
/// - `family-flush`: a flush of one family (-F -f is then refused, as on
///   kernels before 5.0).
/// - `zone`: the zone dump filter (CTA_ZONE, Linux 6.8);
/// CTL_NO_KERNEL_FILTER=1 is `family,mark,status,tuple,zone,socket`.
extension KernelCapabilities {
    static func fromEnvironment() -> KernelCapabilities {
        var lacks = getenv("CTL_KERNEL_LACKS").map { String(cString: $0).split(separator: ",") } ?? []
        if let v = getenv("CTL_NO_KERNEL_FILTER"), String(cString: v) == "1" {
            lacks += ["family", "mark", "status", "tuple", "zone", "socket"]
        }
        // A switch, not a dictionary: no generic metadata at every start.
        func features(_ name: Substring) -> [KernelFeature] {
            switch name {
            case "family": [.familyDumpFilter, .tupleDumpFilter]
            case "mark": [.markDumpFilter]
            case "status": [.statusDumpFilter]
            case "tuple": [.tupleDumpFilter]
            case "zone": [.zoneDumpFilter]
            case "socket": [.eventSocketFilter]
            case "stats": [.statistics]
            case "family-flush": [.familyFlush]
            default: []
            }
        }
        let detected = KernelCapabilities.detect()
        let removed = lacks.flatMap(features)
        return removed.isEmpty ? detected : detected.removing(removed)
    }
}

extension Invocation {
    /// The label map when -o labels asks for names (a missing file is only
    /// a warning, as in conntrack); `labels` overrides whether names are
    /// wanted.
    func outputLabelMap(_ session: Session, labels: Bool? = nil) throws(Failure) -> LabelMap? {
        // -l prints labels too, as -o labels does.
        guard labels ?? (output.contains(.labels) || !selection.labelNames.isEmpty) else { return nil }
        return try session.labelMap()
    }

    /// The parsed selector with -l names turned into label bits.
    func resolvedSelector(_ session: Session) throws(Failure) -> Selector {
        var selector = selection.selector
        guard !selection.labelNames.isEmpty else { return selector }
        selector.labels += try labelBits(selection.labelNames, session.labelMap() ?? LabelMap(names: [:]))
        return selector
    }

    /// The selector `command` selects with, derived from the parsed one
    /// (which stays as it is): -D's and -U's differ from -L's.
    func selector(for command: Command, _ session: Session) throws(Failure) -> Selector {
        var resolved = try resolvedSelector(session)
        // conntrack 1.4.7's NAT check looks at an IPv6 address's family only,
        // and with a port only at the port (its last check wins).
        for nat in [\Selector.srcNAT, \Selector.dstNAT, \Selector.anyNAT] {
            guard var m = resolved[keyPath: nat] else { continue }
            if m.port != nil { m.address = nil }
            if case .v6? = m.address { m.address = nil }
            resolved[keyPath: nat] = m
        }
        switch command {
        case .delete: return resolved.deleting
        case .update: return resolved.updating
        default: return resolved
        }
    }

    /// What -L, -G and -E check besides the selector: with conntrack 1.4.7's
    /// -m before -u, the mark as -m gave it too (its kernel filter takes
    /// one mark, its own check the other). nil when there is nothing more.
    var quirkCheck: ((Flow) -> Bool)? {
        guard let listMark = selection.listMark else { return nil }
        let mask = selection.selector.markMask
        return { flow in flow.mark.map { $0 & mask } == listMark }
    }
}

extension Selector {
    /// -D's selector: it asks for every -u bit (conntrack 1.4.7's -L uses
    /// the first -u's); no bit at all (-u UNSET) selects everything; and it
    /// checks only the mark as -u left it.
    var deleting: Selector {
        var s = self
        if let status { s.statusMask = status }
        if status == [] { s.status = nil }
        return s
    }

    /// -U's selector: -m, -u, -t, --state and the protocol's values are
    /// what to set, not what to select.
    var updating: Selector {
        var s = self
        s.mark = nil
        s.status = nil
        s.statusMask = []
        s.timeout = nil
        s.state = nil
        s.dccpRole = nil
        return s
    }
}

/// The formatters -o chooses between: the text format always, and the
/// save, xml or json formatter when asked for (json comes first, then save,
/// then xml, then text).
struct OutputFormats {
    let text: TextFormatter
    var save: SaveFormatter?
    let xml: XMLFormatter?
    let json: JSONFormatter?

    init(_ options: OutputOptions, labelMap: LabelMap?, saveCommand: StaticString = "-A") {
        text = TextFormatter(options: options, labelMap: labelMap)
        save = options.contains(.save) ? SaveFormatter(command: saveCommand) : nil
        xml = options.contains(.xml) ? XMLFormatter(options: options, labelMap: labelMap) : nil
        json = options.contains(.json) ? JSONFormatter(options: options, labelMap: labelMap) : nil
    }

    /// The label names -o labels or -l asks for (none for -o save, which
    /// leaves labels out).
    static func labelMap(_ inv: Invocation, _ session: Session, labels: Bool? = nil) throws(Failure) -> LabelMap? {
        inv.output.contains(.save) ? nil : try inv.outputLabelMap(session, labels: labels)
    }
}

/// The wall clock as gettimeofday(2) gives it: seconds and microseconds.
func wallClock() -> (seconds: Int, microseconds: Int) {
    var tv = timeval()
    gettimeofday(&tv, nil)
    return (Int(tv.tv_sec), Int(tv.tv_usec))
}

/// Streams flows into stdout in the format -o chose, counting them.
final class FlowPrinter {
    let formats: OutputFormats
    /// Whether the XML document's header goes before the first entry and
    /// its footer after the last (conntrack: -L both, -G the header only,
    /// -D and -U neither; nothing at all when no entry is printed).
    let xmlHeader: Bool
    let xmlFooter: Bool
    private var headerWritten = false
    let out: OutputBuffer
    let now = Int(time(nil))
    var count = 0
    /// With --all-netns: the namespace of the entries printed next, put
    /// before each text line and as "netns" into each JSON object.
    var netns: String?
    /// `output`: -o as the command prints; `labels` overrides whether
    /// label names are printed (-o labels, -l).
    init(_ inv: Invocation, _ session: Session, output: OutputOptions? = nil, labels: Bool? = nil,
         xmlHeader: Bool = true, xmlFooter: Bool = true) throws(Failure) {
        var shown = inv
        if let output { shown.output = output }
        formats = OutputFormats(shown.output, labelMap: try OutputFormats.labelMap(shown, session, labels: labels))
        out = session.console.out
        self.xmlHeader = xmlHeader
        self.xmlFooter = xmlFooter
    }
    init(options: OutputOptions, saveCommand: StaticString = "-A", out: OutputBuffer) {
        formats = OutputFormats(options, labelMap: nil, saveCommand: saveCommand)
        self.out = out
        xmlHeader = false
        xmlFooter = false
    }
    func print(_ flow: Flow) throws {
        if let json = formats.json {
            json.write(flow, header: netns.map { JSONFormatter.Header(netns: $0) }, to: out, now: now)
        } else if let save = formats.save {
            save.write(flow, to: out)
        } else if let xml = formats.xml {
            if xmlHeader, !headerWritten {
                XMLFormatter.writeHeader(to: out)
                headerWritten = true
            }
            xml.write(flow, to: out, now: now)
        } else {
            if let netns {
                out.append(netns)
                out.append(UInt8(ascii: " "))
            }
            formats.text.write(flow, to: out, now: now)
        }
        count += 1
        try out.flushIfFull()
    }
    /// Ends the XML document if one was begun.
    /// An output error the last dump callback met, which stopped the dump.
    private var failure: Error?

    /// `print` as a library dump callback: an output error (a reader gone
    /// away, a full disk) stops the dump and is thrown by `rethrow`.
    func offer(_ flow: Flow) -> DumpControl {
        do {
            try print(flow)
            return .proceed
        } catch {
            failure = error
            return .stop
        }
    }

    /// Throws the output error that stopped the dump, if one did.
    func rethrow() throws {
        if let failure { throw failure }
    }

    func finish() {
        if xmlFooter, headerWritten { XMLFormatter.writeFooter(to: out) }
    }
}

/// Runs `body`, which prints entries through `printer` as they come, then
/// reports skipped messages and conntrack's summary "N flow entries have
/// been VERB.". Returns whether it all went well; a kernel failure is
/// reported with conntrack's message and gives false.
private func printingFlows(_ command: Command, _ printer: FlowPrinter, verb: String, _ session: Session,
                           _ body: (Conntrack) throws -> [String]) throws(Failure) -> Bool {
    let console = session.console
    let ct = try session.conntrack()
    let skipped: [String]
    do {
        skipped = try body(ct)
        try printer.rethrow()
        printer.finish()
    } catch let error as OutputError {
        throw .output(error)
    } catch {
        try console.error(operationFailed(error, command))
        return false
    }
    try console.flushOut()
    for problem in skipped { try console.message("skipped a malformed message: \(problem)") }
    try console.summary("\(printer.count) flow entries have been \(verb).")
    return skipped.isEmpty
}

/// -L: one line per selected entry, streamed as the dump arrives.
private func list(_ inv: Invocation, _ session: Session) throws(Failure) -> ExitCode {
    let grouping = try GroupOptions(inv)
    if grouping.keys != nil { return try groupedList(inv, grouping, session) }
    if inv.own.allNetns { return try listAllNamespaces(inv, session) }
    let selector = try inv.selector(for: .list, session)
    let printer = try FlowPrinter(inv, session)
    let ok = try printingFlows(.list, printer, verb: "shown", session) { ct in
        try ct.forEachFlow(matching: selector, zeroingCounters: inv.options.contains(.zero), where: inv.quirkCheck,
                           printer.offer).skipped
    }
    return ok ? .ok : .failure
}

/// -L dying and -L unconfirmed: the lists as -L prints entries, with -L's
/// selectors and summary.
func listOther(_ inv: Invocation, _ session: Session) throws(Failure) -> ExitCode {
    let selector = try inv.selector(for: .list, session)
    let printer = try FlowPrinter(inv, session)
    let engine = try session.engine()
    let ok = try printingFlows(.list, printer, verb: "shown", session) { _ in
        let check = inv.quirkCheck
        try engine.dumpList(inv.table == .dying ? .dying : .unconfirmed, selector) { flow in
            if check?(flow) ?? true { try printer.print(flow) }
        }
        return engine.malformed.map(\.reason)
    }
    return ok ? .ok : .failure
}

/// -D: delete the selected entries, printing each one deleted.
private func delete(_ inv: Invocation, _ session: Session) throws(Failure) -> ExitCode {
    let selector = try inv.selector(for: .delete, session)
    // conntrack prints deleted entries without labels and kernel timestamps.
    let printer = FlowPrinter(options: inv.output.subtracting([.labels, .ktimestamp]), saveCommand: "-D",
                              out: session.console.out)
    let ok = try printingFlows(.delete, printer, verb: "deleted", session) { ct in
        try ct.deleteAll(matching: selector, onDeleted: printer.offer).skipped
    }
    return ok && (printer.count > 0 || session.console.inLoadFile) ? .ok : .failure
}

/// -G: one entry by its original tuple.
private func get(_ inv: Invocation, _ session: Session) throws(Failure) -> ExitCode {
    let sel = inv.selection.selector
    // What conntrack's request makes the kernel answer when the original
    // tuple is incomplete (EINVAL) or reply ports come without any reply
    // addresses (ENODATA).
    let portProto = IPProto.hasPorts(sel.proto ?? 0)
    if sel.origSrc == nil || sel.origDst == nil || (portProto && (sel.origSrcPort == nil || sel.origDstPort == nil)) {
        try session.console.error(operationFailed(Errno(EINVAL), .get))
        return .failure
    }
    if sel.replySrcPort != nil || sel.replyDstPort != nil, sel.replySrc == nil, sel.replyDst == nil {
        try session.console.error(operationFailed(Errno(ENODATA), .get))
        return .failure
    }
    var tuple = Tuple()
    tuple.src = sel.origSrc?.address
    tuple.dst = sel.origDst?.address
    tuple.proto = sel.proto ?? 0
    tuple.srcPort = sel.origSrcPort ?? inv.selection.greSrcKey
    tuple.dstPort = sel.origDstPort ?? inv.selection.greDstKey
    tuple.icmpType = sel.icmpType
    tuple.icmpCode = sel.icmpCode
    tuple.icmpID = sel.icmpID ?? 0
    let selector = try inv.selector(for: .get, session)
    let printer = try FlowPrinter(inv, session, xmlFooter: false)
    let ok = try printingFlows(.get, printer, verb: "shown", session) { ct in
        // The kernel finds the entry by its tuple; the other selectors
        // (-r, -q, --state, -l, -i, ...) must match it too.
        guard let flow = try ct.get(FlowKey(tuple: tuple)) else { throw Errno.noEntry }
        if selector.matches(flow), inv.quirkCheck?(flow) ?? true { try printer.print(flow) }
        return []
    }
    return ok && (printer.count > 0 || session.console.inLoadFile) ? .ok : .failure
}

/// conntrack's -C: the kernel's entry count; /proc when ctnetlink refuses.
func plainCount(_ session: Session) throws(Failure) -> ExitCode {
    let console = session.console
    let ct = try session.conntrack()
    let n: Int
    do {
        try session.refuseStatisticsIfLacking()
        n = Int(try ct.tableSize().entries)
    } catch {
        try console.error(operationFailed(error, .count))
        if let text = try? readTextFile("/proc/sys/net/netfilter/nf_conntrack_count"),
           let n = Int(text.trimmingCharacters(in: " \n")) {
            console.out.append("\(n)\n")
            try console.flushOut()
        }
        return .failure
    }
    console.out.append("\(n)\n")
    try console.flushOut()
    return .ok
}

/// conntrack's -S: per-CPU statistics; /proc/net/stat/nf_conntrack when ctnetlink refuses.
func plainStats(_ session: Session) throws(Failure) -> ExitCode {
    let console = session.console
    let ct = try session.conntrack()
    do {
        try session.refuseStatisticsIfLacking()
        for stats in try ct.statistics() { TextFormatter.write(stats, to: console.out) }
    } catch let error as OutputError {
        throw .output(error)
    } catch {
        return try statisticsFallback(operationFailed(error, .stats), console)
    }
    try console.flushOut()
    return .ok
}

/// What conntrack does when ctnetlink refuses statistics (-S, -S expect):
/// the conntrack table's /proc statistics, then the failure all the same;
/// "Can't open /proc interface" when /proc has none.
func statisticsFallback(_ failure: String, _ console: Console) throws(Failure) -> ExitCode {
    console.out.removeAllPending()
    guard let text = try? readTextFile("/proc/net/stat/nf_conntrack") else {
        throw .other("Can't open /proc interface")
    }
    writeProcStats(text, to: console.out)
    try console.flushOut()
    try console.error(failure)
    return .failure
}

/// The /proc statistics table (a header of names, then one row of hex
/// values per CPU) in -S's line format.
func writeProcStats(_ text: String, to out: OutputBuffer) {
    let lines = text.split(separator: "\n")
    guard let header = lines.first else { return }
    let names = header.split(whereSeparator: { $0 == " " || $0 == "\t" })
    for (cpu, row) in lines.dropFirst().enumerated() {
        let values = row.split(whereSeparator: { $0 == " " || $0 == "\t" })
        out.append("cpu=")
        let label = String(cpu)
        out.append(label)
        if label.count < 4 { out.append(String(repeating: " ", count: 4 - label.count)) }
        out.append(UInt8(ascii: "\t"))
        for (name, value) in zip(names, values) {
            out.append(String(name)); out.append(UInt8(ascii: "="))
            out.append(decimal: UInt64(value, radix: 16) ?? 0); out.append(UInt8(ascii: " "))
        }
        out.append(UInt8(ascii: "\n"))
    }
}

/// -F: flush the table, or with -f one family of it.
private func flush(_ inv: Invocation, _ session: Session) throws(Failure) -> ExitCode {
    let family = inv.selection.family
    if family != nil, !session.capabilities.supports(.familyFlush) {
        throw .other("flushing one family needs Linux 5.0 or later; this kernel would flush every family")
    }
    let ct = try session.conntrack()
    do {
        if let family { try ct.flush(family: family) } else { try ct.flush() }
    } catch {
        // conntrack reports the flush and then the failure; so does ctl.
        try session.console.message("connection tracking table has been emptied.")
        try session.console.error(operationFailed(error, .flush))
        return .failure
    }
    try session.console.message("connection tracking table has been emptied.")
    return .ok
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        return String(drop(while: { chars.contains($0) }).reversed().drop(while: { chars.contains($0) }).reversed())
    }
}

let usage = """
ctl v\(version): a conntrack-compatible tool for the connection tracking table
Usage: ctl COMMAND [TABLE] [OPTIONS]
       ctl -R FILE|-
See ctl(8) for the whole story; long options may be abbreviated.

Commands:
  -L, --dump [TABLE]            list entries
  -G, --get [TABLE]             show the entry with the given tuple
  -D, --delete [TABLE]          delete the selected entries
  -I, --create [TABLE]          create an entry
  -A, --add                     create an entry unless it exists
  -U, --update                  change the selected entries
  -E, --event [TABLE]           print events as they happen
  -F, --flush [TABLE]           delete every entry (with -f, of one family)
  -C, --counter [TABLE]         print the number of entries; with selectors
                                (ctl's), the number -L would list
  -S, --stats [TABLE]           print the kernel's per-CPU statistics
  -R, --load-file FILE          run the commands in FILE (- for standard
                                input); must be the first argument
  -h, --help                    print this text
  -V, --version                 print the version

Tables (after the command; any prefix of the name will do):
  conntrack                     connections (the default)
  expect                        expectations (-L -G -D -I -F -E -C -S)
  dying, unconfirmed            the kernel's lists (-L only)

Output formats:
  -o, --output FMT[,FMT...]     extended    layer 3 family first
                                id          the entry's id
                                labels      connection label names
                                ktimestamp  start and stop time (kernel)
                                timestamp   time of each event (-E)
                                userspace   which process caused an event
                                save        lines for -R (alone)
                                xml         XML document
                                json        one JSON object per line
                                metrics     Prometheus text format (-S, -C,
                                            --group-by)

Selectors and parameters:
  -f, --family ipv4|ipv6        layer 3 family
  -s, --src, --orig-src ADDR[/LEN]
                                original source address
  -d, --dst, --orig-dst ADDR[/LEN]
                                original destination address
  --mask-src, --mask-dst MASK   netmask for -s, -d
  -r, --reply-src ADDR          reply source address
  -q, --reply-dst ADDR          reply destination address
  -p, --protonum PROTO          layer 4 protocol, name or number; after it:
      --sport, --orig-port-src PORT    --dport, --orig-port-dst PORT
      --reply-port-src PORT            --reply-port-dst PORT
      --state STATE                    (tcp, sctp, dccp)
      --orig-vtag, --reply-vtag TAG    (sctp)     --role client|server (dccp)
      --icmp-type, --icmp-code, --icmp-id N       (icmp)
      --icmpv6-type, --icmpv6-code, --icmpv6-id N (icmpv6)
      --srckey, --orig-key-src, --dstkey, --orig-key-dst KEY
      --reply-key-src, --reply-key-dst KEY        (gre)
  -t, --timeout SECONDS         timeout (-I, -A, -U)
  -u, --status FLAG[,...]       ASSURED, SEEN_REPLY, FIXED_TIMEOUT, EXPECTED,
                                OFFLOAD, HW_OFFLOAD, UNSET
  -m, --mark MARK[/MASK]        connection mark
  -c, --secmark SECMARK         security mark
  -w, --zone ZONE               zone
  --orig-zone, --reply-zone ZONE  zone of one direction
  -n, --src-nat [ADDR[:PORT]]   source NAT (to ADDR, PORT)
  -g, --dst-nat [ADDR[:PORT]]   destination NAT
  -j, --any-nat [ADDR[:PORT]]   either NAT
  -i, --id ID                   entry id (-D, -G, -U)
  -l, --label LABEL[,...]       has all these labels
  --label-add LABEL[,...]       add labels (-I, -A, -U)
  --label-del [LABEL[,...]]     remove labels, or all of them (-U)
  -z, --zero                    zero counters while listing (-L)

Expectation parameters (-I expect, -G/-D expect name the expected connection):
  --tuple-src, --tuple-dst ADDR the expected connection's addresses
  --mask-src, --mask-dst ADDR   their masks
  -p PROTO                      then --tuple-port-src, --tuple-port-dst,
                                --mask-port-src, --mask-port-dst PORT
                                (gre: --tuple-key-src, --tuple-key-dst,
                                --mask-key-src, --mask-key-dst KEY)

Event options (-E):
  -e, --event-mask MASK[,...]   NEW, UPDATES, DESTROY, ALL
  -b, --buffer-size BYTES       event socket receive buffer
  -o timestamp,userspace,...    see Output formats

Other:
  --netns NAME|PATH             run in the network namespace /run/netns/NAME
                                or the one at PATH (like ip netns exec)
  --interval SECONDS            -S, -C, --group-by: answer again every
                                SECONDS until Ctrl-C (a screen on a terminal,
                                timestamped blocks in a pipe)
  --labelmap FILE               label names from FILE, not
                                /etc/xtables/connlabel.conf
  -a, --nat-range RANGE         obsolete, ignored with a warning

Grouped counts (-L, and -E with --interval):
  --group-by KEY[,KEY...]       count the selected entries (-E: events) per
                                group of values instead of listing them:
                                family proto src dst sport dport reply-src
                                reply-dst reply-sport reply-dport state
                                status mark zone label helper netns
  --top N                       only the N largest groups

All namespaces:
  --all-netns                   -L, -C, --group-by: the current namespace and
                                every one under /run/netns

Exit status: 0 success, 1 failure (kernel, system, nothing found),
2 bad parameters.

"""
