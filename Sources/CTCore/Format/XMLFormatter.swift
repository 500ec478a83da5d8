import Glibc

/// Writes flows as conntrack's `-o xml` does: a header, one `<flow>` element
/// per line, a footer.
///
/// What conntrack 1.4.7 prints, as observed by running it:
/// - both directions as `<meta direction="original">` / `"reply"` with
///   layer 3 (family number and name, addresses), layer 4 (protocol number
///   and name; ports for tcp, udp, udplite, sctp and dccp, 0 when absent;
///   GRE keys in hex; nothing for icmp, icmpv6 and other protocols), the
///   direction's zone and its counters;
/// - `<meta direction="independent">` when the entry has any of its
///   attributes, in this order: state (always by TCP's state names, also
///   for sctp and dccp; "NONE" past them), timeout, mark, labels (only with
///   a label map), secmark, secctx, zone, use, id (whatever -o id says),
///   `<assured/>`, `<unreplied/>`, `<timestamp>` (only with -o ktimestamp),
///   deltatime;
/// - `<when>` (the local time of printing) for events with -o timestamp;
/// - the helper last.
///
/// One deliberate difference: conntrack copies helper names, security
/// contexts and label names into the document as they are, so a `<` or `&`
/// in them gives broken XML. Here `&`, `<` and `>` are written as entity
/// references and control characters (illegal in XML 1.0) as U+FFFD, so the
/// output always parses; for the names the kernel and conntrack's label
/// file actually allow, the bytes are the same.
package struct XMLFormatter {
    package var options: OutputOptions
    /// Label names; nil when labels are not to be printed.
    package var labelMap: LabelMap?

    package init(options: OutputOptions, labelMap: LabelMap? = nil) {
        self.options = options
        self.labelMap = labelMap
    }

    /// The document's first two lines.
    package static func writeHeader(to out: OutputBuffer) {
        out.append("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<conntrack>\n")
    }

    /// The document's last line.
    package static func writeFooter(to out: OutputBuffer) {
        out.append("</conntrack>\n")
    }

    /// `<flow>`, with an event's type attribute (entries and expectations).
    static func appendFlowStart(_ event: EventType?, to out: OutputBuffer) {
        switch event {
        case nil: out.append("<flow>")
        case .new?: out.append("<flow type=\"new\">")
        case .update?: out.append("<flow type=\"update\">")
        case .destroy?: out.append("<flow type=\"destroy\">")
        }
    }

    /// Appends one `<flow>` element and a newline for `flow`; `event` gives
    /// its type attribute. `now` is the wall-clock second used for the
    /// deltatime of live entries and for `<when>`.
    package func write(_ flow: Flow, event: EventType? = nil, to out: OutputBuffer, now: Int) {
        Self.appendFlowStart(event, to: out)
        let proto = flow.proto ?? 0
        writeDirection(flow.orig ?? Tuple(), "original", flow.countersOrig, family: flow.family.rawValue, proto: proto, to: out)
        writeDirection(flow.reply ?? Tuple(), "reply", flow.countersReply, family: flow.family.rawValue, proto: proto, to: out)
        writeIndependent(flow, now: now, to: out)
        if event != nil, options.contains(.timestamp) {
            writeWhen(now, to: out)
        }
        if let helper = flow.helper {
            out.append("<helper>"); appendEscaped(helper, to: out); out.append("</helper>")
        }
        out.append("</flow>\n")
    }

    func writeDirection(_ t: Tuple, _ direction: StaticString, _ counters: Counters?,
                        family: UInt8, proto: UInt8, to out: OutputBuffer) {
        out.append("<meta direction=\""); out.append(direction); out.append("\">")
        out.append("<layer3 protonum=\""); out.append(decimal: UInt64(family))
        out.append("\" protoname=\""); out.append(Names.family(family)); out.append("\">")
        out.append("<src>"); appendAddress(t.src, family: family, to: out); out.append("</src>")
        out.append("<dst>"); appendAddress(t.dst, family: family, to: out); out.append("</dst>")
        out.append("</layer3>")
        out.append("<layer4 protonum=\""); out.append(decimal: UInt64(proto))
        out.append("\" protoname=\""); out.append(Names.proto(proto)); out.append("\">")
        appendProtocolFields(t, proto: proto, to: out)
        out.append("</layer4>")
        if let zone = t.zone {
            out.append("<zone>"); out.append(decimal: UInt64(zone)); out.append("</zone>")
        }
        if let c = counters {
            out.append("<counters><packets>"); out.append(decimal: c.packets)
            out.append("</packets><bytes>"); out.append(decimal: c.bytes)
            out.append("</bytes></counters>")
        }
        out.append("</meta>")
    }

    /// The layer 4 fields of `t` for `proto`: ports, GRE keys in hex, or
    /// nothing (icmp, icmpv6 and other protocols).
    func appendProtocolFields(_ t: Tuple, proto: UInt8, to out: OutputBuffer) {
        switch proto {
        case IPProto.tcp, IPProto.udp, IPProto.udplite, IPProto.sctp, IPProto.dccp:
            out.append("<sport>"); out.append(decimal: UInt64(t.srcPort ?? 0)); out.append("</sport>")
            out.append("<dport>"); out.append(decimal: UInt64(t.dstPort ?? 0)); out.append("</dport>")
        case IPProto.gre:
            out.append("<srckey>0x"); out.append(hex: UInt64(t.srcPort ?? 0)); out.append("</srckey>")
            out.append("<dstkey>0x"); out.append(hex: UInt64(t.dstPort ?? 0)); out.append("</dstkey>")
        default:
            break
        }
    }

    /// An address of the flow's family; an absent one as the family's zero
    /// address, nothing for an unknown family.
    func appendAddress(_ address: IPAddress?, family: UInt8, to out: OutputBuffer) {
        if let address {
            out.append(address: address)
        } else if family == Family.ipv4.rawValue {
            out.append("0.0.0.0")
        } else if family == Family.ipv6.rawValue {
            out.append("::")
        }
    }

    func writeIndependent(_ flow: Flow, now: Int, to out: OutputBuffer) {
        let state: UInt8? = switch flow.protoInfo {
        case .tcp(let t)?: t.state
        case .sctp(let s)?: s.state
        case .dccp(let d)?: d.state
        case nil: nil
        }
        let any = state != nil || flow.timeout != nil || flow.mark != nil || flow.labels != nil
            || flow.secmark != nil || flow.secctx != nil || flow.zone != nil || flow.use != nil
            || flow.id != nil || flow.status != nil || flow.timestampStart != nil || flow.timestampStop != nil
        guard any else { return }
        out.append("<meta direction=\"independent\">")
        if let state {
            out.append("<state>")
            out.append(Int(state) < Names.tcpStates.count ? Names.tcpStates[Int(state)] : "NONE")
            out.append("</state>")
        }
        element("timeout", flow.timeout, out)
        element("mark", flow.mark, out)
        if let map = labelMap, let labels = flow.labels {
            out.append("<labels>")
            for bit in labels.bits {
                guard let name = map.name(ofBit: bit) else { continue }
                out.append("<label>"); appendEscaped(name, to: out); out.append("</label>")
            }
            out.append("</labels>")
        }
        element("secmark", flow.secmark, out)
        if let secctx = flow.secctx {
            out.append("<secctx>"); appendEscaped(secctx, to: out); out.append("</secctx>")
        }
        element("zone", flow.zone, out)
        element("use", flow.use, out)
        element("id", flow.id, out)
        if let status = flow.status {
            if status.contains(.assured) { out.append("<assured/>") }
            if !status.contains(.seenReply) { out.append("<unreplied/>") }
        }
        if options.contains(.ktimestamp), let start = flow.timestampStart {
            out.append("<timestamp><start>"); out.append(decimal: start); out.append("</start>")
            if let stop = flow.timestampStop {
                out.append("<stop>"); out.append(decimal: stop); out.append("</stop>")
            }
            out.append("</timestamp>")
        }
        if let delta = flow.deltaTime(now: now) {
            out.append("<deltatime>"); out.append(decimal: delta); out.append("</deltatime>")
        }
        out.append("</meta>")
    }

    private func element<T: BinaryInteger>(_ name: StaticString, _ value: T?, _ out: OutputBuffer) {
        guard let value else { return }
        out.append(UInt8(ascii: "<")); out.append(name); out.append(UInt8(ascii: ">"))
        out.append(decimal: UInt64(value))
        out.append("</"); out.append(name); out.append(UInt8(ascii: ">"))
    }

    /// `<when>` with the local time: hour, minute and second (these two
    /// with two digits), weekday (1 for Sunday), day, month (1-12), year.
    func writeWhen(_ seconds: Int, to out: OutputBuffer) {
        var t = time_t(seconds)
        var tm = Glibc.tm()
        guard localtime_r(&t, &tm) != nil else { return }
        out.append("<when><hour>"); out.append(decimal: Int(tm.tm_hour))
        out.append("</hour><min>"); out.append(decimal: Int(tm.tm_min), digits: 2)
        out.append("</min><sec>"); out.append(decimal: Int(tm.tm_sec), digits: 2)
        out.append("</sec><wday>"); out.append(decimal: Int(tm.tm_wday) + 1)
        out.append("</wday><day>"); out.append(decimal: Int(tm.tm_mday))
        out.append("</day><month>"); out.append(decimal: Int(tm.tm_mon) + 1)
        out.append("</month><year>"); out.append(decimal: Int(tm.tm_year) + 1900)
        out.append("</year></when>")
    }
}

extension XMLFormatter {
    /// Appends `text` as XML character data: `&`, `<` and `>` as entity
    /// references, control characters other than tab as U+FFFD.
    package func appendEscaped(_ text: String, to out: OutputBuffer) {
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "&"): out.append("&amp;")
            case UInt8(ascii: "<"): out.append("&lt;")
            case UInt8(ascii: ">"): out.append("&gt;")
            case 0x09: out.append(byte)
            case 0x00..<0x20: out.append("\u{FFFD}")
            default: out.append(byte)
            }
        }
    }
}
