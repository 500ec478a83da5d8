import CTCore
import Glibc

// ctl's additions to -C and -S (issue 17): -C with selectors (filtered
// counts), -o json and -o metrics on both, --interval on both.
// Without them, both are conntrack's (plainCount, plainStats).

extension Invocation {
    /// Whether -C was given selectors (ctl's filtered count): any option
    /// but -o, or a protocol option.
    var countSelects: Bool {
        !options.subtracting([.output]).isEmpty || !protoOptions.isEmpty
    }

    /// -o metrics or -o json on -C or -S: the one format asked for, nil for
    /// conntrack's text.
    var answerFormat: OutputOptions? {
        if output.contains(.metrics) { return .metrics }
        if output.contains(.json) { return .json }
        return nil
    }
}

/// What -C accepts beyond conntrack's (nothing): the selectors -L takes, and
/// -o json or -o metrics. -z, -t, -i and the rest stay refused, in
/// conntrack's words.
let countSelectorOptions: OptSet = OptSet.all.subtracting(
    [.timeout, .eventMask, .bufferSize, .tupleSrc, .tupleDst, .id, .labelAdd, .labelDel, .zero, .output, .natRange])

/// ctl's checks of its additions to -C and -S and of --interval, after
/// conntrack's own checks (which validate() relaxed for them).
func checkAnswerOptions(_ inv: Invocation) throws(Failure) {
    let command = inv.command
    let conntrackTable = inv.table == .conntrack
    if inv.output.contains(.metrics) {
        // --group-by has metrics too (its own checks).
        let hasMetrics = (command == .count || command == .stats) && conntrackTable || inv.own.groupBy != nil
        guard hasMetrics else {
            throw .parameter("-o metrics: this command has no metrics (-S, -C and --group-by have)")
        }
        guard inv.output == .metrics else {
            throw .parameter("-o metrics does not combine with other output formats")
        }
    }
    if let text = inv.own.interval {
        _ = try LiveView.parseInterval(text)
        let repeats = (command == .count || command == .stats) && conntrackTable || inv.own.groupBy != nil
        guard repeats else {
            throw .parameter("--interval: only -S, -C and --group-by repeat their answer")
        }
        if inv.output.contains(.metrics) {
            throw .parameter("--interval does not combine with -o metrics (a file is one scrape)")
        }
    }
}

/// -C: conntrack's count, or ctl's filtered count, in text, json or
/// metrics, once or every --interval.
func count(_ inv: Invocation, _ session: Session) throws(Failure) -> ExitCode {
    if let text = inv.own.interval {
        let seconds = try LiveView.parseInterval(text)
        let selects = inv.countSelects
        if inv.answerFormat == .json {
            // JSON lines: -C -o json's object with the time first.
            return try LiveView.lines(interval: seconds, console: session.console).run(header: nil) { tick throws(Failure) in
                if selects { return ["{\"time\":\(tick.time),\"selected\":\(try selectedCount(inv, session))}"] }
                return [withTime(tick.time, countJSON(try TableFill.read(session)))]
            }
        }
        let live = LiveView(interval: seconds, console: session.console)
        return try live.run(header: { () throws(Failure) in try LiveView.tableFillHeader(session) }) { _ throws(Failure) in
            guard selects else { return [] }
            return ["selected \(try selectedCount(inv, session))"]
        }
    }
    let format = inv.answerFormat
    if format == nil, !inv.countSelects { return try plainCount(session) }
    let console = session.console
    if inv.countSelects {
        let n = try selectedCount(inv, session)
        switch format {
        case .json?:
            console.out.append("{\"selected\":\(n)}\n")
        case .metrics?:
            var w = MetricsWriter()
            w.selectedEntries(n, selector: selectorWords())
            console.out.append(w.text)
        default:
            console.out.append("\(n)\n")
        }
    } else {
        let fill = try TableFill.read(session)
        if format == .json {
            console.out.append(countJSON(fill))
            console.out.append("\n")
        } else {
            var w = MetricsWriter()
            w.entries(fill.entries)
            if let limit = fill.limit { w.limit(limit) }
            console.out.append(w.text)
        }
    }
    try console.flushOut()
    return .ok
}

/// -C -o json's object: `{"entries":N,"limit":M}` ("limit" where known).
func countJSON(_ fill: TableFill) -> String {
    "{\"entries\":\(fill.entries)\(fill.limit.map { ",\"limit\":\($0)" } ?? "")}"
}

/// A JSON object with `"time":SECONDS` put first (--interval's JSON lines).
func withTime(_ time: Int, _ object: String) -> String {
    "{\"time\":\(time)," + object.dropFirst()
}

/// The number of entries -L would list with the same selectors: the same
/// kernel filter and userspace check, nothing formatted. A failed dump is
/// conntrack's "Operation failed" (exit 1); malformed messages skipped
/// are reported and fail the run too.
/// `on`: the handle of the namespace to count in (--all-netns); the run's
/// own when nil.
func selectedCount(_ inv: Invocation, _ session: Session, on handle: Conntrack? = nil) throws(Failure) -> Int {
    let selector = try inv.selector(for: .list, session)
    let ct: Conntrack
    if let handle { ct = handle } else { ct = try session.conntrack() }
    var n = 0
    let summary: DumpSummary
    do {
        summary = try ct.forEachFlow(matching: selector, where: inv.quirkCheck) { _ in
            n += 1
            return .proceed
        }
    } catch {
        throw .other(operationFailed(error, .count))
    }
    if let problem = summary.skipped.first {
        throw .other("skipped a malformed message: \(problem)")
    }
    return n
}

/// The selector words of the command line as given, for the `selector`
/// label of -o metrics: every word but the program's name, -C itself, -o
/// and its value, and ctl's own options.
func selectorWords() -> String {
    let all = Array(CommandLine.arguments.dropFirst())
    let words = (try? takeOwnOptions(["ctl"] + all).1.dropFirst()).map(Array.init) ?? all
    var kept: [String] = []
    var i = 0
    while i < words.count {
        let w = words[i]
        if w == "-C" || (w.hasPrefix("--c") && "--counter".hasPrefix(w)) {
            i += 1
        } else if w == "-o" || (w.count > 3 && "--output".hasPrefix(w)) {
            i += 2
        } else if w.hasPrefix("-o") || w.hasPrefix("--output=") {
            i += 1
        } else {
            kept.append(w)
            i += 1
        }
    }
    return kept.joined(separator: " ")
}

/// -S: conntrack's statistics, or ctl's json, metrics or --interval view.
func stats(_ inv: Invocation, _ session: Session) throws(Failure) -> ExitCode {
    if let text = inv.own.interval {
        let seconds = try LiveView.parseInterval(text)
        if inv.answerFormat == .json {
            // JSON lines: -S -o json's object with the time first.
            return try LiveView.lines(interval: seconds, console: session.console).run(header: nil) { tick throws(Failure) in
                let s = try StatsAnswer.read(session)
                return [withTime(tick.time, statsJSON(fill: s.fill, expectations: s.expectations, cpus: s.cpus))]
            }
        }
        return try liveStats(LiveView(interval: seconds, console: session.console), session)
    }
    guard let format = inv.answerFormat else { return try plainStats(session) }
    let console = session.console
    let answer = try StatsAnswer.read(session)
    let (fill, cpus, expectationCPUs, expectations) =
        (answer.fill, answer.cpus, answer.expectationCPUs, answer.expectations)
    if format == .metrics {
        var w = MetricsWriter()
        w.entries(fill.entries)
        if let limit = fill.limit { w.limit(limit) }
        w.expectations(expectations)
        w.statistics(cpus)
        w.expectationStatistics(expectationCPUs)
        console.out.append(w.text)
    } else {
        console.out.append(statsJSON(fill: fill, expectations: expectations, cpus: cpus))
        console.out.append("\n")
    }
    try console.flushOut()
    return .ok
}

/// What -S -o json and -o metrics report, read from the kernel.
struct StatsAnswer {
    var fill: TableFill
    var cpus: [CPUStatistics]
    var expectationCPUs: [ExpectationStatistics]
    var expectations: Int

    static func read(_ session: Session) throws(Failure) -> StatsAnswer {
        let ct = try session.conntrack()
        let fill = try TableFill.read(session)
        var expectations = 0
        do {
            try session.refuseStatisticsIfLacking()
            let cpus = try ct.statistics()
            let expectationCPUs = try ct.expectationStatistics()
            try ct.forEachExpectation { _ in
                expectations += 1
                return .proceed
            }
            return StatsAnswer(fill: fill, cpus: cpus, expectationCPUs: expectationCPUs, expectations: expectations)
        } catch {
            throw .other(operationFailed(error, .stats))
        }
    }
}

/// -S -o json: one object,
/// `{"entries":N,"limit":M,"expect_entries":E,"cpus":[{"cpu":0,"found":…,…},…],"all_cpus":{"found":…,…}}`
/// (counter names as -S prints them; "limit" only where it can be read).
func statsJSON(fill: TableFill, expectations: Int, cpus: [CPUStatistics]) -> String {
    var s = "{\"entries\":\(fill.entries)"
    if let limit = fill.limit { s += ",\"limit\":\(limit)" }
    s += ",\"expect_entries\":\(expectations),\"cpus\":["
    for (i, cpu) in cpus.enumerated() {
        if i > 0 { s += "," }
        s += "{\"cpu\":\(cpu.cpu)"
        for (name, value) in cpu.counters { s += ",\"\(name)\":\(value)" }
        s += "}"
    }
    s += "],\"all_cpus\":{"
    s += counterTotals(cpus.map(\.counters)).map { "\"\($0.name)\":\($0.total)" }.joined(separator: ",")
    s += "}}"
    return s
}

/// The counters whose rise -S --interval flags: the table is losing
/// entries or packets.
let alarmingCounters: Set<String> = ["insert_failed", "drop", "early_drop"]

/// -S --interval: per counter (summed over the CPUs) the total and the rate
/// per second since the last block; a rising insert_failed, drop or
/// early_drop is flagged.
private func liveStats(_ live: LiveView, _ session: Session) throws(Failure) -> ExitCode {
    let ct = try session.conntrack()
    var last: [String: UInt64] = [:]
    return try live.run(header: { () throws(Failure) in try LiveView.tableFillHeader(session) }) { tick throws(Failure) in
        let cpus: [CPUStatistics]
        do {
            try session.refuseStatisticsIfLacking()
            cpus = try ct.statistics()
        } catch {
            throw .other(operationFailed(error, .stats))
        }
        let totals = counterTotals(cpus.map(\.counters))
        let lines = statsRateLines(totals, previous: last, elapsed: tick.elapsed)
        last = Dictionary(totals, uniquingKeysWith: { $1 })
        return lines
    }
}

/// -S --interval's block: per counter (in the kernel's order) the total
/// over all CPUs and the rate per second since `previous` (taken `elapsed`
/// seconds ago; "-" for the first block); "RISING" after insert_failed,
/// drop or early_drop when they rose.
func statsRateLines(_ totals: [(name: String, total: UInt64)], previous: [String: UInt64],
                elapsed: Double?) -> [String] {
    var lines = [pad("counter", 16) + padLeft("total", 14) + padLeft("per second", 14)]
    for (name, total) in totals {
        var rate = "-"
        var flag = ""
        if let elapsed, elapsed > 0, let before = previous[name] {
            let delta = total >= before ? Double(total - before) : 0
            rate = formatFixed(delta / elapsed, decimals: 1)
            if delta > 0, alarmingCounters.contains(name) { flag = "  RISING" }
        }
        lines.append(pad(name, 16) + padLeft(String(total), 14) + padLeft(rate, 14) + flag)
    }
    return lines
}

private func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
}

private func padLeft(_ s: String, _ width: Int) -> String {
    s.count >= width ? " " + s : String(repeating: " ", count: width - s.count) + s
}
