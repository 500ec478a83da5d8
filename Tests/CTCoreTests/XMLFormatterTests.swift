import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Glibc
import XCTest
@testable import CTCore

/// `flow` as -o xml prints it.
func xml(_ flow: Flow, _ options: OutputOptions = [], event: EventType? = nil, labels: LabelMap? = nil, now: Int = 0) -> String {
    let out = OutputBuffer(fd: -1)
    XMLFormatter(options: options, labelMap: labels).write(flow, event: event, to: out, now: now)
    return String(decoding: out.pending, as: UTF8.self)
}

/// An XML line with its timeout and deltatime values replaced by "T" and
/// "D" (they vary between two dumps of the same entry), and the timeout.
func normaliseXML(_ line: String) -> (String, Int?) {
    var text = line
    var timeout: Int? = nil
    for (tag, placeholder) in [("timeout", "T"), ("deltatime", "D")] {
        guard let open = text.range(of: "<\(tag)>"),
              let close = text.range(of: "</\(tag)>", range: open.upperBound..<text.endIndex) else { continue }
        if tag == "timeout" { timeout = Int(text[open.upperBound..<close.lowerBound]) }
        text.replaceSubrange(open.upperBound..<close.lowerBound, with: placeholder)
    }
    return (text, timeout)
}

final class XMLFormatterTests: XCTestCase {
    /// Each fixture entry against conntrack's -o xml,labels,ktimestamp line
    /// for it (NAME.xml.txt, captured with the messages), matched by id.
    func testEveryFixtureFormatsLikeConntrack() throws {
        let map = try Fixtures.labelMap()
        let names = try Fixtures.messageNames()
        XCTAssertGreaterThanOrEqual(names.count, 12)
        for name in names {
            let flow = try Fixtures.flow(name)
            let base = Fixtures.base(of: name)
            let lines = try Fixtures.text("\(base).xml.txt").split(separator: "\n").map(String.init)
            XCTAssertEqual(lines.first, "<?xml version=\"1.0\" encoding=\"utf-8\"?>", base)
            XCTAssertEqual(lines.dropFirst().first, "<conntrack>", base)
            XCTAssertEqual(lines.last, "</conntrack>", base)
            let id = try XCTUnwrap(flow.id, name)
            let theirs = try XCTUnwrap(lines.first { $0.contains("<id>\(id)</id>") }, "\(name): no xml line with id \(id)")
            let ours = xml(flow, [.labels, .ktimestamp], labels: map, now: Int(time(nil)))
            XCTAssertTrue(ours.hasSuffix("</flow>\n"), name)
            let (a, ta) = normaliseXML(String(ours.dropLast()))
            let (b, tb) = normaliseXML(theirs)
            XCTAssertEqual(a, b, name)
            XCTAssertLessThanOrEqual(abs((ta ?? -100) - (tb ?? 100)), Fixtures.timeoutTolerance(base), name)
            // Without -o ktimestamp and -o labels: no <timestamp>, no <labels>.
            let plain = xml(flow, [.extended, .id], labels: nil, now: 0)
            XCTAssertFalse(plain.contains("<timestamp>"), name)
            XCTAssertFalse(plain.contains("<labels>"), name)
            XCTAssertTrue(plain.contains("<id>\(id)</id>"), "\(name): the id is printed without -o id")
        }
    }

    /// Every independent attribute, in conntrack's order (pinned from what
    /// conntrack's library printed for a message with the same attributes).
    func testEveryFieldInConntrackOrder() throws {
        var flow = try Fixtures.flow("tcp-0.bin")
        flow.helper = "ftp"
        flow.secmark = 5
        flow.secctx = "system_u:object_r:x_t"
        flow.zone = 6
        flow.timestampStart = 100_000_000_000
        flow.timestampStop = 160_999_999_999
        var labels = Labels(); labels.words = (1 << 2 | 1 << 5, 1 << 63)
        flow.labels = labels
        flow.id = UInt32.max
        flow.timeout = UInt32.max
        flow.use = 2
        flow.countersOrig = Counters(packets: 0, bytes: 0)
        flow.countersReply = Counters(packets: 0, bytes: 0)
        let map = LabelMap(names: [2: "two", 127: "top"])
        let tuples = #"<meta direction="original"><layer3 protonum="2" protoname="ipv4"><src>10.0.0.1</src><dst>10.0.0.2</dst></layer3><layer4 protonum="6" protoname="tcp"><sport>1234</sport><dport>80</dport></layer4><counters><packets>0</packets><bytes>0</bytes></counters></meta><meta direction="reply"><layer3 protonum="2" protoname="ipv4"><src>10.0.0.2</src><dst>10.0.0.1</dst></layer3><layer4 protonum="6" protoname="tcp"><sport>80</sport><dport>1234</dport></layer4><counters><packets>0</packets><bytes>0</bytes></counters></meta>"#
        XCTAssertEqual(xml(flow, [.ktimestamp, .labels], event: .destroy, labels: map),
                       #"<flow type="destroy">"# + tuples + #"<meta direction="independent"><state>ESTABLISHED</state><timeout>4294967295</timeout><mark>7</mark><labels><label>two</label><label>top</label></labels><secmark>5</secmark><secctx>system_u:object_r:x_t</secctx><zone>6</zone><use>2</use><id>4294967295</id><assured/><timestamp><start>100000000000</start><stop>160999999999</stop></timestamp><deltatime>60</deltatime></meta><helper>ftp</helper></flow>"# + "\n")
        XCTAssertEqual(xml(flow, [.extended, .id], labels: nil),
                       "<flow>" + tuples + #"<meta direction="independent"><state>ESTABLISHED</state><timeout>4294967295</timeout><mark>7</mark><secmark>5</secmark><secctx>system_u:object_r:x_t</secctx><zone>6</zone><use>2</use><id>4294967295</id><assured/><deltatime>60</deltatime></meta><helper>ftp</helper></flow>"# + "\n")
        // Labels set but none named: an empty element.
        XCTAssertTrue(xml(flow, [.labels], labels: LabelMap(names: [1: "one"])).contains("<mark>7</mark><labels></labels><secmark>"))
        // A live entry's deltatime counts to now.
        flow.timestampStop = nil
        XCTAssertTrue(xml(flow, now: 1100).contains("<deltatime>1000</deltatime>"))
        XCTAssertTrue(xml(flow, [.ktimestamp], now: 1100).contains("<timestamp><start>100000000000</start></timestamp><deltatime>1000</deltatime>"))
    }

    func testDirectionsAndProtocols() throws {
        var flow = Flow()
        flow.family = Family.ipv6
        var orig = Tuple()
        orig.src = .v6(0xfe80_0000_0000_0000, 1); orig.dst = .v6(0, 1); orig.proto = IPProto.gre
        orig.srcPort = 0x10; orig.dstPort = 0xffff; orig.zone = 4
        var reply = Tuple()
        reply.src = .v6(0, 1); reply.dst = .v6(0xfe80_0000_0000_0000, 1); reply.proto = IPProto.gre
        reply.srcPort = 0xffff; reply.dstPort = 0x10; reply.zone = 5
        flow.orig = orig; flow.reply = reply
        flow.countersReply = Counters(packets: UInt64.max, bytes: 1)
        XCTAssertEqual(xml(flow), #"<flow><meta direction="original"><layer3 protonum="10" protoname="ipv6"><src>fe80::1</src><dst>::1</dst></layer3><layer4 protonum="47" protoname="gre"><srckey>0x10</srckey><dstkey>0xffff</dstkey></layer4><zone>4</zone></meta><meta direction="reply"><layer3 protonum="10" protoname="ipv6"><src>::1</src><dst>fe80::1</dst></layer3><layer4 protonum="47" protoname="gre"><srckey>0xffff</srckey><dstkey>0x10</dstkey></layer4><zone>5</zone><counters><packets>18446744073709551615</packets><bytes>1</bytes></counters></meta></flow>"# + "\n")

        // icmp, icmpv6 and protocols without a tracker: an empty layer4.
        for proto: UInt8 in [IPProto.icmp, IPProto.icmpv6, 50, 200] {
            var f = Flow()
            f.family = Family.ipv4
            var t = Tuple(); t.proto = proto; t.icmpType = 8; t.icmpID = 3
            f.orig = t; f.reply = t
            XCTAssertTrue(xml(f).contains(#"<src>0.0.0.0</src><dst>0.0.0.0</dst></layer3><layer4 protonum="\#(proto)" protoname="\#(Names.proto(proto))"></layer4></meta>"#), "\(proto)")
        }
        // dccp tracked generically (no ports): sport and dport 0.
        let dccp = try Fixtures.flow("dccp-0.bin")
        XCTAssertTrue(xml(dccp).contains(#"protoname="dccp"><sport>0</sport><dport>0</dport></layer4>"#))

        // States by TCP's names, whatever the protocol; NONE past them.
        func state(_ info: ProtoInfo) -> String {
            var f = Flow(); f.protoInfo = info
            let text = xml(f)
            guard let a = text.range(of: "<state>"), let b = text.range(of: "</state>") else { return "-" }
            return String(text[a.upperBound..<b.lowerBound])
        }
        XCTAssertEqual(state(.tcp({ var t = TCPInfo(); t.state = 9; return t }())), "SYN_SENT2")
        XCTAssertEqual(state(.tcp({ var t = TCPInfo(); t.state = 10; return t }())), "NONE")
        XCTAssertEqual(state(.sctp({ var s = SCTPInfo(); s.state = 6; return s }())), "LAST_ACK")
        XCTAssertEqual(state(.dccp({ var d = DCCPInfo(); d.state = 3; return d }())), "ESTABLISHED")
        XCTAssertEqual(state(.sctp({ var s = SCTPInfo(); s.state = 200; return s }())), "NONE")
        XCTAssertEqual(state(.tcp(TCPInfo())), "-")

        // The independent block: status alone gives it (empty for a
        // replied, unassured entry); no attribute at all gives none.
        var bare = Flow()
        bare.status = [.seenReply]
        XCTAssertTrue(xml(bare).hasSuffix(#"<meta direction="independent"></meta></flow>"# + "\n"))
        bare.status = [.confirmed]
        XCTAssertTrue(xml(bare).hasSuffix(#"<meta direction="independent"><unreplied/></meta></flow>"# + "\n"))
        bare.status = nil
        XCTAssertFalse(xml(bare).contains("independent"))
        bare.helper = "sip"
        XCTAssertTrue(xml(bare).hasSuffix("</meta><helper>sip</helper></flow>\n"))
    }

    func testEventsAndWhen() throws {
        let flow = try Fixtures.flow("udp-0.bin")
        XCTAssertTrue(xml(flow, event: .new).hasPrefix(#"<flow type="new"><meta"#))
        XCTAssertTrue(xml(flow, event: .update).hasPrefix(#"<flow type="update"><meta"#))
        XCTAssertTrue(xml(flow, event: .destroy).hasPrefix(#"<flow type="destroy"><meta"#))
        let old = getenv("TZ").map { String(cString: $0) }
        setenv("TZ", "UTC", 1); tzset()
        defer {
            if let old { setenv("TZ", old, 1) } else { unsetenv("TZ") }
            tzset()
        }
        // Sun Mar 4 03:05:09 2001 UTC
        let now = 983_675_109
        let when = "<when><hour>3</hour><min>05</min><sec>09</sec><wday>1</wday><day>4</day><month>3</month><year>2001</year></when>"
        XCTAssertTrue(xml(flow, [.timestamp], event: .new, now: now).hasSuffix("</meta>" + when + "</flow>\n"))
        // Only events carry <when>.
        XCTAssertFalse(xml(flow, [.timestamp], now: now).contains("<when>"))
        XCTAssertFalse(xml(flow, [], event: .new, now: now).contains("<when>"))
        var helped = flow
        helped.helper = "ftp"
        XCTAssertTrue(xml(helped, [.timestamp], event: .destroy, now: now).hasSuffix(when + "<helper>ftp</helper></flow>\n"))
    }

    func testHeaderAndFooter() {
        let out = OutputBuffer(fd: -1)
        XMLFormatter.writeHeader(to: out)
        XMLFormatter.writeFooter(to: out)
        XCTAssertEqual(String(decoding: out.pending, as: UTF8.self),
                       "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<conntrack>\n</conntrack>\n")
    }

    /// conntrack copies helper names, security contexts and label names
    /// into the document unescaped; ctl escapes them, so that the output
    /// always parses.
    func testHostileStringsGiveWellFormedXML() throws {
        var flow = try Fixtures.flow("traffic-0.bin")
        let hostile = "a<b&c>d\"e'f\u{1}g\th]]>"
        flow.helper = hostile
        flow.secctx = hostile
        let map = LabelMap(names: [3: hostile, 70: "<label>", 127: "&amp;"])
        let out = OutputBuffer(fd: -1)
        XMLFormatter.writeHeader(to: out)
        let formatter = XMLFormatter(options: [.labels, .ktimestamp, .timestamp], labelMap: map)
        formatter.write(flow, event: .new, to: out, now: 0)
        formatter.write(flow, to: out, now: 0)
        XMLFormatter.writeFooter(to: out)
        let text = String(decoding: out.pending, as: UTF8.self)
        let escaped = "a&lt;b&amp;c&gt;d\"e'f\u{FFFD}g\th]]&gt;"
        XCTAssertTrue(text.contains("<helper>\(escaped)</helper>"))
        XCTAssertTrue(text.contains("<secctx>\(escaped)</secctx>"))
        XCTAssertTrue(text.contains("<labels><label>\(escaped)</label><label>&lt;label&gt;</label><label>&amp;amp;</label></labels>"))

        #if canImport(FoundationXML) || os(macOS)
        final class Collector: NSObject, XMLParserDelegate {
            var texts: [String: [String]] = [:]
            var current = ""
            var stack: [String] = []
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
                stack.append(name); current = ""
            }
            func parser(_ parser: XMLParser, foundCharacters string: String) { current += string }
            func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
                texts[name, default: []].append(current); current = ""; stack.removeLast()
            }
        }
        let parser = XMLParser(data: Data(text.utf8))
        let collector = Collector()
        parser.delegate = collector
        // (libxml2 behind XMLParser may recover from some errors: the texts
        // read back below are the real check.)
        XCTAssertTrue(parser.parse(), "not well-formed: \(String(describing: parser.parserError))\n\(text)")
        XCTAssertNil(parser.parserError)
        XCTAssertTrue(collector.stack.isEmpty)
        let unescaped = "a<b&c>d\"e'f\u{FFFD}g\th]]>"
        XCTAssertEqual(collector.texts["helper"], [unescaped, unescaped])
        XCTAssertEqual(collector.texts["secctx"], [unescaped, unescaped])
        XCTAssertEqual(collector.texts["label"], [unescaped, "<label>", "&amp;", unescaped, "<label>", "&amp;"])
        XCTAssertEqual(collector.texts["flow"]?.count, 2)
        #endif
    }
}
