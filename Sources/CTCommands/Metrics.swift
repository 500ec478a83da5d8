import CTCore

/// The Prometheus text exposition format (version 0.0.4), as
/// node_exporter's textfile collector reads it: `-o metrics`.
///
/// Samples are added in any order; `text` writes each metric's `# HELP`
/// and `# TYPE` lines once, then all of its samples together (the format
/// wants them together), metrics in the order they were first added.
/// Label values are escaped (backslash, double quote, newline); label
/// names are made valid (`reply-src` becomes `reply_src`).
///
/// Its API, which -S, -C and --group-by share:
/// - `MetricsWriter()`: an empty exposition.
/// - `add(_:_:help:labels:value:)`: one sample of any metric.
/// - `entries(_:labels:)`: `ctl_conntrack_entries`, entries in the table.
/// - `limit(_:labels:)`: `ctl_conntrack_limit`, nf_conntrack_max.
/// - `selectedEntries(_:selector:labels:)`: `ctl_conntrack_selected_entries`,
///   entries a selector matched (`-C` with selectors).
/// - `expectations(_:labels:)`: `ctl_conntrack_expect_entries`.
/// - `statistics(_:labels:)`: each per-CPU counter as
///   `ctl_conntrack_stat_<name>_total{cpu="N"}` plus the sum over the CPUs
///   as `ctl_conntrack_stat_<name>_all_cpus_total` (names as -S prints
///   them: found, insert_failed, drop, early_drop, ...).
/// - `expectationStatistics(_:labels:)`: the same for the expectation
///   counters (`ctl_conntrack_stat_expect_new_total`, ...).
/// - `groups(_:labels:)`: grouped counts as
///   `ctl_conntrack_group_entries{KEY="value",...}`, with
///   `ctl_conntrack_group_packets` and `ctl_conntrack_group_bytes` (sums
///   over the group's entries, both directions) when a group has them.
/// - `text`: the exposition, each line ending in a newline.
/// - `MetricsWriter.escape(_:)`, `MetricsWriter.labelName(_:)`.
/// `labels` are put before each sample's own labels (`netns`, say).
struct MetricsWriter {
    /// A metric's type as the TYPE line gives it.
    enum Kind: String {
        case gauge, counter
    }

    /// One group of `groups`: its key values (key names as --group-by
    /// spells them, in order), its entry count and, with accounting, the
    /// summed packets and bytes.
    struct Group {
        var keys: [(name: String, value: String)]
        var entries: Int
        var packets: UInt64?
        var bytes: UInt64?

        init(keys: [(name: String, value: String)], entries: Int, packets: UInt64? = nil, bytes: UInt64? = nil) {
            self.keys = keys
            self.entries = entries
            self.packets = packets
            self.bytes = bytes
        }
    }

    private struct Family {
        let kind: Kind
        let help: String
        var samples: [String] = []
    }

    private var order: [String] = []
    private var families: [String: Family] = [:]

    init() {}

    /// One sample of metric `name` (a valid metric name); the first sample
    /// of a name sets its type and help text.
    mutating func add(_ name: String, _ kind: Kind, help: String, labels: [(String, String)] = [],
                      value: String) {
        if families[name] == nil {
            order.append(name)
            families[name] = Family(kind: kind, help: help)
        }
        var line = name
        if !labels.isEmpty {
            line += "{"
            line += labels.map { "\(MetricsWriter.labelName($0.0))=\"\(MetricsWriter.escape($0.1))\"" }
                .joined(separator: ",")
            line += "}"
        }
        line += " " + value
        families[name]!.samples.append(line)
    }

    mutating func add(_ name: String, _ kind: Kind, help: String, labels: [(String, String)] = [],
                      value: UInt64) {
        add(name, kind, help: help, labels: labels, value: String(value))
    }

    /// Entries in the table (`-C`).
    mutating func entries(_ n: Int, labels: [(String, String)] = []) {
        add("ctl_conntrack_entries", .gauge, help: "Entries in the connection tracking table.",
            labels: labels, value: UInt64(max(n, 0)))
    }

    /// The table's limit (nf_conntrack_max).
    mutating func limit(_ n: Int, labels: [(String, String)] = []) {
        add("ctl_conntrack_limit", .gauge,
            help: "The most entries the connection tracking table may hold (nf_conntrack_max).",
            labels: labels, value: UInt64(max(n, 0)))
    }

    /// Entries a selector matched; `selector` is the selector as given on
    /// the command line (a label, so that several such counts can share a
    /// file).
    mutating func selectedEntries(_ n: Int, selector: String, labels: [(String, String)] = []) {
        add("ctl_conntrack_selected_entries", .gauge,
            help: "Entries of the connection tracking table that the selector matches.",
            labels: labels + [("selector", selector)], value: UInt64(max(n, 0)))
    }

    /// Expectations in the expectation table.
    mutating func expectations(_ n: Int, labels: [(String, String)] = []) {
        add("ctl_conntrack_expect_entries", .gauge, help: "Entries in the expectation table.",
            labels: labels, value: UInt64(max(n, 0)))
    }

    /// Per-CPU counters by name (as -S prints them), each with its CPU,
    /// then the sums.
    private mutating func cpuCounters(_ rows: [(cpu: Int, counters: [(name: String, value: UInt32)])],
                                      what: String, labels: [(String, String)]) {
        for row in rows {
            for (name, value) in row.counters {
                add("ctl_conntrack_stat_\(name)_total", .counter,
                    help: "\(what) counter \(name) of one CPU (as conntrack -S gives it).",
                    labels: labels + [("cpu", String(row.cpu))], value: UInt64(value))
            }
        }
        for (name, total) in counterTotals(rows.map(\.counters)) {
            add("ctl_conntrack_stat_\(name)_all_cpus_total", .counter,
                help: "\(what) counter \(name), summed over all CPUs.", labels: labels, value: total)
        }
    }

    /// The conntrack counters of each CPU (-S) and their sums.
    mutating func statistics(_ cpus: [CPUStatistics], labels: [(String, String)] = []) {
        cpuCounters(cpus.map { ($0.cpu, $0.counters) }, what: "Connection tracking", labels: labels)
    }

    /// The expectation counters of each CPU (-S expect) and their sums.
    mutating func expectationStatistics(_ cpus: [ExpectationStatistics], labels: [(String, String)] = []) {
        cpuCounters(cpus.map { ($0.cpu, $0.counters) }, what: "Expectation", labels: labels)
    }

    /// Grouped counts (--group-by): one sample per group in each metric.
    mutating func groups(_ groups: [Group], labels: [(String, String)] = []) {
        for g in groups {
            let l = labels + g.keys.map { ($0.name, $0.value) }
            add("ctl_conntrack_group_entries", .gauge, help: "Entries of the connection tracking table in the group.",
                labels: l, value: UInt64(max(g.entries, 0)))
        }
        for g in groups {
            guard let packets = g.packets else { continue }
            add("ctl_conntrack_group_packets", .gauge,
                help: "Packets of the group's entries (both directions; needs nf_conntrack_acct).",
                labels: labels + g.keys.map { ($0.name, $0.value) }, value: packets)
        }
        for g in groups {
            guard let bytes = g.bytes else { continue }
            add("ctl_conntrack_group_bytes", .gauge,
                help: "Bytes of the group's entries (both directions; needs nf_conntrack_acct).",
                labels: labels + g.keys.map { ($0.name, $0.value) }, value: bytes)
        }
    }

    /// The exposition: for each metric its HELP and TYPE lines and its
    /// samples; empty when nothing was added.
    var text: String {
        var s = ""
        for name in order {
            let f = families[name]!
            s += "# HELP \(name) \(MetricsWriter.escapeHelp(f.help))\n"
            s += "# TYPE \(name) \(f.kind.rawValue)\n"
            for sample in f.samples { s += sample + "\n" }
        }
        return s
    }

    /// A label value as the format wants it: backslash, double quote and
    /// newline escaped.
    static func escape(_ value: String) -> String {
        var s = ""
        for c in value.unicodeScalars {
            switch c {
            case "\\": s += "\\\\"
            case "\"": s += "\\\""
            case "\n": s += "\\n"
            default: s.unicodeScalars.append(c)
            }
        }
        return s
    }

    /// A HELP text: backslash and newline escaped.
    static func escapeHelp(_ text: String) -> String {
        text.replacingAll("\\", with: "\\\\").replacingAll("\n", with: "\\n")
    }

    /// A valid label name for `name`: characters other than ASCII letters,
    /// digits and '_' become '_' (`reply-src` is `reply_src`), and a name
    /// that starts with a digit gets a leading '_'.
    static func labelName(_ name: String) -> String {
        var s = ""
        for c in name.unicodeScalars {
            let ok = (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "_"
            s.unicodeScalars.append(ok ? c : "_")
        }
        if let first = s.unicodeScalars.first, first >= "0" && first <= "9" || s.isEmpty { s = "_" + s }
        return s.isEmpty ? "_" : s
    }
}

extension String {
    /// Every occurrence of `target` replaced by `replacement`.
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        return split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}

/// Each counter summed over the CPUs (`perCPU`: each CPU's counters by
/// name, as -S prints them), in the order the names first appear.
func counterTotals(_ perCPU: [[(name: String, value: UInt32)]]) -> [(name: String, total: UInt64)] {
    var names: [String] = []
    var sums: [String: UInt64] = [:]
    for counters in perCPU {
        for (name, value) in counters {
            if sums[name] == nil { names.append(name) }
            sums[name, default: 0] += UInt64(value)
        }
    }
    return names.map { ($0, sums[$0]!) }
}
