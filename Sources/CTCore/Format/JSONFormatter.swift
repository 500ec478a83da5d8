/// Writes flows and expectations as JSON (`-o json`): one object per entry
/// on a line of its own (NDJSON), so `ctl -L -o json | jq` and line-by-line
/// stream consumers both work. Written straight into the OutputBuffer,
/// without Foundation, so a large listing costs about what the text does.
///
/// Schema (keys in this order; an attribute the kernel did not send is a
/// key left out, never a zero):
///
/// Connection entry:
///
///     {"family":"ipv4",                         "ipv4", "ipv6" or "unknown"
///      "protocol":{"name":"tcp","number":6},    name as the text format prints it
///      "original":TUPLE,"reply":TUPLE,
///      "state":"ESTABLISHED",                   tcp, sctp or dccp state name
///      "timeout":431999,                        seconds
///      "status":["SEEN_REPLY","ASSURED"],       every set IPS_* bit, in bit order
///      "mark":0,"secmark":0,"secctx":"...","zone":7,"use":1,"id":123,
///      "helper":"ftp",
///      "labels":["name"],                       with -o labels or -l: the names
///                                               the label map gives set bits
///      "label_bits":[1,100],                    every set label bit, always
///      "timestamp":{"start":NS,"stop":NS},      with -o ktimestamp
///      "delta_time":S}                          when the text prints delta-time
///
/// TUPLE: `{"src":"10.0.0.1","dst":"10.0.0.2",` then the protocol's fields
/// (`"sport","dport"` for tcp, udp, udplite, sctp and dccp; `"type","code",
/// "id"` for icmp and icmpv6; `"srckey","dstkey"` for gre; all numbers),
/// `"zone":N` (the direction's zone) and
/// `"counters":{"packets":N,"bytes":N}` (the direction's counters).
///
/// Status names: EXPECTED, SEEN_REPLY, ASSURED, CONFIRMED, SRC_NAT,
/// DST_NAT, SEQ_ADJUST, SRC_NAT_DONE, DST_NAT_DONE, DYING, FIXED_TIMEOUT,
/// TEMPLATE, UNTRACKED, HELPER, OFFLOAD, HW_OFFLOAD; other bits as "BIT_N".
/// The id is written whenever the kernel sent it (`-o id` changes nothing).
///
/// Expectation:
///
///     {"family":"ipv4","protocol":{"name":"tcp","number":6},
///      "expected":TUPLE,"mask":TUPLE,"master":TUPLE,   (no zone, no counters)
///      "timeout":N,"id":N,"helper":"ftp","zone":N,
///      "flags":["PERMANENT","INACTIVE","USERSPACE"],   other bits as "BIT_N"
///      "class":N,"nat":{"direction":N,"tuple":TUPLE},"function":"nat-follow-master"}
///
/// Events (-E) and -o timestamp put these keys first: `"event":"new"`
/// ("new", "update" or "destroy"), `"time":1700000000.123456` (the wall
/// clock when the line was written, with -o timestamp), and for a change a
/// process made `"portid":N` and, while it still has its socket,
/// `"progname":"..."`.
///
/// Strings are escaped per RFC 8259: `"` and `\` with a backslash, control
/// characters as `\u00XX`; everything else is copied as UTF-8. (Names come
/// from the kernel and the label file decoded as UTF-8, with each invalid
/// byte sequence replaced by U+FFFD, so the output is always valid UTF-8.)
/// Integers are exact decimals: nanosecond timestamps and 64-bit counters
/// can exceed 2^53, which readers that hold numbers as doubles round.
package struct JSONFormatter {
    package var options: OutputOptions
    /// Label names; nil when names are not to be printed (`label_bits` is
    /// written either way).
    package var labelMap: LabelMap?

    package init(options: OutputOptions, labelMap: LabelMap? = nil) {
        self.options = options
        self.labelMap = labelMap
    }

    /// The keys an event, or -o timestamp, puts before the entry's own.
    package struct Header: Sendable {
        package var event: EventType?
        /// Wall-clock time of printing: seconds and microseconds.
        package var time: (seconds: Int, microseconds: Int)?
        /// The netlink port of the process behind the event; nil or 0 for none.
        package var portID: UInt32?
        package var programName: String?
        /// The network namespace the entry is in (ctl's --all-netns).
        package var netns: String?

        package init(event: EventType? = nil, time: (seconds: Int, microseconds: Int)? = nil,
                    portID: UInt32? = nil, programName: String? = nil, netns: String? = nil) {
            self.event = event
            self.time = time
            self.portID = portID
            self.programName = programName
            self.netns = netns
        }
    }

    // MARK: entries

    /// Appends one object and a newline for `flow`. `now` is the
    /// wall-clock second for the `delta_time` of live entries.
    package func write(_ flow: Flow, header: Header? = nil, to out: OutputBuffer, now: Int) {
        out.append(UInt8(ascii: "{"))
        if let header { Self.write(header, to: out) }
        out.append("\"family\":\""); out.append(Names.family(flow.family.rawValue)); out.append(UInt8(ascii: "\""))
        let proto = flow.proto
        if let proto { Self.writeProtocol(proto, to: out) }
        if let t = flow.orig {
            out.append(",\"original\":")
            Self.write(t, proto: proto, counters: flow.countersOrig, zone: true, to: out)
        }
        if let t = flow.reply {
            out.append(",\"reply\":")
            Self.write(t, proto: proto, counters: flow.countersReply, zone: true, to: out)
        }
        if let info = flow.protoInfo, let state = Names.state(info) {
            out.append(",\"state\":\""); out.append(state); out.append(UInt8(ascii: "\""))
        }
        if let v = flow.timeout { out.append(",\"timeout\":"); out.append(decimal: UInt64(v)) }
        if let status = flow.status {
            out.append(",\"status\":")
            Self.writeBitNames(status.rawValue, names: Self.statusNames, to: out)
        }
        if let v = flow.mark { out.append(",\"mark\":"); out.append(decimal: UInt64(v)) }
        if let v = flow.secmark { out.append(",\"secmark\":"); out.append(decimal: UInt64(v)) }
        if let v = flow.secctx { out.append(",\"secctx\":"); Self.appendString(v, to: out) }
        if let v = flow.zone { out.append(",\"zone\":"); out.append(decimal: UInt64(v)) }
        if let v = flow.use { out.append(",\"use\":"); out.append(decimal: UInt64(v)) }
        if let v = flow.id { out.append(",\"id\":"); out.append(decimal: UInt64(v)) }
        if let v = flow.helper { out.append(",\"helper\":"); Self.appendString(v, to: out) }
        if let labels = flow.labels {
            if let map = labelMap {
                out.append(",\"labels\":[")
                var first = true
                for bit in labels.bits {
                    guard let name = map.name(ofBit: bit) else { continue }
                    if !first { out.append(UInt8(ascii: ",")) }
                    Self.appendString(name, to: out)
                    first = false
                }
                out.append(UInt8(ascii: "]"))
            }
            out.append(",\"label_bits\":[")
            var first = true
            for bit in labels.bits {
                if !first { out.append(UInt8(ascii: ",")) }
                out.append(decimal: UInt64(bit))
                first = false
            }
            out.append(UInt8(ascii: "]"))
        }
        if options.contains(.ktimestamp), flow.timestampStart != nil || flow.timestampStop != nil {
            out.append(",\"timestamp\":{")
            if let start = flow.timestampStart {
                out.append("\"start\":"); out.append(decimal: start)
            }
            if let stop = flow.timestampStop {
                if flow.timestampStart != nil { out.append(UInt8(ascii: ",")) }
                out.append("\"stop\":"); out.append(decimal: stop)
            }
            out.append(UInt8(ascii: "}"))
        }
        if let delta = flow.deltaTime(now: now) { out.append(",\"delta_time\":"); out.append(decimal: delta) }
        out.append("}\n")
    }

    /// Appends one object and a newline for the expectation `e`.
    package func write(_ e: Expectation, header: Header? = nil, to out: OutputBuffer) {
        out.append(UInt8(ascii: "{"))
        if let header { Self.write(header, to: out) }
        out.append("\"family\":\""); out.append(Names.family(e.family.rawValue)); out.append(UInt8(ascii: "\""))
        let proto = e.proto
        if let proto { Self.writeProtocol(proto, to: out) }
        if let t = e.tuple { out.append(",\"expected\":"); Self.write(t, proto: proto, counters: nil, zone: false, to: out) }
        if let t = e.mask { out.append(",\"mask\":"); Self.write(t, proto: proto, counters: nil, zone: false, to: out) }
        if let t = e.master {
            out.append(",\"master\":")
            Self.write(t, proto: t.proto ?? proto, counters: nil, zone: false, to: out)
        }
        if let v = e.timeout { out.append(",\"timeout\":"); out.append(decimal: UInt64(v)) }
        if let v = e.id { out.append(",\"id\":"); out.append(decimal: UInt64(v)) }
        if let v = e.helper { out.append(",\"helper\":"); Self.appendString(v, to: out) }
        if let v = e.zone { out.append(",\"zone\":"); out.append(decimal: UInt64(v)) }
        if let flags = e.flags {
            out.append(",\"flags\":")
            Self.writeBitNames(flags.rawValue, names: Names.expectFlags, to: out)
        }
        if let v = e.expectClass { out.append(",\"class\":"); out.append(decimal: UInt64(v)) }
        if let nat = e.nat {
            out.append(",\"nat\":{")
            var first = true
            if let dir = nat.direction {
                out.append("\"direction\":"); out.append(decimal: UInt64(dir))
                first = false
            }
            if let t = nat.tuple {
                if !first { out.append(UInt8(ascii: ",")) }
                out.append("\"tuple\":")
                Self.write(t, proto: t.proto ?? proto, counters: nil, zone: false, to: out)
            }
            out.append(UInt8(ascii: "}"))
        }
        if let v = e.function { out.append(",\"function\":"); Self.appendString(v, to: out) }
        out.append("}\n")
    }

    // MARK: parts

    /// The header keys, each followed by a comma (the family comes next).
    static func write(_ header: Header, to out: OutputBuffer) {
        if let netns = header.netns {
            out.append("\"netns\":"); appendString(netns, to: out); out.append(UInt8(ascii: ","))
        }
        switch header.event {
        case .new?: out.append("\"event\":\"new\",")
        case .update?: out.append("\"event\":\"update\",")
        case .destroy?: out.append("\"event\":\"destroy\",")
        case nil: break
        }
        if let time = header.time {
            out.append("\"time\":"); out.append(decimal: time.seconds)
            out.append(UInt8(ascii: ".")); out.append(decimal: time.microseconds, digits: 6)
            out.append(UInt8(ascii: ","))
        }
        if let port = header.portID, port != 0 {
            out.append("\"portid\":"); out.append(decimal: UInt64(port)); out.append(UInt8(ascii: ","))
            if let name = header.programName {
                out.append("\"progname\":"); appendString(name, to: out); out.append(UInt8(ascii: ","))
            }
        }
    }

    static func writeProtocol(_ proto: UInt8, to out: OutputBuffer) {
        out.append(",\"protocol\":{\"name\":\""); out.append(Names.proto(proto))
        out.append("\",\"number\":"); out.append(decimal: UInt64(proto))
        out.append(UInt8(ascii: "}"))
    }

    /// A tuple object: its addresses, the fields of its protocol (its own
    /// CTA_PROTO_NUM, else `proto`), and with `zone` its zone, then the
    /// direction's counters.
    static func write(_ t: Tuple, proto: UInt8?, counters: Counters?, zone: Bool, to out: OutputBuffer) {
        out.append(UInt8(ascii: "{"))
        // Each key but the first is preceded by a comma.
        var first = true
        @inline(__always) func key(_ name: StaticString) {
            if first {
                out.append(UInt8(ascii: "\""))
                first = false
            } else {
                out.append(",\"")
            }
            out.append(name)
            out.append("\":")
        }
        if let a = t.src { key("src"); out.append(UInt8(ascii: "\"")); out.append(address: a); out.append(UInt8(ascii: "\"")) }
        if let a = t.dst { key("dst"); out.append(UInt8(ascii: "\"")); out.append(address: a); out.append(UInt8(ascii: "\"")) }
        switch t.proto ?? proto ?? 0 {
        case IPProto.tcp, IPProto.udp, IPProto.udplite, IPProto.sctp, IPProto.dccp:
            if let v = t.srcPort { key("sport"); out.append(decimal: UInt64(v)) }
            if let v = t.dstPort { key("dport"); out.append(decimal: UInt64(v)) }
        case IPProto.icmp, IPProto.icmpv6:
            if let v = t.icmpType { key("type"); out.append(decimal: UInt64(v)) }
            if let v = t.icmpCode { key("code"); out.append(decimal: UInt64(v)) }
            if let v = t.icmpID { key("id"); out.append(decimal: UInt64(v)) }
        case IPProto.gre:
            if let v = t.srcPort { key("srckey"); out.append(decimal: UInt64(v)) }
            if let v = t.dstPort { key("dstkey"); out.append(decimal: UInt64(v)) }
        default:
            break
        }
        if zone, let v = t.zone { key("zone"); out.append(decimal: UInt64(v)) }
        if let c = counters {
            key("counters")
            out.append("{\"packets\":"); out.append(decimal: c.packets)
            out.append(",\"bytes\":"); out.append(decimal: c.bytes)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
    }

    /// IPS_* names by bit number.
    package static let statusNames: [StaticString] = [
        "EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED", "SRC_NAT", "DST_NAT", "SEQ_ADJUST",
        "SRC_NAT_DONE", "DST_NAT_DONE", "DYING", "FIXED_TIMEOUT", "TEMPLATE", "UNTRACKED",
        "HELPER", "OFFLOAD", "HW_OFFLOAD",
    ]


    /// An array of the names of the bits set in `value`, in bit order;
    /// bits without a name as "BIT_N".
    static func writeBitNames(_ value: UInt32, names: [StaticString], to out: OutputBuffer) {
        out.append(UInt8(ascii: "["))
        writeBitList(value, names: names, quoted: true, to: out)
        out.append(UInt8(ascii: "]"))
    }

    /// The names of the bits set in `value`, in bit order, separated by
    /// commas, each in quotes when `quoted`; bits without a name as "BIT_N".
    package static func writeBitList(_ value: UInt32, names: [StaticString], quoted: Bool, to out: OutputBuffer) {
        var rest = value
        var first = true
        while rest != 0 {
            let bit = rest.trailingZeroBitCount
            rest &= rest - 1
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            if quoted { out.append(UInt8(ascii: "\"")) }
            if bit < names.count {
                out.append(names[bit])
            } else {
                out.append("BIT_"); out.append(decimal: UInt64(bit))
            }
            if quoted { out.append(UInt8(ascii: "\"")) }
        }
    }

    /// Appends `text` as a JSON string (RFC 8259): in quotes, `"` and `\`
    /// escaped with a backslash, control characters (U+0000 to U+001F) as
    /// `\u00XX`, everything else as its UTF-8 bytes.
    package static func appendString(_ text: String, to out: OutputBuffer) {
        out.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            var start = 0
            for i in 0..<bytes.count {
                let b = bytes[i]
                guard b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") else { continue }
                if i > start { out.append(bytes: UnsafeBufferPointer(rebasing: bytes[start..<i])) }
                if b < 0x20 {
                    out.append("\\u00")
                    out.append(b >> 4 &+ 48)
                    let low = b & 0xf
                    out.append(low < 10 ? low &+ 48 : low &+ 87)
                } else {
                    out.append(UInt8(ascii: "\\"))
                    out.append(b)
                }
                start = i + 1
            }
            if bytes.count > start { out.append(bytes: UnsafeBufferPointer(rebasing: bytes[start..<bytes.count])) }
        }
        out.append(UInt8(ascii: "\""))
    }
}
