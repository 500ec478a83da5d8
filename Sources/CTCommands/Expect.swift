import CTCore
import Glibc

// The expectation table (`expect`) and the dying and unconfirmed lists,
// as conntrack 1.4.7 handles them:
// - every expectation command but -E works on one family, IPv4 unless -f
//   (or an address) says otherwise, so -L expect lists IPv4 expectations;
// - -L prints "N expectations have been shown." and exits 0; -D prints
//   "0 expectations have been shown." and exits 1 even when it deleted
//   (conntrack never counts the delete); -G, -I, -C and -S print no summary;
// - -o xml and -o timestamp change the listing, other -o values nothing;
//   ctl's -o json writes one object per expectation (with -o timestamp a
//   "time" key).

/// Prints expectations as they come, counting them.
final class ExpectationPrinter {
    let formatter: ExpectFormatter
    let xml: Bool
    /// Set for -o json.
    let json: JSONFormatter?
    let timestamps: Bool
    let xmlFooter: Bool
    private var headerWritten = false
    let out: OutputBuffer
    var count = 0

    init(options: OutputOptions, xmlFooter: Bool, out: OutputBuffer) {
        self.out = out
        formatter = ExpectFormatter(options: options)
        xml = options.contains(.xml)
        json = options.contains(.json) ? JSONFormatter(options: options) : nil
        timestamps = options.contains(.timestamp)
        self.xmlFooter = xmlFooter
    }

    func print(_ e: Expectation, event: EventType? = nil) throws {
        if let json {
            var header = JSONFormatter.Header(event: event)
            if timestamps { header.time = wallClock() }
            json.write(e, header: header, to: out)
        } else if xml {
            if !headerWritten {
                ExpectFormatter.writeXMLHeader(to: out)
                headerWritten = true
            }
            formatter.writeXML(e, event: event, to: out, now: Int(time(nil)))
        } else {
            if timestamps {
                let clock = wallClock()
                ExpectFormatter.writeTimestamp(seconds: clock.seconds, microseconds: clock.microseconds, to: out)
            }
            formatter.write(e, event: event, to: out)
        }
        count += 1
        try out.flushIfFull()
    }

    /// Ends the XML document if one was begun and this command ends it.
    func finish() {
        if xmlFooter, headerWritten { ExpectFormatter.writeXMLFooter(to: out) }
    }
}

/// The expectation table's commands.
func runExpect(_ inv: Invocation, _ session: Session) throws(Failure) -> ExitCode {
    let console = session.console
    // conntrack's default family for everything but the conntrack table's
    // listing commands.
    let family = inv.selection.family ?? .ipv4
    switch inv.command {
    case .list?:
        let printer = ExpectationPrinter(options: inv.output, xmlFooter: true, out: console.out)
        let ct = try session.engine()
        let ok = try expectationRequest(ct, .list, console, before: { printer.finish() }) {
            try ct.dumpExpectations(family: family) { try printer.print($0) }
        }
        guard ok else { return .failure }
        try console.summary("\(printer.count) expectations have been shown.")
        return .ok
    case .get?:
        let printer = ExpectationPrinter(options: inv.output, xmlFooter: false, out: console.out)
        let ct = try session.engine()
        let ok = try expectationRequest(ct, .get, console) {
            if let e = try ct.getExpectation(family: family, tuple: lookupTuple(inv)) { try printer.print(e) }
        }
        return ok ? .ok : .failure
    case .delete?:
        let ct = try session.engine()
        let ok = try expectationRequest(ct, .delete, console) {
            try ct.deleteExpectation(family: family, tuple: lookupTuple(inv))
        }
        guard ok else { return .failure }
        // conntrack's summary and exit code 1 even when it deleted (-R
        // refuses expectation lines, so this is never a -R line).
        try console.summary("0 expectations have been shown.")
        return .failure
    case .create?:
        let ct = try session.engine()
        let ok = try expectationRequest(ct, .create, console) {
            try ct.createExpectation(family: family, master: lookupTuple(inv), expected: expectedTuple(inv),
                                     mask: maskTuple(inv), timeout: inv.selection.selector.timeout)
        }
        return ok ? .ok : .failure
    case .flush?:
        let ct = try session.engine()
        let ok = try expectationRequest(ct, .flush, console, before: { () throws(Failure) in
            try console.message("expectation table has been emptied.")
        }) {
            try ct.flushExpectations(family: family)
        }
        return ok ? .ok : .failure
    case .count?:
        let ct = try session.engine()
        var n = 0
        // conntrack prints the count even when the dump failed.
        let ok = try expectationRequest(ct, .count, console, before: { () throws(Failure) in
            console.out.append("\(n)\n")
            try console.flushOut()
        }) {
            try ct.dumpExpectations(family: family) { _ in n += 1 }
        }
        return ok ? .ok : .failure
    case .stats?:
        let ct = try session.engine()
        do {
            try session.refuseStatisticsIfLacking()
            try ct.expectationStatistics { TextFormatter.write(ExpectationStatistics($0), to: console.out) }
        } catch let error as OutputError {
            throw .output(error)
        } catch {
            return try statisticsFallback(operationFailed(error, .stats, table: .expect), console)
        }
        try console.flushOut()
        return .ok
    case .event?:
        return try expectationEvents(inv, session)
    default:
        return .ok
    }
}

/// Runs one expectation request, then `before` (what conntrack prints
/// whether or not the request failed), skipped-message reports, and conntrack's
/// "Operation failed" for an error. Returns whether it went well.
private func expectationRequest(_ ct: CTSession, _ command: Command, _ console: Console,
                                before: () throws(Failure) -> Void = {},
                                _ body: () throws -> Void) throws(Failure) -> Bool {
    var failure: Error? = nil
    do {
        try body()
    } catch let error as OutputError {
        throw .output(error)
    } catch {
        failure = error
    }
    try console.flushOut()
    try before()
    for problem in ct.malformed { try console.message("skipped a \(problem)") }
    if let failure {
        try console.error(operationFailed(failure, command, table: .expect))
        return false
    }
    return ct.malformed.isEmpty
}


/// The tuple -s, -d, -p and the port options give (the master of -I, the
/// expected connection of -G and -D), with what conntrack's library always
/// sends for the protocol: both ports, or the ICMP type, code and id.
private func lookupTuple(_ inv: Invocation) -> Tuple {
    let sel = inv.selection.selector
    return tuple(inv, sel.origSrc?.address, sel.origDst?.address,
                 sel.origSrcPort ?? inv.selection.greSrcKey, sel.origDstPort ?? inv.selection.greDstKey)
}

/// -I expect's expected connection: --tuple-src, --tuple-dst and the
/// protocol's tuple ports. It has -p's protocol; conntrack 1.4.7 puts a
/// byte of the port there instead (an upstream bug, fixed after 1.4.8),
/// which makes an expectation no connection can match.
private func expectedTuple(_ inv: Invocation) -> Tuple {
    tuple(inv, inv.expectation.src, inv.expectation.dst, inv.expectation.srcPort, inv.expectation.dstPort)
}

/// -I expect's mask: --mask-src, --mask-dst and the protocol's mask ports.
private func maskTuple(_ inv: Invocation) -> Tuple {
    tuple(inv, inv.expectation.maskSrc, inv.expectation.maskDst, inv.expectation.maskSrcPort, inv.expectation.maskDstPort)
}

private func tuple(_ inv: Invocation, _ src: IPAddress?, _ dst: IPAddress?,
                   _ srcPort: UInt16?, _ dstPort: UInt16?) -> Tuple {
    var t = Tuple()
    t.src = src
    t.dst = dst
    t.proto = inv.selection.selector.proto ?? 0
    fillProtocolFields(&t, srcPort: srcPort, dstPort: dstPort)
    return t
}

private func fillProtocolFields(_ t: inout Tuple, srcPort: UInt16?, dstPort: UInt16?) {
    switch t.proto ?? 0 {
    case IPProto.icmp, IPProto.icmpv6:
        t.icmpType = 0
        t.icmpCode = 0
        t.icmpID = 0
    case let p where IPProto.hasPorts(p) || p == IPProto.gre:
        t.srcPort = srcPort ?? 0
        t.dstPort = dstPort ?? 0
    default:
        break
    }
}
