import CTCore
import Glibc
import Synchronization

// --interval SECONDS: a command's answer again every SECONDS until SIGINT.

/// Repeats a rendering every `interval` seconds until SIGINT (or SIGTERM),
/// which ends it with the output flushed and exit code 0.
///
/// On a terminal (stdout is a tty) it repaints one screen, as top does:
/// the header line, then the block, cut to the window's size. Elsewhere
/// (a pipe, a file) it writes one block per interval, each beginning with
/// a timestamp line (`2026-12-06T17:30:00Z`, UTC), then the header, then
/// the block: no escape sequences.
///
/// Its API, which -S, -C and --group-by share:
/// - `LiveView.parseInterval(_:)`: checks --interval's value (a number of
///   seconds above 0, fractions allowed), exit 2 otherwise.
/// - `LiveView(interval:console:terminal:)`.
/// - `LiveView.lines(interval:console:)`: a view that writes each block as
///   rendered, nothing added, terminal or not (JSON lines: the block is
///   one object per line, which carries its own time).
/// - `run(header:render:)`: calls `header` and then `render` once per
///   interval, the first time at once; `render` gets a `Tick` and returns
///   the block's lines (without newlines). Either may throw to end the run.
/// - `LiveView.tableFillHeader(_:)`: the usual header, "entries N of LIMIT
///   (P% full)".
struct LiveView {
    /// One repetition.
    struct Tick {
        /// 0 for the first block, then 1, 2, ...
        var number: Int
        /// Seconds since the previous block was rendered (monotonic clock);
        /// nil for the first.
        var elapsed: Double?
        /// The wall-clock second of this block.
        var time: Int
    }

    let interval: Double
    let console: Console
    /// Whether to repaint a screen (stdout is a terminal).
    let terminal: Bool
    /// Whether blocks go out as rendered (no timestamp line, no header, no
    /// screen).
    private(set) var plain = false

    init(interval: Double, console: Console, terminal: Bool = isatty(1) != 0) {
        self.interval = interval
        self.console = console
        self.terminal = terminal
    }

    /// A view that writes each block as rendered: no timestamp line, no
    /// header, no screen (for JSON lines).
    static func lines(interval: Double, console: Console) -> LiveView {
        var view = LiveView(interval: interval, console: console, terminal: false)
        view.plain = true
        return view
    }

    /// --interval's value: a finite number of seconds above 0 (at most a
    /// day); anything else is a parameter error.
    static func parseInterval(_ text: String) throws(Failure) -> Double {
        let trimmed = text.trimmingCharacters(in: " ")
        guard let seconds = Double(trimmed), seconds.isFinite, !trimmed.hasPrefix("+"), trimmed == text else {
            throw .parameter("--interval `\(text)': not a number of seconds")
        }
        guard seconds > 0, seconds <= 86400 else {
            throw .parameter("--interval `\(text)': the interval must be above 0 and at most 86400 seconds")
        }
        return seconds
    }

    /// Renders until SIGINT or SIGTERM; returns exit code 0 then.
    func run(header: (() throws(Failure) -> String)?,
             render: (Tick) throws(Failure) -> [String]) throws(Failure) -> ExitCode {
        let waitMask = blockStopSignals()
        let out = console.out
        let start = monotonicSeconds()
        var previous: Double? = nil
        var number = 0
        if terminal { out.append("\u{1b}[?25l\u{1b}[H\u{1b}[2J") }
        defer {
            if terminal {
                out.append("\u{1b}[?25h")
                try? out.flush()
            }
        }
        while !stopRequested.load(ordering: .relaxed) {
            let now = monotonicSeconds()
            let tick = Tick(number: number, elapsed: previous.map { now - $0 }, time: Int(time(nil)))
            previous = now
            var lines: [String] = []
            if let header, !plain { lines.append(try header()) }
            lines += try render(tick)
            if terminal {
                paint(lines)
            } else if plain {
                for line in lines { out.append(line); out.append("\n") }
            } else {
                out.append(LiveView.timestampLine(tick.time))
                out.append("\n")
                for line in lines { out.append(line); out.append("\n") }
            }
            do { try out.flush() } catch { throw .output(error) }
            number += 1
            // The next block is due at start + number * interval (no drift).
            var due = start + Double(number) * interval
            let after = monotonicSeconds()
            if due < after { due = after + interval - (after - start).truncatingRemainder(dividingBy: interval) }
            while !stopRequested.load(ordering: .relaxed) {
                let left = due - monotonicSeconds()
                if left <= 0 { break }
                var ts = timespec(tv_sec: Int(left), tv_nsec: Int((left - Double(Int(left))) * 1e9))
                var mask = waitMask
                _ = pselect(0, nil, nil, nil, &ts, &mask)
            }
        }
        return .ok
    }

    /// One screen: cursor home, each line cut to the window and its rest
    /// cleared, then the rest of the screen cleared.
    private func paint(_ lines: [String]) {
        var size = winsize()
        let known = ioctl(1, UInt(TIOCGWINSZ), &size) == 0 && size.ws_row > 0 && size.ws_col > 0
        let rows = known ? Int(size.ws_row) : 24
        let columns = known ? Int(size.ws_col) : 80
        let out = console.out
        out.append("\u{1b}[H")
        for (i, line) in lines.prefix(rows).enumerated() {
            out.append(String(line.prefix(columns)))
            out.append("\u{1b}[K")
            if i < min(lines.count, rows) - 1 { out.append("\r\n") }
        }
        out.append("\u{1b}[J")
    }

    /// The timestamp line of a block in a pipe: ISO 8601, UTC.
    static func timestampLine(_ seconds: Int) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T" +
            "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }

    /// "entries N of LIMIT (P% full)" for the current namespace's table;
    /// "entries N" when the limit cannot be read.
    static func tableFillHeader(_ session: Session) throws(Failure) -> String {
        let fill = try TableFill.read(session)
        return fill.description
    }
}

/// How full the table is: the entries (ctnetlink, or /proc where ctnetlink
/// refuses) and the limit (this namespace's nf_conntrack_max where it can be
/// read, else what the kernel reports with the count).
struct TableFill: CustomStringConvertible {
    var entries: Int
    var limit: Int?

    /// The fill of the current namespace's table; a failure to read the
    /// count is conntrack's "Operation failed" (exit 1). Only a kernel
    /// without ctnetlink's statistics has the count read from /proc (a
    /// refusal, such as for want of CAP_NET_ADMIN, stays a failure).
    static func read(_ session: Session) throws(Failure) -> TableFill {
        let ct = try session.conntrack()
        let size: TableSize
        do {
            try session.refuseStatisticsIfLacking()
            size = try ct.tableSize()
        } catch {
            guard !session.capabilities.supports(.statistics),
                  let text = try? readTextFile("/proc/sys/net/netfilter/nf_conntrack_count"),
                  let n = Int(text.trimmingCharacters(in: " \n")) else {
                throw .other(operationFailed(error, .count))
            }
            size = TableSize(entries: UInt32(clamping: n), limit: nil)
        }
        return TableFill(entries: Int(size.entries), limit: TableFill.limit() ?? size.limit.map { Int($0) })
    }

    /// This namespace's nf_conntrack_max, where it can be read.
    static func limit() -> Int? {
        guard let text = try? readTextFile("/proc/sys/net/netfilter/nf_conntrack_max") else { return nil }
        return Int(text.trimmingCharacters(in: " \n"))
    }

    /// The fill in percent of the limit, nil without a limit.
    var percent: Double? {
        guard let limit, limit > 0 else { return nil }
        return Double(entries) * 100 / Double(limit)
    }

    var description: String {
        guard let limit, let percent else { return "entries \(entries)" }
        return "entries \(entries) of \(limit) (\(formatFixed(percent, decimals: 2))% full)"
    }
}

/// `value` with `decimals` digits after the point (no locale, no exponent).
func formatFixed(_ value: Double, decimals: Int) -> String {
    guard value.isFinite else { return "0" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    let whole = UInt64(scaled / scale)
    let fraction = UInt64(scaled - Double(whole) * scale)
    let sign = value < 0 && scaled > 0 ? "-" : ""
    guard decimals > 0 else { return "\(sign)\(whole)" }
    var digits = String(fraction)
    digits = String(repeating: "0", count: max(0, decimals - digits.count)) + digits
    return "\(sign)\(whole).\(digits)"
}

/// The monotonic clock in seconds.
private func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
