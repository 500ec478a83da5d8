import CTCore
import Glibc
import Synchronization

// -E: print conntrack events as they arrive, in conntrack's format, until
// SIGINT or SIGTERM; then "N flow events have been shown." and exit 0.

/// The receive buffer ctl asks for when -b is not given: room for a burst
/// of some 100,000 events (the kernel counts about 1 KiB per queued event
/// and doubles the size set). It is a limit, not an allocation: memory is
/// only used while events wait. conntrack keeps the system default
/// (rmem_default, usually 208 KiB), which a burst of a few hundred fills.
let defaultEventBuffer = 64 << 20

func events(_ inv: Invocation, _ session: Session) throws(Failure) -> ExitCode {
    let grouping = try GroupOptions(inv)
    if grouping.keys != nil { return try groupedEvents(inv, grouping, session) }
    let console = session.console
    let listener = try openEventListener(inv, session)
    let printer = try EventPrinter(inv, session)
    try eventLoop(console) { waitMask, onMalformed in
        _ = try listener.next(signalMask: waitMask, onMalformed: onMalformed) { event in
            try printer.print(event)
        }
    }
    printer.finish()
    try console.flushOut()
    try console.summary("\(printer.count) flow events have been shown.")
    return .ok
}

/// -E expect: expectation events until SIGINT or SIGTERM, then "N
/// expectation events have been shown." and exit 0. conntrack takes no
/// selector, event mask or buffer size here; ctl's buffer is its -E default.
func expectationEvents(_ inv: Invocation, _ session: Session) throws(Failure) -> ExitCode {
    let console = session.console
    let listener: ExpectationListener
    do {
        listener = try ExpectationListener()
    } catch {
        throw .other("Can't open handler")
    }
    try? listener.setReceiveBuffer(bytes: defaultEventBuffer)
    let printer = ExpectationPrinter(options: inv.output, xmlFooter: true, out: console.out)
    try eventLoop(console) { waitMask, onMalformed in
        _ = try listener.next(signalMask: waitMask, onMalformed: onMalformed) { type, expectation in
            try printer.print(expectation, event: type)
        }
    }
    printer.finish()
    try console.flushOut()
    try console.summary("\(printer.count) expectation events have been shown.")
    return .ok
}

/// The event socket of -E: bound to -e's groups (all when none), with
/// the kernel's prefilter of -E's selectors and -b's receive buffer (else
/// ctl's default), as conntrack reports each step.
func openEventListener(_ inv: Invocation, _ session: Session) throws(Failure) -> EventListener {
    let selector = try inv.selector(for: .event, session)
    let groups: EventGroups = inv.events.groups.isEmpty ? .all : inv.events.groups
    let bufferSize = inv.events.bufferSize
    let listener: EventListener
    do {
        // Socket filters are older than ctnetlink's events: every kernel
        // has them. CTL_KERNEL_LACKS=socket turns it off.
        listener = try EventListener(groups: groups, selector: selector,
                                     kernelFilter: session.capabilities.socketFilter, where: inv.quirkCheck)
    } catch {
        // conntrack's words when it cannot bind to the event groups.
        try session.console.raw("mnl_socket_bind: \(error)")
        throw .other("Can't open netlink socket")
    }
    do {
        try listener.setReceiveBuffer(bytes: bufferSize.map(Int.init) ?? defaultEventBuffer)
    } catch {
        // Only -b insists; the default is a wish.
        if bufferSize != nil { throw .other("cannot set the receive buffer: \(error)") }
    }
    if bufferSize != nil {
        try session.console.raw("NOTICE: Netlink socket buffer size has been set to \(listener.receiveBufferSize) bytes.")
    }
    return listener
}

/// Runs `receive` (one wait and whatever it brings; messages it skips go
/// to the reporter it is given) until SIGINT or SIGTERM. ENOBUFS gets
/// conntrack's warning and listening goes on; a reader that went away
/// ends ctl quietly; other failures end it with exit code 1.
private func eventLoop(_ console: Console,
                       _ receive: (sigset_t, (MalformedMessage) -> Void) throws -> Void) throws(Failure) {
    let waitMask = blockStopSignals()
    while !stopRequested.load(ordering: .relaxed) {
        // A skipped message's report that could not be written (stdout's
        // flush before it failed) ends the run once the wait's events are
        // handled.
        var reportFailure: Failure? = nil
        do {
            try receive(waitMask) { problem in
                guard reportFailure == nil else { return }
                do throws(Failure) {
                    try console.message("skipped a \(problem)")
                } catch {
                    reportFailure = error
                }
            }
        } catch let error as OutputError {
            throw .output(error)
        } catch let error as Errno where error == .noBufferSpace {
            try console.flushOut()
            try console.raw("""
                WARNING: We have hit ENOBUFS! We are losing events.
                This message means that the current netlink socket buffer size is too small.
                Please, check --buffer-size in conntrack(8) manpage.
                """)
        } catch {
            try console.flushOut()
            throw .other("Operation failed: \(error)")
        }
        if let reportFailure { throw reportFailure }
        // Whatever arrived is out before the next wait: a reader on a pipe
        // sees each event at once, a burst still goes out in large writes.
        try console.flushOut()
    }
}

/// Writes event lines: "[NEW]", "[UPDATE]" or "[DESTROY]" right-aligned in
/// nine columns, the entry as -L prints it, and for a change a process
/// made, " [USERSPACE] portid=N" with " progname=NAME" while that process
/// still has its socket.
final class EventPrinter {
    /// -o save prints "-A" lines for new entries, "-U" for updates, "-D"
    /// for destroyed ones, as conntrack writes them; -o xml `<flow
    /// type="...">` elements in a document begun before the first event and
    /// ended by `finish()`; -o json one object per event, its keys first.
    var formats: OutputFormats
    private var headerWritten = false
    let timestamps: Bool
    let out: OutputBuffer
    var count = 0
    private var names = ProcessNames()

    init(_ inv: Invocation, _ session: Session) throws(Failure) {
        formats = OutputFormats(inv.output, labelMap: try OutputFormats.labelMap(inv, session))
        timestamps = inv.output.contains(.timestamp)
        out = session.console.out
    }

    /// Ends the XML document if one was begun (on SIGINT or SIGTERM).
    func finish() {
        if headerWritten { XMLFormatter.writeFooter(to: out) }
    }

    func print(_ event: Event) throws {
        if let json = formats.json {
            var header = JSONFormatter.Header(event: event.type)
            if timestamps { header.time = eventTime(event.flow) }
            if event.portID != 0 {
                header.portID = event.portID
                header.programName = names.name(ofPort: event.portID)
            }
            json.write(event.flow, header: header, to: out, now: Int(time(nil)))
            count += 1
            try out.flushIfFull()
            return
        }
        if formats.save != nil {
            formats.save!.command = switch event.type {
            case .new: "-A"
            case .update: "-U"
            case .destroy: "-D"
            }
            formats.save!.write(event.flow, to: out)
        } else if let xml = formats.xml {
            if !headerWritten {
                XMLFormatter.writeHeader(to: out)
                headerWritten = true
            }
            xml.write(event.flow, event: event.type, to: out, now: Int(time(nil)))
        } else {
            if timestamps {
                let clock = eventTime(event.flow)
                out.append(UInt8(ascii: "["))
                out.append(decimal: clock.seconds)
                out.append(UInt8(ascii: "."))
                out.append(decimal: clock.microseconds, digits: 6)
                out.append("]\t")
            }
            out.append(event.type.label)
            formats.text.write(event.flow, to: out, now: Int(time(nil)))
        }
        if event.portID != 0 {
            out.dropLast()   // the newline
            out.append(" [USERSPACE] portid=")
            out.append(decimal: UInt64(event.portID))
            if let name = names.name(ofPort: event.portID) {
                out.append(" progname=")
                out.append(name)
            }
            out.append(UInt8(ascii: "\n"))
        }
        count += 1
        try out.flushIfFull()
    }
}

/// Finds the process behind a netlink port id, as conntrack does: the
/// NETLINK_NETFILTER socket with that port in /proc/net/netlink gives an
/// inode; the process with a descriptor for "socket:[inode]" (the port's
/// own pid first, then every process) gives its name from /proc/PID/stat.
///
/// Unlike conntrack, which reads /proc/net/netlink for every such event,
/// the socket list is read at most once per 10 ms and names are kept by
/// inode, so a burst of events from one process costs one lookup. (Whether
/// a short-lived process is still there when its event is printed is a
/// race for both tools.)
struct ProcessNames {
    private var sockets: [UInt32: UInt64] = [:]   // port id -> inode
    private var readAt = timespec()
    private var names: [UInt64: String?] = [:]    // inode -> process name

    mutating func name(ofPort port: UInt32) -> String? {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let age = (now.tv_sec - readAt.tv_sec) * 1_000_000_000 + (now.tv_nsec - readAt.tv_nsec)
        if age > 10_000_000 {
            sockets = Self.netfilterSockets()
            readAt = now
        }
        guard let inode = sockets[port] else { return nil }
        if let known = names[inode] { return known }
        let name = Self.owner(of: inode, likelyPID: port)
        if names.count > 4096 { names.removeAll() }
        names[inode] = name
        return name
    }

    /// Port id -> inode of every NETLINK_NETFILTER socket of this namespace.
    static func netfilterSockets() -> [UInt32: UInt64] {
        guard let bytes = try? readFileBytes("/proc/net/netlink") else { return [:] }
        var result: [UInt32: UInt64] = [:]
        // Columns: sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
        for line in bytes.split(separator: UInt8(ascii: "\n")).dropFirst() {
            let fields = line.split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") })
            guard fields.count >= 10, decimal(fields[1]) == 12 /* NETLINK_NETFILTER */,
                  let port = decimal(fields[2]), port <= UInt64(UInt32.max), let inode = decimal(fields[9]) else { continue }
            result[UInt32(port)] = inode
        }
        return result
    }

    /// The name of the process holding socket `inode`, if any.
    static func owner(of inode: UInt64, likelyPID: UInt32) -> String? {
        let target = "socket:[\(inode)]"
        if likelyPID > 0, likelyPID <= UInt32(Int32.max), holds(pid: "\(likelyPID)", target) {
            return commandName("\(likelyPID)")
        }
        guard let proc = opendir("/proc") else { return nil }
        defer { closedir(proc) }
        while let entry = readdir(proc) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard let first = name.utf8.first, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else { continue }
            if holds(pid: name, target) { return commandName(name) }
        }
        return nil
    }

    private static func holds(pid: String, _ target: String) -> Bool {
        let dir = "/proc/\(pid)/fd"
        guard let fds = opendir(dir) else { return false }
        defer { closedir(fds) }
        var link = [CChar](repeating: 0, count: 64)
        while let entry = readdir(fds) {
            let fd = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard fd.first != "." else { continue }
            let n = readlink("\(dir)/\(fd)", &link, link.count - 1)
            guard n > 0 else { continue }
            let text = link.withUnsafeBufferPointer { buffer in
                String(decoding: UnsafeRawBufferPointer(start: buffer.baseAddress, count: n), as: UTF8.self)
            }
            if text == target { return true }
        }
        return false
    }

    /// The command name from /proc/PID/stat: what stands between the first
    /// "(" and the last ")".
    private static func commandName(_ pid: String) -> String? {
        guard let bytes = try? readFileBytes("/proc/\(pid)/stat"),
              let open = bytes.firstIndex(of: UInt8(ascii: "(")),
              let close = bytes.lastIndex(of: UInt8(ascii: ")")), close > open else { return nil }
        return String(decoding: bytes[(open + 1)..<close], as: UTF8.self)
    }

    private static func decimal(_ field: ArraySlice<UInt8>) -> UInt64? {
        guard !field.isEmpty, field.count <= 19 else { return nil }
        var value: UInt64 = 0
        for b in field {
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + UInt64(b - UInt8(ascii: "0"))
        }
        return value
    }
}

/// The time -o timestamp gives an event: the kernel's event timestamp
/// (CTA_TIMESTAMP_EVENT, as conntrack 1.4.9 prefers it) when the kernel
/// sent one, else the wall clock now, as conntrack 1.4.7 prints it.
func eventTime(_ flow: Flow) -> (seconds: Int, microseconds: Int) {
    guard let ns = flow.eventTimestamp, ns > 0 else { return wallClock() }
    return (Int(ns / 1_000_000_000), Int(ns % 1_000_000_000 / 1000))
}
