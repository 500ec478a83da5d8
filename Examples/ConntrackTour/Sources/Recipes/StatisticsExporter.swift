import CTCore

/// The table's size and per-CPU counters in Prometheus' text format.
public func prometheusMetrics(of conntrack: Conntrack) throws(ConntrackError) -> String {
    var out = ""
    let size = try conntrack.tableSize()
    out += "# TYPE conntrack_entries gauge\nconntrack_entries \(size.entries)\n"
    if let limit = size.limit {
        out += "# TYPE conntrack_entries_limit gauge\nconntrack_entries_limit \(limit)\n"
    }

    // One metric per counter, one sample per CPU, in the kernel's order.
    var samples: [(name: String, lines: [String])] = []
    for cpu in try conntrack.statistics() {
        for counter in cpu.counters {
            let line = "conntrack_\(counter.name)_total{cpu=\"\(cpu.cpu)\"} \(counter.value)"
            if let at = samples.firstIndex(where: { $0.name == counter.name }) {
                samples[at].lines.append(line)
            } else {
                samples.append((counter.name, [line]))
            }
        }
    }
    for (name, lines) in samples {
        out += "# TYPE conntrack_\(name)_total counter\n" + lines.joined(separator: "\n") + "\n"
    }
    return out
}
