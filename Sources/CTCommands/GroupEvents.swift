import CTCore
import Glibc
import Synchronization

// -E --group-by KEYS --interval SECONDS (ctl's own addition): the events
// of each interval counted per group (new, update, destroy), one block per
// interval through LiveView (a screen on a terminal, timestamped blocks in
// a pipe) until SIGINT. Events are read on a thread of their own, which
// counts them into the current interval's table; each block takes the
// table and starts a new one, so memory grows with the groups of one
// interval.

/// Events of one group in one interval.
struct EventCounts: Equatable, Sendable {
    var new = 0
    var update = 0
    var destroy = 0
    var total: Int { new + update + destroy }

    mutating func add(_ type: EventType) {
        switch type {
        case .new: new += 1
        case .update: update += 1
        case .destroy: destroy += 1
        }
    }
}

/// Events counted by the values of `keys` (the fields as the event carries
/// them: an update may lack some, which count as none).
struct EventGroupTable: Sendable {
    let keys: [GroupKey]
    private(set) var groups: [GroupValues: EventCounts] = [:]
    private(set) var total = EventCounts()
    /// ENOBUFS: events were lost in this interval.
    var lost = false
    /// Event messages that could not be decoded (skipped) in this interval.
    var malformed = 0

    init(keys: [GroupKey]) { self.keys = keys }

    mutating func add(_ type: EventType, _ flow: Flow, netns: String = "-") {
        let key = GroupValues(keys) { GroupValue.of($0, in: flow, netns: netns) }
        groups[key, default: EventCounts()].add(type)
        total.add(type)
    }

    /// Lines: "EVENTS key=value ... new=N update=N destroy=N", most events
    /// first, then "total groups=G events=E new=N update=N destroy=N".
    func lines(top: Int?, labelMap: LabelMap?) -> [String] {
        let groups = sortedGroups(groups, count: \.total, top: top)
        let width = String(groups.first?.1.total ?? 0).count
        var lines: [String] = []
        for (values, counts) in groups {
            let out = OutputBuffer(fd: -1, capacity: 256)
            let n = String(counts.total)
            out.append(repeating: UInt8(ascii: " "), count: width - n.count)
            out.append(n)
            for (key, value) in zip(keys, values.values) {
                out.append(UInt8(ascii: " ")); out.append(key.rawValue); out.append(UInt8(ascii: "="))
                value.write(to: out, labelMap: labelMap)
            }
            lines.append(String(decoding: out.pending, as: UTF8.self) + Self.counts(counts))
        }
        lines.append("total groups=\(self.groups.count) events=\(total.total)" + Self.counts(total)
                     + (malformed > 0 ? " skipped=\(malformed) (malformed messages)" : "")
                     + (lost ? " LOST (receive buffer overflowed: counts are low)" : ""))
        return lines
    }

    /// -o json: one object per group, {"time":T,"events":N,"KEY":value,...,
    /// "new":N,"update":N,"destroy":N}, then {"time":T,"total":{"groups":G,
    /// "events":E,"new":N,"update":N,"destroy":N[,"skipped":N][,"lost":true]}}.
    func jsonLines(top: Int?, labelMap: LabelMap?, time: Int) -> [String] {
        let writer = GroupWriter(keys: keys, labelMap: labelMap)
        var lines: [String] = []
        for (values, counts) in sortedGroups(groups, count: \.total, top: top) {
            let out = OutputBuffer(fd: -1, capacity: 256)
            out.append("{\"time\":"); out.append(decimal: time)
            out.append(",\"events\":"); out.append(decimal: counts.total)
            writer.writeJSONValues(values, to: out)
            lines.append(String(decoding: out.pending, as: UTF8.self) + Self.jsonCounts(counts) + "}")
        }
        var total = "{\"time\":\(time),\"total\":{\"groups\":\(groups.count),\"events\":\(self.total.total)"
            + Self.jsonCounts(self.total)
        if malformed > 0 { total += ",\"skipped\":\(malformed)" }
        if lost { total += ",\"lost\":true" }
        lines.append(total + "}}")
        return lines
    }

    private static func jsonCounts(_ c: EventCounts) -> String {
        ",\"new\":\(c.new),\"update\":\(c.update),\"destroy\":\(c.destroy)"
    }

    private static func counts(_ c: EventCounts) -> String {
        " new=\(c.new) update=\(c.update) destroy=\(c.destroy)"
    }
}

/// What the reading thread hands the blocks: the interval's table, or the
/// failure that ended reading.
private final class EventTally: @unchecked Sendable {
    struct State {
        var table: EventGroupTable
        var failure: String?
    }
    let state: Mutex<State>
    init(keys: [GroupKey]) { state = Mutex(State(table: EventGroupTable(keys: keys))) }
}

/// -E --group-by --interval.
func groupedEvents(_ inv: Invocation, _ options: GroupOptions, _ session: Session) throws(Failure) -> ExitCode {
    let keys = options.keys!
    let console = session.console
    let labelMap = keys.contains(.label) ? try session.labelMap() : nil
    let seconds = try LiveView.parseInterval(inv.own.interval ?? "")
    let listener = try openEventListener(inv, session)
    let tally = EventTally(keys: keys)
    // SIGINT and SIGTERM go to the main thread (LiveView's wait): blocked
    // here before the reader starts, which keeps them blocked.
    var stopSignals = sigset_t()
    sigemptyset(&stopSignals)
    sigaddset(&stopSignals, SIGINT)
    sigaddset(&stopSignals, SIGTERM)
    pthread_sigmask(SIG_BLOCK, &stopSignals, nil)
    let reader = UncheckedBox(listener)
    do {
        try WorkerThread.detached {
            var mask = sigset_t()
            pthread_sigmask(SIG_SETMASK, nil, &mask)
            while true {
                do {
                    _ = try reader.value.next(signalMask: mask, onMalformed: { _ in
                        tally.state.withLock { $0.table.malformed += 1 }
                    }) { event in
                        tally.state.withLock { $0.table.add(event.type, event.flow) }
                    }
                } catch let error as Errno where error == .noBufferSpace {
                    tally.state.withLock { $0.table.lost = true }
                } catch {
                    tally.state.withLock { $0.failure = "Operation failed: \(error)" }
                    return
                }
            }
        }
    } catch {
        throw .other("cannot start the event reader: \(error)")
    }
    let json = inv.output.contains(.json)
    let live = json ? LiveView.lines(interval: seconds, console: console) : LiveView(interval: seconds, console: console)
    return try live.run(header: nil) { tick throws(Failure) in
        let (table, failure) = tally.state.withLock { state in
            let taken = state.table
            state.table = EventGroupTable(keys: keys)
            return (taken, state.failure)
        }
        if let failure { throw .other(failure) }
        if json { return table.jsonLines(top: options.top, labelMap: labelMap, time: tick.time) }
        // The first block comes at once: it has seen no interval yet.
        let span = tick.number == 0 ? "events since start" : "events of the last \(formatFixed(tick.elapsed ?? seconds, decimals: 1)) s"
        return [span] + table.lines(top: options.top, labelMap: labelMap)
    }
}
