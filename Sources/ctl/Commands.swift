import CTCore
import Glibc

/// Runs a parsed, validated command and returns the exit code.
func run(_ inv: Invocation) -> ExitCode {
    switch inv.command {
    case nil, .help?:
        Console.out.append(usage)
        Console.flushOut()
        return .ok
    case .version?:
        Console.out.append("ctl v\(version) (conntrack 1.4.7 compatible)\n")
        Console.flushOut()
        return .ok
    case .list?: return list(inv)
    case .count?: return count(inv)
    case .stats?: return stats(inv)
    case .flush?: return flush(inv)
    default: return .failure
    }
}

/// Opens the conntrack socket or ends with conntrack's failure message.
private func open(_ command: Command) -> Conntrack {
    do {
        return try Conntrack()
    } catch {
        Console.fail(.other("Can't open handler: \(error)"))
    }
}

private func operationFailed(_ error: Error, _ command: Command) -> String {
    if let errno = error as? Errno { return "Operation failed: \(describe(errno, command: command))" }
    return "Operation failed: \(error)"
}

/// -L: one line per entry, streamed as the dump arrives.
private func list(_ inv: Invocation) -> ExitCode {
    var labelMap: LabelMap? = nil
    if inv.output.contains(.labels) {
        do {
            labelMap = try LabelMap.load()
        } catch {
            Console.raw("nfct_labelmap_new: \(error)")
        }
    }
    let formatter = TextFormatter(options: inv.output, labelMap: labelMap)
    let ct = open(.list)
    let out = Console.out
    var shown = 0
    let now = Int(time(nil))
    do {
        try ct.dump(family: inv.family) { flow in
            formatter.write(flow, to: out, now: now)
            shown += 1
            try out.flushIfFull()
        }
    } catch let error as OutputError {
        Console.handle(error)
    } catch {
        Console.message(operationFailed(error, .list))
        return .failure
    }
    Console.flushOut()
    var code = ExitCode.ok
    for problem in ct.malformed {
        Console.message("skipped a \(problem)")
        code = .failure
    }
    Console.message("\(shown) flow entries have been shown.")
    return code
}

/// -C: the kernel's entry count; /proc when ctnetlink refuses.
private func count(_ inv: Invocation) -> ExitCode {
    let ct = open(.count)
    do {
        let n = try ct.count()
        Console.out.append("\(n)\n")
        Console.flushOut()
        return .ok
    } catch {
        Console.message(operationFailed(error, .count))
        if let text = try? readTextFile("/proc/sys/net/netfilter/nf_conntrack_count"),
           let n = Int(text.trimmingCharacters(in: " \n")) {
            Console.out.append("\(n)\n")
            Console.flushOut()
        }
        return .failure
    }
}

/// -S: per-CPU statistics; /proc/net/stat/nf_conntrack when ctnetlink refuses.
private func stats(_ inv: Invocation) -> ExitCode {
    let ct = open(.stats)
    do {
        try ct.cpuStatistics { stats in
            TextFormatter.write(stats, to: Console.out)
        }
        Console.flushOut()
        return .ok
    } catch let error as OutputError {
        Console.handle(error)
    } catch {
        Console.out.removeAllPending()
        Console.message(operationFailed(error, .stats))
        if let text = try? readTextFile("/proc/net/stat/nf_conntrack") {
            writeProcStats(text, to: Console.out)
            Console.flushOut()
        }
        return .failure
    }
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
private func flush(_ inv: Invocation) -> ExitCode {
    if inv.family != nil, !Conntrack.kernelFiltersFlushByFamily {
        Console.fail(.other("flushing one family needs Linux 5.0 or later; this kernel would flush every family"))
    }
    let ct = open(.flush)
    do {
        try ct.flush(family: inv.family)
        Console.message("connection tracking table has been emptied.")
        return .ok
    } catch {
        // conntrack reports the flush and then the failure; so does ctl.
        Console.message("connection tracking table has been emptied.")
        Console.message(operationFailed(error, .flush))
        return .failure
    }
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

Commands:
  -L, --dump [TABLE]          list entries
  -G, --get [TABLE]           show one entry
  -D, --delete [TABLE]        delete entries
  -I, --create [TABLE]        create an entry
  -A, --add [TABLE]           add an entry (no error if it exists)
  -U, --update [TABLE]        change entries
  -E, --event [TABLE]         watch events
  -F, --flush [TABLE]         delete all entries (with -f: of one family)
  -C, --counter [TABLE]       count entries
  -S, --stats                 per-CPU statistics
  -R, --load-file FILE        run the commands in FILE (- for stdin)
  -h, --help                  this text
  -V, --version               version

Tables: conntrack (default), expect, dying, unconfirmed

Output:
  -o, --output FMT[,FMT...]   extended, id, labels, ktimestamp, timestamp,
                              userspace, xml, save
  -f, --family ipv4|ipv6      one layer 3 family only

Selectors and parameters:
  -s, --src, --orig-src ADDR  original source address
  -d, --dst, --orig-dst ADDR  original destination address
  -r, --reply-src ADDR        reply source address
  -q, --reply-dst ADDR        reply destination address
  -p, --protonum PROTO        layer 4 protocol (name or number); enables
                              --sport, --dport, --state, ... for it
  -m, --mark MARK[/MASK]      connection mark
  -c, --secmark SECMARK       security mark
  -u, --status FLAG[,...]     status flags, e.g. ASSURED
  -w, --zone ZONE             zone; --orig-zone, --reply-zone per direction
  -n, --src-nat [ADDR]        source NAT; -g, --dst-nat; -j, --any-nat
  -l, --label LABEL[,...]     connection labels; --label-add, --label-del
  -t, --timeout SECONDS       timeout
  -z, --zero                  zero counters while listing
  -e, --event-mask MASK       NEW, UPDATES, DESTROY, ALL
  -b, --buffer-size BYTES     event socket receive buffer
  --mask-src, --mask-dst ADDR address masks

Exit status: 0 success, 1 failure, 2 bad parameters.

"""
