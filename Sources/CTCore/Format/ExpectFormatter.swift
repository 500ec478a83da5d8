import Glibc

/// Writes expectations as conntrack 1.4.7 prints them, in its one-line
/// text format and as `-o xml`.
///
/// Text, as observed: the timeout, `proto=N`, the expected connection's
/// addresses and protocol fields, the mask's (`mask-src=`, `mask-dst=`)
/// and the master's (`master-src=`, `master-dst=`), each tuple's fields by
/// its own protocol; then the zone, the flags (`PERMANENT,INACTIVE,
/// USERSPACE`), `class=` and `helper=`. The NAT part (CTA_EXPECT_NAT) and
/// the expect function (CTA_EXPECT_FN) are not printed. `-o` options other
/// than timestamp and xml change nothing.
///
/// XML: `<flow>` with layer3 (expected, mask and master addresses),
/// layer4 (their ports) and `<meta>` (helper name, timeout, zone, class,
/// `<when>` with -o timestamp, one empty element per flag). The helper
/// name is escaped, as in XMLFormatter.
package struct ExpectFormatter {
    package var options: OutputOptions

    package init(options: OutputOptions) {
        self.options = options
    }

    /// The XML document's first two lines.
    package static func writeXMLHeader(to out: OutputBuffer) {
        out.append("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<expect>\n")
    }

    /// The XML document's last line.
    package static func writeXMLFooter(to out: OutputBuffer) {
        out.append("</expect>\n")
    }

    /// conntrack's `-o timestamp` prefix for expectations: seconds and
    /// microseconds left-aligned in fields of 8 and 6 ("[%-8ld.%-6ld]\t").
    package static func writeTimestamp(seconds: Int, microseconds: Int, to out: OutputBuffer) {
        out.append(UInt8(ascii: "["))
        let before = out.pendingCount
        out.append(decimal: seconds)
        out.append(repeating: UInt8(ascii: " "), count: 8 - (out.pendingCount - before))
        out.append(UInt8(ascii: "."))
        let middle = out.pendingCount
        out.append(decimal: microseconds)
        out.append(repeating: UInt8(ascii: " "), count: 6 - (out.pendingCount - middle))
        out.append("]\t")
    }

    /// Appends one line for `e` (with its newline); `event` gives the
    /// `[NEW]`-style prefix of events.
    package func write(_ e: Expectation, event: EventType? = nil, to out: OutputBuffer) {
        if let event { out.append(event.label) }
        out.append(decimal: UInt64(e.timeout ?? 0))
        out.append(" proto=")
        out.append(decimal: UInt64(e.tuple?.proto ?? 0))
        out.append(UInt8(ascii: " "))
        let text = TextFormatter(options: [])
        if let t = e.tuple { text.write(t, src: "src=", dst: "dst=", to: out) }
        if let t = e.mask { text.write(t, src: "mask-src=", dst: "mask-dst=", to: out) }
        if let t = e.master { text.write(t, src: "master-src=", dst: "master-dst=", to: out) }
        if let zone = e.zone { out.append("zone="); out.append(decimal: UInt64(zone)); out.append(UInt8(ascii: " ")) }
        if let flags = e.flags, !flags.intersection([.permanent, .inactive, .userspace]).isEmpty {
            var first = true
            for (bit, name) in Names.expectFlags.enumerated() where flags.rawValue & (1 << UInt32(bit)) != 0 {
                if !first { out.append(UInt8(ascii: ",")) }
                out.append(name)
                first = false
            }
            out.append(UInt8(ascii: " "))
        }
        if let c = e.expectClass { out.append("class="); out.append(decimal: UInt64(c)); out.append(UInt8(ascii: " ")) }
        if let helper = e.helper { out.append("helper="); out.append(helper); out.append(UInt8(ascii: " ")) }
        if out.last == UInt8(ascii: " ") { out.dropLast() }
        out.append(UInt8(ascii: "\n"))
    }

    /// Appends one `<flow>` element and a newline for `e`; `now` is the
    /// wall-clock second for `<when>`.
    package func writeXML(_ e: Expectation, event: EventType? = nil, to out: OutputBuffer, now: Int) {
        let xml = XMLFormatter(options: options)
        XMLFormatter.appendFlowStart(event, to: out)
        let family = e.family.rawValue
        let tuples: [(StaticString, Tuple)] = [("expected", e.tuple ?? Tuple()), ("mask", e.mask ?? Tuple()),
                                               ("master", e.master ?? Tuple())]
        out.append("<layer3 protonum=\""); out.append(decimal: UInt64(family))
        out.append("\" protoname=\""); out.append(Names.family(family)); out.append("\">")
        for (name, t) in tuples {
            out.append(UInt8(ascii: "<")); out.append(name); out.append(UInt8(ascii: ">"))
            out.append("<src>"); xml.appendAddress(t.src, family: family, to: out); out.append("</src>")
            out.append("<dst>"); xml.appendAddress(t.dst, family: family, to: out); out.append("</dst>")
            out.append("</"); out.append(name); out.append(UInt8(ascii: ">"))
        }
        out.append("</layer3>")
        let proto = e.tuple?.proto ?? 0
        out.append("<layer4 protonum=\""); out.append(decimal: UInt64(proto))
        out.append("\" protoname=\""); out.append(Names.proto(proto)); out.append("\">")
        for (name, t) in tuples {
            out.append(UInt8(ascii: "<")); out.append(name); out.append(UInt8(ascii: ">"))
            xml.appendProtocolFields(t, proto: t.proto ?? 0, to: out)
            out.append("</"); out.append(name); out.append(UInt8(ascii: ">"))
        }
        out.append("</layer4>")
        out.append("<meta>")
        if let helper = e.helper {
            out.append("<helper-name>"); xml.appendEscaped(helper, to: out); out.append("</helper-name>")
        }
        if let timeout = e.timeout { out.append("<timeout>"); out.append(decimal: UInt64(timeout)); out.append("</timeout>") }
        if let zone = e.zone { out.append("<zone>"); out.append(decimal: UInt64(zone)); out.append("</zone>") }
        if let c = e.expectClass { out.append("<class>"); out.append(decimal: UInt64(c)); out.append("</class>") }
        if options.contains(.timestamp) { xml.writeWhen(now, to: out) }
        if let flags = e.flags {
            if flags.contains(.permanent) { out.append("<permanent/>") }
            if flags.contains(.inactive) { out.append("<inactive/>") }
            if flags.contains(.userspace) { out.append("<userspace/>") }
        }
        out.append("</meta></flow>\n")
    }
}
