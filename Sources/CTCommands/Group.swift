import CTCore
import Glibc

// --group-by: entries counted by the values of some of their fields
// (ctl's own addition). GroupTable does the counting, on Flow values alone
// (no kernel: the unit tests feed it flows); groupedList runs -L's dump
// into it and prints the groups.

/// The fields --group-by counts by. Each value prints as ctl's text format
/// prints the field (see GroupValue).
enum GroupKey: String, CaseIterable, Sendable {
    case family, proto, src, dst, sport, dport
    case replySrc = "reply-src", replyDst = "reply-dst", replySport = "reply-sport", replyDport = "reply-dport"
    case state, status, mark, zone, label, helper, netns

    /// The keys of a --group-by value: a comma list of key names, each
    /// once.
    static func parseList(_ text: String) throws(Failure) -> [GroupKey] {
        var keys: [GroupKey] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !item.isEmpty else { throw .parameter("--group-by: empty key in `\(text)'") }
            guard let key = GroupKey(rawValue: String(item)) else {
                throw .parameter("--group-by: unknown key `\(item)' (keys: \(allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard !keys.contains(key) else { throw .parameter("--group-by: key `\(item)' given twice") }
            keys.append(key)
        }
        return keys
    }

    /// Whether the value is a JSON number (else a string).
    var isNumeric: Bool {
        switch self {
        case .sport, .dport, .replySport, .replyDport, .mark, .zone: true
        default: false
        }
    }
}

/// One field's value in a group's key. Kept raw (addresses, numbers,
/// status bits) so that counting costs no text; written as text only for
/// the groups printed.
enum GroupValue: Hashable, Sendable {
    /// The entry has no such field (a UDP entry's state, an ICMP entry's
    /// ports, zone 0, which the kernel does not send): printed "none".
    case none
    case number(UInt64)
    case address(IPAddress)
    case text(String)
    case status(UInt32)
    case labels(UInt64, UInt64)

    /// The value of `key` in `flow`, which was dumped from the namespace
    /// called `netns`.
    static func of(_ key: GroupKey, in flow: Flow, netns: String) -> GroupValue {
        switch key {
        case .family: return .text(string(Names.family(flow.family.rawValue)))
        case .proto:
            guard let proto = flow.proto else { return .none }
            // The text format prints "unknown" and the number; the number
            // alone tells such protocols apart.
            let name = string(Names.proto(proto))
            return .text(name == "unknown" ? String(proto) : name)
        case .src: return flow.orig?.src.map(GroupValue.address) ?? .none
        case .dst: return flow.orig?.dst.map(GroupValue.address) ?? .none
        case .replySrc: return flow.reply?.src.map(GroupValue.address) ?? .none
        case .replyDst: return flow.reply?.dst.map(GroupValue.address) ?? .none
        case .sport: return port(flow.orig, flow.proto, \.srcPort)
        case .dport: return port(flow.orig, flow.proto, \.dstPort)
        case .replySport: return port(flow.reply, flow.proto, \.srcPort)
        case .replyDport: return port(flow.reply, flow.proto, \.dstPort)
        case .state:
            guard let info = flow.protoInfo, let name = Names.state(info) else { return .none }
            return .text(string(name))
        case .status: return flow.status.map { .status($0.rawValue) } ?? .none
        case .mark: return flow.mark.map { .number(UInt64($0)) } ?? .none
        case .zone: return flow.zone.map { .number(UInt64($0)) } ?? .none
        case .label:
            guard let labels = flow.labels, !labels.isEmpty else { return .none }
            return .labels(labels.words.0, labels.words.1)
        case .helper: return flow.helper.map(GroupValue.text) ?? .none
        case .netns: return .text(netns)
        }
    }

    /// A port as the text format prints it: for the protocols with ports
    /// only (GRE's keys travel in the same attribute but print as keys).
    private static func port(_ tuple: Tuple?, _ proto: UInt8?, _ field: KeyPath<Tuple, UInt16?>) -> GroupValue {
        guard let tuple, IPProto.hasPorts(tuple.proto ?? proto ?? 0) else { return .none }
        // The text format prints a missing port of such a tuple as 0.
        return .number(UInt64(tuple[keyPath: field] ?? 0))
    }

    private static func string(_ s: StaticString) -> String {
        String(decoding: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount), as: UTF8.self)
    }

    /// Appends the value's text: as the text format prints the field;
    /// status as the names of its bits (as -o json names them) joined by
    /// commas; labels as the names `labelMap` gives them (a bit without a
    /// name as its number), joined by commas.
    func write(to out: OutputBuffer, labelMap: LabelMap?) {
        switch self {
        case .none: out.append("none")
        case .number(let n): out.append(decimal: n)
        case .address(let a): out.append(address: a)
        case .text(let s): out.append(s)
        case .status(let bits):
            guard bits != 0 else { out.append("none"); return }
            JSONFormatter.writeBitList(bits, names: JSONFormatter.statusNames, quoted: false, to: out)
        case .labels(let low, let high):
            let labels = Labels(words: (low, high))
            var first = true
            for bit in labels.bits {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                if let name = labelMap?.name(ofBit: bit) { out.append(name) } else { out.append(decimal: UInt64(bit)) }
            }
        }
    }

    /// The value's text (for JSON strings and metric labels).
    func text(labelMap: LabelMap?) -> String {
        let buffer = OutputBuffer(fd: -1, capacity: 64)
        write(to: buffer, labelMap: labelMap)
        return String(decoding: buffer.pending, as: UTF8.self)
    }

    /// The order of groups with equal counts: numbers and addresses by
    /// value (IPv4 before IPv6), text by its bytes, none last.
    static func ordered(_ a: GroupValue, _ b: GroupValue) -> Bool? {
        switch (a, b) {
        case (.none, .none): return nil
        case (.none, _): return false
        case (_, .none): return true
        case let (.number(x), .number(y)): return x == y ? nil : x < y
        case let (.status(x), .status(y)): return x == y ? nil : x < y
        case let (.address(x), .address(y)):
            switch (x, y) {
            case let (.v4(p), .v4(q)): return p == q ? nil : p < q
            case let (.v6(p1, p2), .v6(q1, q2)): return (p1, p2) == (q1, q2) ? nil : (p1, p2) < (q1, q2)
            case (.v4, .v6): return true
            case (.v6, .v4): return false
            }
        case let (.text(x), .text(y)):
            return x == y ? nil : Array(x.utf8).lexicographicallyPrecedes(Array(y.utf8))
        case let (.labels(x1, x2), .labels(y1, y2)): return (x2, x1) == (y2, y1) ? nil : (x2, x1) < (y2, y1)
        default:
            return nil
        }
    }
}

/// A group's key: its values, in the order of the keys. The first is kept
/// apart so that the usual single key costs no array per entry (hashing and
/// sorting a hundred thousand groups stay cheap).
struct GroupValues: Hashable, Sendable {
    var first: GroupValue
    /// The values of the other keys; nil for a single key.
    var rest: [GroupValue]?

    init(_ keys: [GroupKey], _ value: (GroupKey) -> GroupValue) {
        first = value(keys[0])
        rest = keys.count == 1 ? nil : keys.dropFirst().map(value)
    }

    init(values: [GroupValue]) {
        first = values[0]
        rest = values.count == 1 ? nil : Array(values.dropFirst())
    }

    var values: [GroupValue] { [first] + (rest ?? []) }

    /// Whether `a` sorts before `b` (see GroupValue.ordered).
    static func ordered(_ a: GroupValues, _ b: GroupValues) -> Bool {
        if let before = GroupValue.ordered(a.first, b.first) { return before }
        guard let x = a.rest, let y = b.rest else { return false }
        for (u, v) in zip(x, y) {
            if let before = GroupValue.ordered(u, v) { return before }
        }
        return false
    }
}

/// What a group adds up: its entries, and (where the kernel's accounting
/// is on) their packets and bytes in both directions.
struct GroupTotals: Equatable, Sendable {
    var count = 0
    var packets: UInt64 = 0
    var bytes: UInt64 = 0
}

/// Counts entries by the values of `keys`: memory grows with the number of
/// groups, not with the entries added.
struct GroupTable: Sendable {
    let keys: [GroupKey]
    private(set) var groups: [GroupValues: GroupTotals] = [:]
    /// Every entry added, and their packets and bytes.
    private(set) var total = GroupTotals()
    /// Whether any entry added carried counters (accounting is on).
    private(set) var accounting = false

    init(keys: [GroupKey]) { self.keys = keys }

    /// Counts `flow` (from the namespace named `netns`) in its group.
    mutating func add(_ flow: Flow, netns: String = "-") {
        let key = GroupValues(keys) { GroupValue.of($0, in: flow, netns: netns) }
        // Both directions, without an array per entry.
        var packets: UInt64 = 0, bytes: UInt64 = 0
        if let orig = flow.countersOrig {
            packets &+= orig.packets
            bytes &+= orig.bytes
        }
        if let reply = flow.countersReply {
            packets &+= reply.packets
            bytes &+= reply.bytes
        }
        if flow.countersOrig != nil || flow.countersReply != nil { accounting = true }
        groups[key, default: GroupTotals()].add(packets: packets, bytes: bytes)
        total.add(packets: packets, bytes: bytes)
    }

    /// Adds the groups of `other` (same keys) to these.
    mutating func merge(_ other: GroupTable) {
        for (key, t) in other.groups {
            groups[key, default: GroupTotals()].add(t)
        }
        total.add(other.total)
        accounting = accounting || other.accounting
    }

    /// The groups by count, most first, then by their values; the first
    /// `top` of them when given.
    func sorted(top: Int? = nil) -> [(values: GroupValues, totals: GroupTotals)] {
        sortedGroups(groups, count: \.count, top: top).map { (values: $0.0, totals: $0.1) }
    }
}

/// The groups of `groups` by `count`, most first, then by their values;
/// the first `top` of them when given.
func sortedGroups<T>(_ groups: [GroupValues: T], count: (T) -> Int, top: Int?) -> [(GroupValues, T)] {
    let all = groups.map { ($0.key, $0.value) }.sorted { a, b in
        let (ca, cb) = (count(a.1), count(b.1))
        if ca != cb { return ca > cb }
        return GroupValues.ordered(a.0, b.0)
    }
    guard let top, top < all.count else { return all }
    return Array(all.prefix(top))
}

extension GroupTotals {
    mutating func add(packets: UInt64, bytes: UInt64) {
        count += 1
        self.packets &+= packets
        self.bytes &+= bytes
    }

    mutating func add(_ other: GroupTotals) {
        count += other.count
        packets &+= other.packets
        bytes &+= other.bytes
    }
}

// MARK: - Output

/// Writes a group table: text lines ("COUNT key=value ... [packets=P
/// bytes=B]", then "total groups=G entries=N ..."), or with -o json one
/// object per group and a last {"total":{...}} object.
struct GroupWriter {
    let keys: [GroupKey]
    let labelMap: LabelMap?

    /// `flushing`: write `out` out whenever it is full (stdout), so that
    /// the text of many groups is never held whole.
    func writeText(_ table: GroupTable, top: Int?, to out: OutputBuffer, flushing: Bool = false) throws(OutputError) {
        let groups = table.sorted(top: top)
        let width = String(groups.first?.totals.count ?? 0).utf8.count
        for (values, totals) in groups {
            let count = String(totals.count)
            out.append(repeating: UInt8(ascii: " "), count: width - count.utf8.count)
            out.append(count)
            for (key, value) in zip(keys, values.values) {
                out.append(UInt8(ascii: " ")); out.append(key.rawValue); out.append(UInt8(ascii: "="))
                value.write(to: out, labelMap: labelMap)
            }
            if table.accounting { writeCounters(totals, to: out) }
            out.append(UInt8(ascii: "\n"))
            if flushing { try out.flushIfFull() }
        }
        out.append("total groups="); out.append(decimal: table.groups.count)
        out.append(" entries="); out.append(decimal: table.total.count)
        if table.accounting { writeCounters(table.total, to: out) }
        out.append(UInt8(ascii: "\n"))
    }

    private func writeCounters(_ totals: GroupTotals, to out: OutputBuffer) {
        out.append(" packets="); out.append(decimal: totals.packets)
        out.append(" bytes="); out.append(decimal: totals.bytes)
    }

    func writeJSON(_ table: GroupTable, top: Int?, to out: OutputBuffer, flushing: Bool = false) throws(OutputError) {
        for (values, totals) in table.sorted(top: top) {
            out.append("{\"count\":"); out.append(decimal: totals.count)
            writeJSONValues(values, to: out)
            if table.accounting { writeJSONCounters(totals, to: out) }
            out.append("}\n")
            if flushing { try out.flushIfFull() }
        }
        out.append("{\"total\":{\"groups\":"); out.append(decimal: table.groups.count)
        out.append(",\"entries\":"); out.append(decimal: table.total.count)
        if table.accounting { writeJSONCounters(table.total, to: out) }
        out.append("}}\n")
    }

    /// `,"KEY":value` for each key: ports, mark and zone as numbers, none
    /// as null, the rest as strings.
    func writeJSONValues(_ values: GroupValues, to out: OutputBuffer) {
        for (key, value) in zip(keys, values.values) {
            out.append(",\""); out.append(key.rawValue); out.append("\":")
            switch value {
            case .none: out.append("null")
            case .number(let n): out.append(decimal: n)
            default: JSONFormatter.appendString(value.text(labelMap: labelMap), to: out)
            }
        }
    }

    private func writeJSONCounters(_ totals: GroupTotals, to out: OutputBuffer) {
        out.append(",\"packets\":"); out.append(decimal: totals.packets)
        out.append(",\"bytes\":"); out.append(decimal: totals.bytes)
    }
}

// MARK: - Options

/// --group-by, --top and --all-netns as a command takes them, checked.
struct GroupOptions {
    static let netnsWithAllNetns = "--all-netns and --netns do not go together"
    var keys: [GroupKey]?
    var top: Int?

    /// ctl's own options of `inv` checked against its command: exit 2 with
    /// a clear message for a bad key or number, or an option the command
    /// does not take.
    init(_ inv: Invocation) throws(Failure) {
        let own = inv.own
        let command = inv.command
        let conntrackTable = inv.table == .conntrack
        if let text = own.groupBy {
            guard conntrackTable, command == .list || command == .event else {
                throw .parameter("--group-by works with -L and -E (of the conntrack table) only")
            }
            keys = try GroupKey.parseList(text)
            if command == .event, own.interval == nil {
                throw .parameter("-E --group-by needs --interval SECONDS")
            }
            if !inv.output.isDisjoint(with: OutputOptions([.json, .metrics]).inverted) {
                throw .parameter("--group-by prints counts: -o takes only json or metrics with it")
            }
        }
        if let text = own.top {
            guard keys != nil else { throw .parameter("--top needs --group-by") }
            guard let n = Int(text), n > 0 else {
                throw .parameter("--top takes a number of groups, 1 or more; not `\(text)'")
            }
            top = n
        }
        if own.allNetns {
            guard conntrackTable, command == .list || command == .count else {
                throw .parameter("--all-netns works with -L, -C and -L --group-by only")
            }
            if own.netns != nil { throw .parameter(Self.netnsWithAllNetns) }
            if !inv.output.isDisjoint(with: [.xml, .save]) {
                throw .parameter("--all-netns does not combine with -o xml or -o save")
            }
            if command == .count, own.interval != nil {
                throw .parameter("--all-netns does not combine with -C --interval (use -L --group-by netns --interval)")
            }
        }
    }
}

extension OutputOptions {
    fileprivate var inverted: OutputOptions { OutputOptions(rawValue: ~rawValue) }
}

// MARK: - -L --group-by

/// -L --group-by: the selected entries (every selector applies, in the
/// kernel where it can) counted by the keys, then printed; with --interval
/// again every interval (LiveView).
func groupedList(_ inv: Invocation, _ options: GroupOptions, _ session: Session) throws(Failure) -> ExitCode {
    let keys = options.keys!
    let console = session.console
    let selector = try inv.selector(for: .list, session)
    let labelMap = keys.contains(.label) ? try session.labelMap() : nil
    let targets = try namespaceTargets(inv, session)
    var ok = !targets.contains { $0.conntrack == nil }
    let writer = GroupWriter(keys: keys, labelMap: labelMap)

    func collect() throws(Failure) -> GroupTable {
        var table = GroupTable(keys: keys)
        for target in targets {
            guard let ct = target.conntrack else { continue }
            let name = target.name
            do {
                let summary = try ct.forEachFlow(matching: selector, zeroingCounters: inv.options.contains(.zero),
                                                 where: inv.quirkCheck) { flow in
                    table.add(flow, netns: name)
                    return .proceed
                }
                for problem in summary.skipped {
                    try console.message("skipped a malformed message: \(problem)")
                    ok = false
                }
            } catch let error as Failure {
                throw error
            } catch {
                if !inv.own.allNetns { throw .other(operationFailed(error, .list)) }
                try console.error("network namespace `\(name)' skipped: \(operationFailed(error, .list))")
                ok = false
            }
        }
        return table
    }

    if let text = inv.own.interval, inv.output.contains(.json) {
        // JSON lines: each interval's objects with "time" first.
        let live = LiveView.lines(interval: try LiveView.parseInterval(text), console: console)
        return try live.run(header: nil) { tick throws(Failure) in
            writer.jsonLines(try collect(), top: options.top).map { withTime(tick.time, $0) }
        }
    }
    if let text = inv.own.interval {
        let live = LiveView(interval: try LiveView.parseInterval(text), console: console)
        let header: (() throws(Failure) -> String)? = inv.own.allNetns ? nil : { () throws(Failure) in
            try LiveView.tableFillHeader(session)
        }
        return try live.run(header: header) { _ throws(Failure) in
            writer.lines(try collect(), top: options.top)
        }
    }
    let table = try collect()
    do throws(OutputError) {
        if inv.output.contains(.metrics) {
            console.out.append(writer.metrics(table, top: options.top))
        } else if inv.output.contains(.json) {
            try writer.writeJSON(table, top: options.top, to: console.out, flushing: true)
        } else {
            try writer.writeText(table, top: options.top, to: console.out, flushing: true)
        }
    } catch {
        throw .output(error)
    }
    try console.flushOut()
    return ok ? .ok : .failure
}

extension GroupWriter {
    /// The text lines of `table`, for LiveView.
    func lines(_ table: GroupTable, top: Int?) -> [String] {
        let out = OutputBuffer(fd: -1)
        try? writeText(table, top: top, to: out)
        return String(decoding: out.pending, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// The JSON objects of `table`, one per line (without newlines).
    func jsonLines(_ table: GroupTable, top: Int?) -> [String] {
        let out = OutputBuffer(fd: -1)
        try? writeJSON(table, top: top, to: out)
        return String(decoding: out.pending, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// -o metrics: ctl_conntrack_group_entries (and _packets, _bytes with
    /// accounting) per group, labelled with the keys (MetricsWriter).
    func metrics(_ table: GroupTable, top: Int?) -> String {
        var w = MetricsWriter()
        w.groups(table.sorted(top: top).map { values, totals in
            MetricsWriter.Group(keys: zip(keys, values.values).map { ($0.rawValue, $1.text(labelMap: labelMap)) },
                                entries: totals.count,
                                packets: table.accounting ? totals.packets : nil,
                                bytes: table.accounting ? totals.bytes : nil)
        })
        return w.text
    }
}
