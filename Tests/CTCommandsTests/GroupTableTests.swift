import CTCore
import Foundation
import XCTest
@testable import CTCommands

/// --group-by's table on Flow values alone (no kernel): the keys' values
/// as the text format prints the fields, counts, sums, order, --top, the
/// text and JSON output, and the option checks.
final class GroupTableTests: XCTestCase {
    private func flow(_ proto: IPProtocol, _ src: String, _ dst: String, sport: UInt16? = nil, dport: UInt16? = nil,
                      state: UInt8? = nil, mark: UInt32? = 0, zone: UInt16? = nil,
                      counters: (UInt64, UInt64)? = nil) -> Flow {
        var f = Flow()
        let s = ipv4(src), d = ipv4(dst)
        f.family = .ipv4
        f.orig = Tuple(source: s, destination: d, protocol: proto, sourcePort: sport, destinationPort: dport)
        f.reply = Tuple(source: d, destination: s, protocol: proto, sourcePort: dport, destinationPort: sport)
        if proto == .tcp, let state {
            var info = TCPInfo()
            info.state = state
            f.protoInfo = .tcp(info)
        }
        f.status = [.seenReply, .assured, .confirmed]
        f.mark = mark
        f.zone = zone
        if let counters {
            f.countersOrig = Counters(packets: counters.0, bytes: counters.1)
            f.countersReply = Counters(packets: 1, bytes: 10)
        }
        return f
    }

    private func ipv4(_ text: String) -> IPAddress {
        let parts = text.split(separator: ".").map { UInt32($0)! }
        return .v4(parts.reduce(0) { $0 << 8 | $1 })
    }

    private func text(_ table: GroupTable, top: Int? = nil, labelMap: LabelMap? = nil) -> String {
        let out = OutputBuffer(fd: -1)
        try? GroupWriter(keys: table.keys, labelMap: labelMap).writeText(table, top: top, to: out)
        return String(decoding: out.pending, as: UTF8.self)
    }

    private func json(_ table: GroupTable, top: Int? = nil) -> String {
        let out = OutputBuffer(fd: -1)
        try? GroupWriter(keys: table.keys, labelMap: nil).writeJSON(table, top: top, to: out)
        return String(decoding: out.pending, as: UTF8.self)
    }

    func testCountsBySourceMostFirstThenByAddress() {
        var t = GroupTable(keys: [.src])
        for f in [flow(.udp, "10.0.0.10", "1.1.1.1", sport: 1, dport: 53),
                  flow(.udp, "10.0.0.2", "1.1.1.1", sport: 2, dport: 53),
                  flow(.tcp, "10.0.0.10", "1.1.1.1", sport: 3, dport: 80, state: 3),
                  flow(.tcp, "10.0.0.9", "1.1.1.1", sport: 3, dport: 80, state: 3)] {
            t.add(f)
        }
        // 10.0.0.2 before 10.0.0.9 (by value, not by text).
        XCTAssertEqual(text(t), """
            2 src=10.0.0.10
            1 src=10.0.0.2
            1 src=10.0.0.9
            total groups=3 entries=4

            """)
        XCTAssertEqual(text(t, top: 1), "2 src=10.0.0.10\ntotal groups=3 entries=4\n")
    }

    func testMissingFieldsCountAsNoneNotShifted() {
        var t = GroupTable(keys: [.proto, .state, .sport, .zone])
        t.add(flow(.udp, "10.0.0.1", "10.0.0.2", sport: 5, dport: 53))
        t.add(flow(.udp, "10.0.0.1", "10.0.0.2", sport: 5, dport: 54))
        t.add(flow(.tcp, "10.0.0.1", "10.0.0.2", sport: 5, dport: 80, state: 7, zone: 3))
        var icmp = flow(.icmp, "10.0.0.1", "10.0.0.2")
        icmp.orig?.icmpType = 8
        t.add(icmp)
        XCTAssertEqual(text(t), """
            2 proto=udp state=none sport=5 zone=none
            1 proto=icmp state=none sport=none zone=none
            1 proto=tcp state=TIME_WAIT sport=5 zone=3
            total groups=3 entries=4

            """)
    }

    func testAccountingSumsBothDirections() {
        var t = GroupTable(keys: [.dport])
        t.add(flow(.tcp, "10.0.0.1", "10.0.0.2", sport: 1, dport: 80, state: 3, counters: (5, 500)))
        t.add(flow(.tcp, "10.0.0.3", "10.0.0.2", sport: 1, dport: 80, state: 3, counters: (2, 100)))
        XCTAssertEqual(text(t), "2 dport=80 packets=9 bytes=620\ntotal groups=1 entries=2 packets=9 bytes=620\n")
        XCTAssertEqual(json(t), """
            {"count":2,"dport":80,"packets":9,"bytes":620}
            {"total":{"groups":1,"entries":2,"packets":9,"bytes":620}}

            """)
    }

    func testEveryKeyPrintsAsTheTextFormat() {
        var f = flow(.tcp, "192.168.1.1", "10.0.0.2", sport: 1234, dport: 443, state: 3, mark: 7, zone: 9)
        f.reply?.dst = ipv4("192.0.2.7")
        f.helper = "ftp"
        f.labels = Labels(words: (0b101, 1))
        let keys = GroupKey.allCases
        var t = GroupTable(keys: keys)
        t.add(f, netns: "blue")
        let line = text(t, labelMap: LabelMap(names: [0: "web"])).split(separator: "\n")[0]
        XCTAssertEqual(line, "1 family=ipv4 proto=tcp src=192.168.1.1 dst=10.0.0.2 sport=1234 dport=443 "
                       + "reply-src=10.0.0.2 reply-dst=192.0.2.7 reply-sport=443 reply-dport=1234 state=ESTABLISHED "
                       + "status=SEEN_REPLY,ASSURED,CONFIRMED mark=7 zone=9 label=web,2,64 helper=ftp netns=blue")
        // The formatter's own text of the same entry has the same values.
        let out = OutputBuffer(fd: -1)
        TextFormatter(options: .extended).write(f, to: out, now: 0)
        let listed = String(decoding: out.pending, as: UTF8.self)
        for part in ["ipv4", "tcp", "src=192.168.1.1", "dst=10.0.0.2", "sport=1234", "dport=443", "ESTABLISHED",
                     "dst=192.0.2.7", "mark=7", "zone=9", "helper=ftp"] {
            XCTAssertTrue(listed.contains(part), "\(part) in \(listed)")
        }
    }

    func testUnknownProtocolIsItsNumberAndIPv6Text() {
        var f = Flow()
        f.family = .ipv6
        var t = Tuple()
        t.src = .v6(0xfd00_0000_0000_0000, 1)
        t.dst = .v6(0, 1)
        t.proto = 253
        f.orig = t
        var table = GroupTable(keys: [.family, .proto, .src, .dst, .dport, .mark])
        table.add(f)
        XCTAssertEqual(text(table), "1 family=ipv6 proto=253 src=fd00::1 dst=::1 dport=none mark=none\n"
                       + "total groups=1 entries=1\n")
        XCTAssertEqual(json(table).split(separator: "\n")[0],
                       #"{"count":1,"family":"ipv6","proto":"253","src":"fd00::1","dst":"::1","dport":null,"mark":null}"#)
    }

    func testMergeAddsUpNamespaces() {
        var a = GroupTable(keys: [.netns, .proto])
        var b = GroupTable(keys: [.netns, .proto])
        a.add(flow(.udp, "10.0.0.1", "10.0.0.2", sport: 1, dport: 2), netns: "a")
        b.add(flow(.udp, "10.0.0.1", "10.0.0.2", sport: 1, dport: 2), netns: "b")
        b.add(flow(.udp, "10.0.0.1", "10.0.0.2", sport: 1, dport: 3), netns: "b")
        a.merge(b)
        XCTAssertEqual(text(a), "2 netns=b proto=udp\n1 netns=a proto=udp\ntotal groups=2 entries=3\n")
    }

    func testGroupsGrowWithKeysNotEntries() {
        var t = GroupTable(keys: [.proto])
        for i in 0..<10_000 {
            t.add(flow(.udp, "10.0.\(i / 256 % 256).\(i % 256)", "10.1.0.1", sport: UInt16(i % 60000), dport: 53))
        }
        XCTAssertEqual(t.groups.count, 1)
        XCTAssertEqual(t.total.count, 10_000)
    }

    func testEventsCountedPerGroupAndType() {
        var t = EventGroupTable(keys: [.proto, .dport])
        let udp = flow(.udp, "10.0.0.1", "10.0.0.2", sport: 1, dport: 53)
        t.add(.new, udp)
        t.add(.destroy, udp)
        t.add(.new, flow(.udp, "10.0.0.3", "10.0.0.2", sport: 1, dport: 53))
        var update = Flow()
        update.family = .ipv4
        t.add(.update, update)
        XCTAssertEqual(t.lines(top: nil, labelMap: nil), [
            "3 proto=udp dport=53 new=2 update=0 destroy=1",
            "1 proto=none dport=none new=0 update=1 destroy=0",
            "total groups=2 events=4 new=2 update=1 destroy=1",
        ])
        XCTAssertEqual(t.lines(top: 1, labelMap: nil).count, 2)
        XCTAssertEqual(t.jsonLines(top: nil, labelMap: nil, time: 7), [
            #"{"time":7,"events":3,"proto":"udp","dport":53,"new":2,"update":0,"destroy":1}"#,
            #"{"time":7,"events":1,"proto":null,"dport":null,"new":0,"update":1,"destroy":0}"#,
            #"{"time":7,"total":{"groups":2,"events":4,"new":2,"update":1,"destroy":1}}"#,
        ])
    }

    func testGroupMetricsUseTheWriter() {
        var t = GroupTable(keys: [.src, .state])
        t.add(flow(.udp, "10.0.0.1", "10.0.0.2", sport: 1, dport: 53, counters: (1, 2)))
        let text = GroupWriter(keys: t.keys, labelMap: nil).metrics(t, top: nil)
        XCTAssertTrue(text.contains("ctl_conntrack_group_entries{src=\"10.0.0.1\",state=\"none\"} 1\n"), text)
        XCTAssertTrue(text.contains("ctl_conntrack_group_bytes{src=\"10.0.0.1\",state=\"none\"} 12\n"), text)
        XCTAssertTrue(text.contains("# TYPE ctl_conntrack_group_entries gauge\n"), text)
    }

    // MARK: option checks

    private func refusal(_ words: [String]) -> String? {
        guard let error = commandLineRefusal(words) else { return nil }
        XCTAssertEqual(error.code, .parameter, error.message)
        return error.message
    }

    func testBadInputIsRefusedWithParameterErrors() {
        XCTAssertNil(refusal(["-L", "--group-by", "src,dport", "--top", "3", "-p", "tcp"]))
        XCTAssertNil(refusal(["-L", "--group-by", "netns", "--all-netns", "-o", "json"]))
        XCTAssertNil(refusal(["-C", "--all-netns"]))
        XCTAssertEqual(refusal(["-L", "--group-by", "source"]),
                       "--group-by: unknown key `source' (keys: " + GroupKey.allCases.map(\.rawValue).joined(separator: ", ") + ")")
        XCTAssertEqual(refusal(["-L", "--group-by", "src,,dst"]), "--group-by: empty key in `src,,dst'")
        XCTAssertEqual(refusal(["-L", "--group-by", "src,src"]), "--group-by: key `src' given twice")
        XCTAssertEqual(refusal(["-L", "--group-by", "src", "--top", "0"]),
                       "--top takes a number of groups, 1 or more; not `0'")
        XCTAssertEqual(refusal(["-L", "--group-by", "src", "--top", "ten"]),
                       "--top takes a number of groups, 1 or more; not `ten'")
        XCTAssertEqual(refusal(["-L", "--top", "3"]), "--top needs --group-by")
        XCTAssertEqual(refusal(["-D", "--group-by", "src"]), "--group-by works with -L and -E (of the conntrack table) only")
        XCTAssertEqual(refusal(["-L", "expect", "--group-by", "src"]),
                       "--group-by works with -L and -E (of the conntrack table) only")
        XCTAssertEqual(refusal(["--group-by", "src"]), "--group-by works with -L and -E (of the conntrack table) only")
        XCTAssertEqual(refusal(["-E", "--group-by", "src"]), "-E --group-by needs --interval SECONDS")
        XCTAssertEqual(refusal(["-L", "--group-by", "src", "-o", "extended"]),
                       "--group-by prints counts: -o takes only json or metrics with it")
        XCTAssertEqual(refusal(["-D", "--all-netns"]), "--all-netns works with -L, -C and -L --group-by only")
        XCTAssertEqual(refusal(["-L", "--all-netns", "-o", "xml"]), "--all-netns does not combine with -o xml or -o save")
        XCTAssertNil(refusal(["-E", "--group-by", "src", "--interval", "1"]))
        XCTAssertNil(refusal(["-L", "--group-by", "src", "--interval", "1", "--all-netns"]))
        XCTAssertNil(refusal(["-L", "--group-by", "src", "-o", "metrics"]))
        XCTAssertNil(refusal(["-L", "--group-by", "src", "--interval", "1", "-o", "json"]))
        XCTAssertEqual(refusal(["-L", "--group-by", "src", "--interval", "1", "-o", "metrics"]),
                       "--interval does not combine with -o metrics (a file is one scrape)")
        XCTAssertEqual(refusal(["-C", "--all-netns", "--interval", "1"]),
                       "--all-netns does not combine with -C --interval (use -L --group-by netns --interval)")
    }
}
