import Glibc

/// Output options (`-o`), as conntrack names them.
package struct OutputOptions: OptionSet, Sendable {
    package let rawValue: UInt32
    package init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `[.a, .b]` without SetAlgebra's generic initialiser, whose
    /// associated-type lookup scans every protocol conformance of the
    /// binary the first time (a cost at each start of ctl).
    package init(arrayLiteral elements: OutputOptions...) {
        rawValue = elements.reduce(0) { $0 | $1.rawValue }
    }
    package static let extended = OutputOptions(rawValue: 1 << 0)    // -o extended
    package static let xml = OutputOptions(rawValue: 1 << 1)         // -o xml
    package static let timestamp = OutputOptions(rawValue: 1 << 2)   // -o timestamp
    package static let id = OutputOptions(rawValue: 1 << 3)          // -o id
    package static let ktimestamp = OutputOptions(rawValue: 1 << 4)  // -o ktimestamp
    package static let labels = OutputOptions(rawValue: 1 << 5)      // -o labels
    package static let save = OutputOptions(rawValue: 1 << 6)        // -o save
    package static let userspace = OutputOptions(rawValue: 1 << 7)   // -o userspace
    package static let json = OutputOptions(rawValue: 1 << 8)        // -o json (ctl's own)
    package static let metrics = OutputOptions(rawValue: 1 << 9)     // -o metrics (ctl's own: -S, -C, --group-by)
}

/// Writes flows in conntrack's one-line text format.
package struct TextFormatter {
    package var options: OutputOptions
    /// Label names; nil when labels are not to be printed.
    package var labelMap: LabelMap?

    package init(options: OutputOptions, labelMap: LabelMap? = nil) {
        self.options = options
        self.labelMap = labelMap
    }

    /// Appends one line for `flow` (with its newline) to `out`.
    /// `now` is the wall-clock second used for `delta-time` of live entries.
    package func write(_ flow: Flow, to out: OutputBuffer, now: Int) {
        let proto = flow.proto ?? 0
        if options.contains(.extended) {
            out.append(Names.family(flow.family.rawValue), paddedTo: 8)
            out.append(UInt8(ascii: " "))
            out.append(decimal: UInt64(flow.family.rawValue))
            out.append(UInt8(ascii: " "))
        }
        out.append(Names.proto(proto), paddedTo: 8)
        out.append(UInt8(ascii: " "))
        out.append(decimal: UInt64(proto))
        out.append(UInt8(ascii: " "))
        if let timeout = flow.timeout {
            out.append(decimal: UInt64(timeout))
            out.append(UInt8(ascii: " "))
        }
        if let info = flow.protoInfo, let state = Names.state(info) {
            out.append(state)
            out.append(UInt8(ascii: " "))
        }
        let status = flow.status
        if let orig = flow.orig {
            write(orig, direction: "orig", to: out)
        }
        if let c = flow.countersOrig { write(c, to: out) }
        if let status, !status.contains(.seenReply) { out.append("[UNREPLIED] ") }
        if let reply = flow.reply {
            write(reply, direction: "reply", to: out)
        }
        if let c = flow.countersReply { write(c, to: out) }
        if let status {
            if status.contains(.hwOffload) {
                out.append("[HW_OFFLOAD] ")
            } else if status.contains(.offload) {
                out.append("[OFFLOAD] ")
            }
            if status.contains(.assured) { out.append("[ASSURED] ") }
        }
        if let mark = flow.mark { out.append("mark="); out.append(decimal: UInt64(mark)); out.append(UInt8(ascii: " ")) }
        if let secmark = flow.secmark { out.append("secmark="); out.append(decimal: UInt64(secmark)); out.append(UInt8(ascii: " ")) }
        if let secctx = flow.secctx { out.append("secctx="); out.append(secctx); out.append(UInt8(ascii: " ")) }
        if let zone = flow.zone { out.append("zone="); out.append(decimal: UInt64(zone)); out.append(UInt8(ascii: " ")) }
        if let delta = flow.deltaTime(now: now) {
            out.append("delta-time="); out.append(decimal: delta); out.append(UInt8(ascii: " "))
        }
        if options.contains(.ktimestamp) {
            if let start = flow.timestampStart {
                out.append("[start="); appendTime(Int(start / 1_000_000_000), to: out); out.append("] ")
            }
            if let stop = flow.timestampStop {
                out.append("[stop="); appendTime(Int(stop / 1_000_000_000), to: out); out.append("] ")
            }
        }
        if let helper = flow.helper { out.append("helper="); out.append(helper); out.append(UInt8(ascii: " ")) }
        if let use = flow.use { out.append("use="); out.append(decimal: UInt64(use)); out.append(UInt8(ascii: " ")) }
        if options.contains(.id), let id = flow.id { out.append("id="); out.append(decimal: UInt64(id)); out.append(UInt8(ascii: " ")) }
        if let map = labelMap, let labels = flow.labels {
            writeLabels(labels, map: map, to: out)
        }
        // The line's last separator becomes its newline.
        if out.last == UInt8(ascii: " ") { out.dropLast() }
        out.append(UInt8(ascii: "\n"))
    }

    func write(_ t: Tuple, direction: StaticString, to out: OutputBuffer) {
        write(t, src: "src=", dst: "dst=", to: out)
        if let zone = t.zone {
            out.append("zone-"); out.append(direction); out.append(UInt8(ascii: "="))
            out.append(decimal: UInt64(zone)); out.append(UInt8(ascii: " "))
        }
    }

    /// A tuple's addresses, under the names `src` and `dst`, and its
    /// protocol's fields, each followed by a space.
    func write(_ t: Tuple, src srcName: StaticString, dst dstName: StaticString, to out: OutputBuffer) {
        if let src = t.src { out.append(srcName); out.append(address: src); out.append(UInt8(ascii: " ")) }
        if let dst = t.dst { out.append(dstName); out.append(address: dst); out.append(UInt8(ascii: " ")) }
        switch t.proto ?? 0 {
        case IPProto.tcp, IPProto.udp, IPProto.udplite, IPProto.sctp, IPProto.dccp:
            out.append("sport="); out.append(decimal: UInt64(t.srcPort ?? 0))
            out.append(" dport="); out.append(decimal: UInt64(t.dstPort ?? 0))
            out.append(UInt8(ascii: " "))
        case IPProto.icmp, IPProto.icmpv6:
            out.append("type="); out.append(decimal: UInt64(t.icmpType ?? 0))
            out.append(" code="); out.append(decimal: UInt64(t.icmpCode ?? 0))
            out.append(" id="); out.append(decimal: UInt64(t.icmpID ?? 0))
            out.append(UInt8(ascii: " "))
        case IPProto.gre:
            out.append("srckey=0x"); out.append(hex: UInt64(t.srcPort ?? 0))
            out.append(" dstkey=0x"); out.append(hex: UInt64(t.dstPort ?? 0))
            out.append(UInt8(ascii: " "))
        default:
            break
        }
    }

    func write(_ c: Counters, to out: OutputBuffer) {
        out.append("packets="); out.append(decimal: c.packets)
        out.append(" bytes="); out.append(decimal: c.bytes)
        out.append(UInt8(ascii: " "))
    }

    func writeLabels(_ labels: Labels, map: LabelMap, to out: OutputBuffer) {
        // conntrack writes "labels=" and "NAME," per named bit, then drops
        // the last character: with no named bit set, that is the "=".
        out.append("labels=")
        for bit in labels.bits {
            guard let name = map.name(ofBit: bit) else { continue }
            out.append(name)
            out.append(UInt8(ascii: ","))
        }
        out.dropLast()
        out.append(UInt8(ascii: " "))
    }

    /// ctime(3)-style local time without the newline: "Mon Nov 23 18:15:38 2026".
    func appendTime(_ seconds: Int, to out: OutputBuffer) {
        var t = time_t(seconds)
        var tm = Glibc.tm()
        guard localtime_r(&t, &tm) != nil else { out.append(decimal: seconds); return }
        let days: [StaticString] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months: [StaticString] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        out.append(days[Int(tm.tm_wday) % 7]); out.append(UInt8(ascii: " "))
        out.append(months[Int(tm.tm_mon) % 12]); out.append(UInt8(ascii: " "))
        if tm.tm_mday < 10 { out.append(UInt8(ascii: " ")) }
        out.append(decimal: Int(tm.tm_mday)); out.append(UInt8(ascii: " "))
        out.append(decimal: Int(tm.tm_hour), digits: 2); out.append(UInt8(ascii: ":"))
        out.append(decimal: Int(tm.tm_min), digits: 2); out.append(UInt8(ascii: ":"))
        out.append(decimal: Int(tm.tm_sec), digits: 2); out.append(UInt8(ascii: " "))
        out.append(decimal: Int(tm.tm_year) + 1900)
    }
}

extension TextFormatter {
    /// One `-S` line: "cpu=N   \tname=value name=value ... ".
    package static func write(_ stats: CPUStatistics, to out: OutputBuffer) {
        write(cpu: stats.cpu, stats.counters, to: out)
    }

    /// One `-S expect` line: "cpu=N   \texpect_new=V expect_create=V expect_delete=V ".
    package static func write(_ stats: ExpectationStatistics, to out: OutputBuffer) {
        write(cpu: stats.cpu, stats.counters, to: out)
    }

    static func write(cpu: Int, _ counters: [(name: String, value: UInt32)], to out: OutputBuffer) {
        out.append("cpu=")
        let before = out.pendingCount
        out.append(decimal: UInt64(cpu))
        out.append(repeating: UInt8(ascii: " "), count: 4 - (out.pendingCount - before))
        out.append(UInt8(ascii: "\t"))
        for (name, value) in counters {
            out.append(name); out.append(UInt8(ascii: "=")); out.append(decimal: UInt64(value)); out.append(UInt8(ascii: " "))
        }
        out.append(UInt8(ascii: "\n"))
    }
}
