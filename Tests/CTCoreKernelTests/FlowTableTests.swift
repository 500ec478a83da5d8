import CTCore
import Foundation
import XCTest

/// Entries made with conntrack -I (via -R) for the dump, filter and write
/// tests: tcp, udp, icmp, sctp over IPv4 and IPv6, marks, zones, status
/// bits, a reply tuple that differs (as after NAT).
let tableLines = [
    "-I -p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1000 --dport 80 --state ESTABLISHED -t 500 -u ASSURED -m 7",
    "-I -p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1001 --dport 80 --state SYN_SENT -t 500 -m 0x17",
    "-I -p tcp -s 10.1.0.3 -d 10.1.0.2 --sport 1002 --dport 443 --state ESTABLISHED -t 500 -w 5",
    "-I -p tcp -s 10.2.0.1 -d 10.2.0.9 --sport 1003 --dport 22 --state TIME_WAIT -t 500 -m 0x10",
    "-I -p tcp -s 10.1.0.1 -d 10.1.0.2 --sport 1004 --dport 80 --state ESTABLISHED -t 500 -r 10.9.0.2 -q 10.1.0.1 --reply-port-src 8080 --reply-port-dst 1004",
    "-I -p udp -s 10.1.0.1 -d 10.1.0.2 --sport 53 --dport 53 -t 500",
    "-I -p udp -s 10.1.0.4 -d 10.3.0.2 --sport 5000 --dport 53 -t 500 -u SEEN_REPLY",
    "-I -p udp -s 10.1.0.5 -d 10.1.0.6 --sport 6000 --dport 6001 -t 500 -w 5 -m 7",
    "-I -p icmp -s 10.1.0.1 -d 10.1.0.2 --icmp-type 8 --icmp-code 0 --icmp-id 77 -t 500",
    "-I -p sctp -s 10.4.0.1 -d 10.4.0.2 --sport 7000 --dport 36412 --state ESTABLISHED --orig-vtag 1 --reply-vtag 2 -t 500",
    "-I -p tcp -s fd00:1::1 -d fd00:1::2 --sport 2000 --dport 80 --state ESTABLISHED -t 500",
    "-I -p udp -s fd00:1::1 -d fd00:1::3 --sport 2001 --dport 53 -t 500 -m 7",
    "-I -p udp -s fd00:2::1 -d fd00:1::3 --sport 2002 --dport 54 -t 500",
    "-I -p icmpv6 -s fd00:1::1 -d fd00:1::2 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 9 -t 500",
]

/// Filters and the conntrack -L options that select the same entries.
func filterCases() -> [(String, FlowFilter, [String])] {
    var cases: [(String, FlowFilter, [String])] = []
    func add(_ name: String, _ args: [String], _ build: (inout FlowFilter) -> Void) {
        var filter = FlowFilter()
        build(&filter)
        cases.append((name, filter, args))
    }
    add("everything", []) { _ in }
    add("family ipv6", ["-f", "ipv6"]) { $0.family = .ipv6 }
    add("family ipv4", ["-f", "ipv4"]) { $0.family = .ipv4 }
    add("protocol tcp", ["-p", "tcp"]) { $0.ipProtocol = .tcp }
    add("tcp dport 80", ["-p", "tcp", "--dport", "80"]) { $0.ipProtocol = .tcp; $0.origDstPort = 80 }
    add("udp sport 53 ipv4", ["-f", "ipv4", "-p", "udp", "--sport", "53"]) {
        $0.family = .ipv4; $0.ipProtocol = .udp; $0.origSrcPort = 53
    }
    add("udp reply sport 53", ["-p", "udp", "--reply-port-src", "53"]) { $0.ipProtocol = .udp; $0.replySrcPort = 53 }
    add("source address", ["-s", "10.1.0.1"]) { $0.origSrc = AddressMatch(ip("10.1.0.1")) }
    add("destination prefix", ["-d", "10.1.0.0/16"]) { $0.origDst = AddressMatch(ip("10.1.0.0"), prefixLength: 16) }
    add("ipv6 source prefix", ["-f", "ipv6", "-s", "fd00:1::/64"]) {
        $0.family = .ipv6; $0.origSrc = AddressMatch(ip("fd00:1::"), prefixLength: 64)
    }
    add("reply source", ["-r", "10.9.0.2"]) { $0.replySrc = AddressMatch(ip("10.9.0.2")) }
    add("reply destination", ["-q", "10.1.0.1"]) { $0.replyDst = AddressMatch(ip("10.1.0.1")) }
    add("mark", ["-m", "7"]) { $0.mark = 7 }
    add("mark under mask", ["-m", "0x10/0xf0"]) { $0.mark = 0x10; $0.markMask = 0xf0 }
    add("status assured", ["-u", "ASSURED"]) { $0.status = .assured; $0.statusMask = .assured }
    add("zone", ["-w", "5"]) { $0.zone = 5 }
    add("tcp state", ["-p", "tcp", "--state", "ESTABLISHED"]) { $0.ipProtocol = .tcp; $0.state = 3 }
    add("icmp type", ["-p", "icmp", "--icmp-type", "8"]) { $0.ipProtocol = .icmp; $0.icmpType = 8 }
    add("tcp, source, mark", ["-p", "tcp", "-s", "10.1.0.1", "-m", "7"]) {
        $0.ipProtocol = .tcp; $0.origSrc = AddressMatch(ip("10.1.0.1")); $0.mark = 7
    }
    return cases
}

/// Every public operation on the flow table, against conntrack 1.4.7 in the
/// same namespace.
final class FlowTableTests: KernelTestCase {
    private func filledNamespace(_ tag: String) throws -> (TestNamespace, Conntrack) {
        let ns = try makeNamespace(tag)
        try ns.load(tableLines)
        XCTAssertEqual(try ns.count(), tableLines.count, "conntrack -R made every entry")
        return (ns, try handle(ns))
    }

    /// forEachFlow, allFlows and the async flows() select what conntrack -L
    /// with the same options lists, with the kernel's filters and without.
    func testDumpsWithFiltersMatchConntrack() async throws {
        let (ns, conntrack) = try filledNamespace("dump")
        let userspaceOnly = try handle(ns, capabilities: .detect().removing(KernelFeature.allCases))
        for (name, filter, args) in filterCases() {
            let expected = try ns.listedKeys(args)
            XCTAssertFalse(expected.isEmpty, "\(name): conntrack \(args) lists something (the case can fail)")
            XCTAssertLessThan(expected.count, tableLines.count + (args.isEmpty ? 1 : 0), "\(name) selects")

            let all = try conntrack.allFlows(matching: filter)
            XCTAssertEqual(Set(all.map(key(of:))), expected, "allFlows, \(name)")
            XCTAssertEqual(all.count, expected.count, "allFlows, \(name): no entry twice")

            var seen: [String] = []
            let summary = try conntrack.forEachFlow(matching: filter) { seen.append(key(of: $0)); return .proceed }
            XCTAssertEqual(Set(seen), expected, "forEachFlow, \(name)")
            XCTAssertFalse(summary.stopped)
            XCTAssertEqual(summary.skipped, [])

            var streamed: [String] = []
            for try await flow in conntrack.flows(matching: filter, bufferSize: 4) { streamed.append(key(of: flow)) }
            XCTAssertEqual(Set(streamed), expected, "flows(), \(name)")
            XCTAssertEqual(streamed.count, expected.count)

            let unfiltered = try userspaceOnly.allFlows(matching: filter)
            XCTAssertEqual(Set(unfiltered.map(key(of:))), expected, "without kernel filters, \(name)")
            XCTAssertTrue(all.allSatisfy(filter.matches), "matches(), \(name)")
        }
        // A callback that stops: one entry, summary says so.
        var count = 0
        let summary = try conntrack.forEachFlow { _ in count += 1; return .stop }
        XCTAssertEqual(count, 1)
        XCTAssertTrue(summary.stopped)
    }

    /// The values a dump reports, against conntrack's listing of one entry.
    func testFlowValues() throws {
        let (ns, conntrack) = try filledNamespace("values")
        var filter = FlowFilter()
        filter.ipProtocol = .tcp
        filter.origSrcPort = 1000
        let flows = try conntrack.allFlows(matching: filter)
        XCTAssertEqual(flows.count, 1)
        let flow = try XCTUnwrap(flows.first)
        XCTAssertEqual(flow.family, .ipv4)
        XCTAssertEqual(flow.mark, 7)
        XCTAssertTrue(flow.status?.contains(.assured) ?? false)
        XCTAssertTrue(flow.status?.contains(.confirmed) ?? false)
        guard case .tcp(let info)? = flow.protoInfo else { return XCTFail("no tcp info in \(flow)") }
        XCTAssertEqual(info.state, 3)
        XCTAssertEqual(flow.reply.map { fields($0, .tcp) }, ["src=10.1.0.2", "dst=10.1.0.1", "sport=80", "dport=1000"])
        let line = try ns.conntrack(["-L", "-p", "tcp", "--sport", "1000"]).lines[0]
        let listedTimeout = Int(line.split(separator: " ")[2])!
        XCTAssertLessThanOrEqual(abs(listedTimeout - Int(flow.timeout ?? 0)), 2, line)
        XCTAssertTrue(line.contains(" mark=7 "), line)
        let natted = try conntrack.allFlows(matching: makeFilter { f in f.origSrcPort = 1004 })
        XCTAssertEqual(natted.first?.reply.map { fields($0, .tcp) }, ["src=10.9.0.2", "dst=10.1.0.1", "sport=8080", "dport=1004"])
        XCTAssertEqual(try conntrack.allFlows(matching: makeFilter { f in f.zone = 5 }).map(\.zone),
                       [5, 5])
    }

    /// Which clauses the kernel applies, by capability.
    func testKernelFilteredClauses() throws {
        var filter = FlowFilter()
        filter.family = .ipv4
        filter.ipProtocol = .tcp
        filter.origDstPort = 80
        filter.origSrc = AddressMatch(ip("10.1.0.1"))
        filter.mark = 7
        filter.status = .assured
        filter.statusMask = .assured
        filter.zone = 5
        filter.timeout = 100   // never kernel-filtered
        let running = KernelCapabilities.detect()
        XCTAssertEqual(running.version, KernelVersion.running)
        let all = filter.kernelFilteredClauses(on: .forKernel(KernelVersion(6, 8)))
        XCTAssertEqual(all, [.family, .ipProtocol, .origDstPort, .origSrc, .mark, .status, .zone])
        XCTAssertEqual(filter.kernelFilteredClauses(on: .forKernel(KernelVersion(6, 1))),
                       [.family, .ipProtocol, .origDstPort, .origSrc, .mark, .status])
        XCTAssertEqual(filter.kernelFilteredClauses(on: .forKernel(KernelVersion(5, 15))), [.family, .mark, .status])
        XCTAssertEqual(filter.kernelFilteredClauses(on: .forKernel(KernelVersion(4, 0))), [.family, .mark])
        XCTAssertEqual(filter.kernelFilteredClauses(on: .forKernel(KernelVersion(6, 8)).removing([.markDumpFilter])),
                       [.family, .ipProtocol, .origDstPort, .origSrc, .status, .zone])
        XCTAssertEqual(FlowFilter().kernelFilteredClauses(on: running), [])
        // On this kernel they are what its version gives.
        XCTAssertEqual(filter.kernelFilteredClauses(on: running), filter.kernelFilteredClauses(on: .forKernel(running.version)))

        // And the dump is the same whichever clauses the kernel applies.
        let ns = try makeNamespace("clauses")
        try ns.load(tableLines)
        var wide = FlowFilter()
        wide.ipProtocol = .tcp
        wide.origSrc = AddressMatch(ip("10.1.0.0"), prefixLength: 16)
        wide.origDstPort = 80
        let expected = try ns.listedKeys(["-p", "tcp", "-s", "10.1.0.0/16", "--dport", "80"])
        XCTAssertEqual(expected.count, 3)
        for version in [KernelVersion(3, 0), KernelVersion(4, 0), KernelVersion(5, 15), KernelVersion(6, 1), running.version] {
            let caps = KernelCapabilities.forKernel(version)
            guard version <= running.version else { continue }
            let flows = try handle(ns, capabilities: caps).allFlows(matching: wide)
            XCTAssertEqual(Set(flows.map(key(of:))), expected, "capabilities of \(version)")
        }
    }

    func testGet() throws {
        let (ns, conntrack) = try filledNamespace("get")
        let tcp = try flowKey("10.1.0.1", "10.1.0.2", .tcp, 1000, 80)
        let flow = try XCTUnwrap(try conntrack.get(tcp))
        let listed = try ns.conntrack(["-G", "-p", "tcp", "-s", "10.1.0.1", "-d", "10.1.0.2", "--sport", "1000", "--dport", "80"])
        XCTAssertEqual(key(of: flow), key(ofListing: listed.lines[0]))
        XCTAssertEqual(flow.mark, 7)
        XCTAssertNotNil(flow.id)
        XCTAssertEqual(flow.key?.tuple, tcp.tuple)
        // IPv6, ICMP, a zone.
        let v6 = try XCTUnwrap(try conntrack.get(try flowKey("fd00:1::1", "fd00:1::2", .tcp, 2000, 80)))
        XCTAssertEqual(v6.family, .ipv6)
        var icmpTuple = Tuple(source: ip("10.1.0.1"), destination: ip("10.1.0.2"), protocol: .icmp)
        icmpTuple.icmpType = 8
        icmpTuple.icmpCode = 0
        icmpTuple.icmpID = 77
        XCTAssertNotNil(try conntrack.get(try FlowKey(tuple: icmpTuple)))
        let zoned = try flowKey("10.1.0.3", "10.1.0.2", .tcp, 1002, 443)
        XCTAssertNil(try conntrack.get(zoned), "zone 0 has no such entry")
        XCTAssertEqual(try conntrack.get(try flowKey("10.1.0.3", "10.1.0.2", .tcp, 1002, 443, zone: 5))?.zone, 5)
        // Missing: nil, as conntrack -G fails with ENOENT.
        XCTAssertNil(try conntrack.get(try flowKey("10.1.0.1", "10.1.0.2", .tcp, 999, 80)))
        let missing = try ns.conntrack(["-G", "-p", "tcp", "-s", "10.1.0.1", "-d", "10.1.0.2", "--sport", "999", "--dport", "80"],
                                       check: false)
        XCTAssertEqual(missing.status, 1)
        // A key needs a whole tuple of one family.
        XCTAssertThrowsError(try FlowKey(tuple: Tuple(source: ip("10.0.0.1"), destination: ip("fd00::1"), protocol: .udp)))
        XCTAssertThrowsError(try FlowKey(tuple: Tuple())) { error in
            guard case .invalidArgument = (error as? ConntrackError)?.reason else { return XCTFail("\(error)") }
        }
    }

    func testCreate() throws {
        let ns = try makeNamespace("create")
        let conntrack = try handle(ns)
        // The family comes from the tuple's addresses.
        try conntrack.create(udpFlow("10.5.0.1", "10.5.0.2", 1, 2, timeout: 321))
        var tcp = Flow()
        tcp.family = .ipv6
        tcp.orig = Tuple(source: ip("fd00:5::1"), destination: ip("fd00:5::2"), protocol: .tcp, sourcePort: 3, destinationPort: 4)
        tcp.timeout = 600
        tcp.mark = 0x42
        tcp.zone = 9
        var info = TCPInfo()
        info.state = 3
        tcp.protoInfo = .tcp(info)
        try conntrack.create(tcp)
        let listing = try ns.conntrack(["-L"]).lines
        XCTAssertEqual(listing.count, 2)
        let udpLine = try XCTUnwrap(listing.first { $0.hasPrefix("udp") })
        XCTAssertEqual(key(ofListing: udpLine), "p=17 src=10.5.0.1 dst=10.5.0.2 sport=1 dport=2")
        XCTAssertTrue((319...321).contains(Int(udpLine.split(separator: " ")[2])!), udpLine)
        let tcpLine = try XCTUnwrap(listing.first { $0.hasPrefix("tcp") })
        XCTAssertEqual(key(ofListing: tcpLine), "p=6 src=fd00:5::1 dst=fd00:5::2 sport=3 dport=4 zone=9")
        for word in [" ESTABLISHED ", " mark=66 "] { XCTAssertTrue(tcpLine.contains(word), "\(word) in \(tcpLine)") }
        // Again: EEXIST, as conntrack -I says "File exists".
        XCTAssertThrowsError(try conntrack.create(udpFlow("10.5.0.1", "10.5.0.2", 1, 2))) { error in
            let error = error as? ConntrackError
            XCTAssertEqual(error?.errno, .exists)
            XCTAssertEqual(error?.operation, .create)
        }
        let again = try ns.conntrack(["-I", "-p", "udp", "-s", "10.5.0.1", "-d", "10.5.0.2", "--sport", "1", "--dport", "2",
                                      "-t", "10"], check: false)
        XCTAssertTrue(again.stderr.contains("Such conntrack exists"), again.stderr)
        // Without a timeout the kernel refuses (EINVAL); without a tuple the library does.
        var noTimeout = udpFlow("10.5.0.1", "10.5.0.2", 5, 6)
        noTimeout.timeout = nil
        XCTAssertThrowsError(try conntrack.create(noTimeout)) { XCTAssertNotNil(($0 as? ConntrackError)?.errno) }
        XCTAssertThrowsError(try conntrack.create(Flow())) { error in
            guard case .invalidArgument = (error as? ConntrackError)?.reason else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(try ns.count(), 2)
    }

    func testUpdate() throws {
        let (ns, conntrack) = try filledNamespace("update")
        let key = try flowKey("10.1.0.1", "10.1.0.2", .udp, 53, 53)
        var change = FlowUpdate()
        change.mark = 0x99
        change.timeout = 1234
        let after = try XCTUnwrap(try conntrack.update(key, change))
        XCTAssertEqual(after.mark, 0x99)
        XCTAssertEqual(try ns.listedKeys(["-m", "0x99"]), ["p=17 src=10.1.0.1 dst=10.1.0.2 sport=53 dport=53"])
        let line = try ns.conntrack(["-L", "-m", "0x99"]).lines[0]
        XCTAssertTrue((1230...1234).contains(Int(line.split(separator: " ")[2])!), line)
        // A mark under a mask: (old & ~mask) ^ mark.
        var masked = FlowUpdate()
        masked.mark = 0x100
        masked.markMask = 0xf00
        XCTAssertEqual(try conntrack.update(key, masked)?.mark, 0x199)
        XCTAssertEqual(try ns.listedKeys(["-m", "0x199"]).count, 1)
        // Status bits the kernel lets change.
        var status = FlowUpdate()
        status.status = [.confirmed, .assured]
        XCTAssertTrue(try conntrack.update(key, status)?.status?.contains(.assured) ?? false)
        XCTAssertTrue(try ns.listedKeys(["-u", "ASSURED"]).contains("p=17 src=10.1.0.1 dst=10.1.0.2 sport=53 dport=53"))
        // A missing entry: nil, nothing changed.
        XCTAssertNil(try conntrack.update(try flowKey("10.1.0.1", "10.1.0.2", .udp, 9, 9), change))
        XCTAssertEqual(try ns.listedKeys(["-m", "0x99"]), [])
        // conntrack -U sees what the library set and the other way round.
        try ns.conntrack(["-U", "-p", "udp", "-s", "10.1.0.1", "-d", "10.1.0.2", "--sport", "53", "--dport", "53", "-m", "5"])
        XCTAssertEqual(try conntrack.get(key)?.mark, 5)
    }

    func testDeleteByKey() throws {
        let (ns, conntrack) = try filledNamespace("delete")
        let key = try flowKey("10.1.0.1", "10.1.0.2", .udp, 53, 53)
        XCTAssertEqual(try conntrack.delete(key), .done)
        XCTAssertFalse(try ns.listedKeys().contains("p=17 src=10.1.0.1 dst=10.1.0.2 sport=53 dport=53"))
        XCTAssertEqual(try ns.count(), tableLines.count - 1)
        XCTAssertEqual(try conntrack.delete(key), .notFound)
        // A key with the id of an entry that is no more: the entry with the
        // same tuple now is not deleted.
        let tcp = try flowKey("10.1.0.1", "10.1.0.2", .tcp, 1000, 80)
        let id = try XCTUnwrap(try conntrack.get(tcp)?.id)
        XCTAssertEqual(try conntrack.delete(try flowKey("10.1.0.1", "10.1.0.2", .tcp, 1000, 80, id: id &+ 1)), .notFound)
        XCTAssertNotNil(try conntrack.get(tcp))
        XCTAssertEqual(try conntrack.delete(try flowKey("10.1.0.1", "10.1.0.2", .tcp, 1000, 80, id: id)), .done)
        XCTAssertNil(try conntrack.get(tcp))
        // A zone is part of the key.
        XCTAssertEqual(try conntrack.delete(try flowKey("10.1.0.3", "10.1.0.2", .tcp, 1002, 443)), .notFound)
        XCTAssertEqual(try conntrack.delete(try flowKey("10.1.0.3", "10.1.0.2", .tcp, 1002, 443, zone: 5)), .done)
        XCTAssertEqual(try ns.count(), tableLines.count - 3)
    }

    func testDeleteList() throws {
        let (ns, conntrack) = try filledNamespace("deletes")
        // Entries conntrack -D removes first are "already gone".
        try ns.conntrack(["-D", "-p", "udp", "-s", "10.1.0.4"])
        let keys = [
            try flowKey("10.1.0.1", "10.1.0.2", .udp, 53, 53),
            try flowKey("10.1.0.4", "10.3.0.2", .udp, 5000, 53),
            try flowKey("fd00:1::1", "fd00:1::2", .tcp, 2000, 80),
            try flowKey("10.1.0.1", "10.1.0.2", .udp, 53, 53),
            try flowKey("10.2.0.1", "10.2.0.9", .tcp, 1003, 22),
        ]
        XCTAssertEqual(try conntrack.delete(keys), [.done, .notFound, .done, .notFound, .done])
        XCTAssertEqual(try ns.count(), tableLines.count - 4)
        let left = try ns.listedKeys()
        for k in keys { XCTAssertFalse(left.contains(tupleKey(k)), "\(k) gone") }
        XCTAssertEqual(try conntrack.delete([]), [])

        // More keys than one batch: 1,500 entries made and deleted.
        let many = (0..<1500).map { udpFlow("10.8.\($0 / 250).\($0 % 250 + 1)", "10.9.0.1", 1000, 2000) }
        XCTAssertTrue(try conntrack.apply(many.map { .create($0) }).allSatisfy { $0 == .done })
        XCTAssertEqual(try ns.count(), tableLines.count - 4 + 1500)
        let manyKeys = many.compactMap(\.key)
        XCTAssertEqual(manyKeys.count, 1500)
        let results = try conntrack.delete(manyKeys + [manyKeys[0]])
        XCTAssertEqual(results.count, 1501)
        XCTAssertTrue(results.prefix(1500).allSatisfy { $0 == .done })
        XCTAssertEqual(results.last, .notFound)
        XCTAssertEqual(try ns.count(), tableLines.count - 4)
    }

    private func tupleKey(_ key: FlowKey) -> String {
        var flow = Flow()
        flow.orig = key.tuple
        flow.zone = key.zone
        return CTCoreKernelTests.key(of: flow)
    }

    func testDeleteAllMatching() throws {
        let (ns, conntrack) = try filledNamespace("deleteall")
        let before = try ns.listedKeys()
        let expected = try ns.listedKeys(["-p", "tcp", "--dport", "80"])
        XCTAssertEqual(expected.count, 4)
        var filter = FlowFilter()
        filter.ipProtocol = .tcp
        filter.origDstPort = 80
        var deleted: [String] = []
        let summary = try conntrack.deleteAll(matching: filter) { deleted.append(key(of: $0)); return .proceed }
        XCTAssertEqual(summary.deleted, expected.count)
        XCTAssertEqual(Set(deleted), expected)
        XCTAssertEqual(try ns.listedKeys(), before.subtracting(expected))
        XCTAssertEqual(try conntrack.deleteAll(matching: filter).deleted, 0)
        // Mark and zone (kernel filters) and a userspace-only clause.
        var zoneMark = FlowFilter()
        zoneMark.zone = 5
        zoneMark.mark = 7
        XCTAssertEqual(try ns.listedKeys(["-w", "5", "-m", "7"]).count, 1)
        XCTAssertEqual(try conntrack.deleteAll(matching: zoneMark).deleted, 1)
        XCTAssertEqual(try ns.count(), before.count - expected.count - 1)
    }

    func testDeleteAllMatchingAny() throws {
        let (ns, conntrack) = try filledNamespace("deleteany")
        let before = try ns.listedKeys()
        let expected = try ns.listedKeys(["-p", "udp", "--dport", "53"])
            .union(try ns.listedKeys(["-f", "ipv6", "-p", "tcp"]))
            .union(try ns.listedKeys(["-p", "icmp"]))
        XCTAssertEqual(expected.count, 5)
        var udp53 = FlowFilter()
        udp53.ipProtocol = .udp
        udp53.origDstPort = 53
        var tcp6 = FlowFilter()
        tcp6.family = .ipv6
        tcp6.ipProtocol = .tcp
        var icmp = FlowFilter()
        icmp.ipProtocol = .icmp
        var deleted = Set<String>()
        let summary = try conntrack.deleteAll(matchingAny: [udp53, tcp6, icmp]) { deleted.insert(key(of: $0)); return .proceed }
        XCTAssertEqual(summary.deleted, expected.count)
        XCTAssertEqual(deleted, expected)
        XCTAssertEqual(try ns.listedKeys(), before.subtracting(expected))
        XCTAssertEqual(try conntrack.deleteAll(matchingAny: []).deleted, 0)
        XCTAssertEqual(try ns.count(), before.count - expected.count)
        // Filters of one family: only that family goes.
        var v4 = FlowFilter()
        v4.family = .ipv4
        v4.ipProtocol = .udp
        var v4b = FlowFilter()
        v4b.family = .ipv4
        v4b.mark = 0x17
        let expected2 = try ns.listedKeys(["-f", "ipv4", "-p", "udp"]).union(try ns.listedKeys(["-f", "ipv4", "-m", "0x17"]))
        XCTAssertEqual(expected2.count, 2)
        XCTAssertEqual(try conntrack.deleteAll(matchingAny: [v4, v4b]).deleted, expected2.count)
        XCTAssertEqual(try ns.count(), before.count - expected.count - expected2.count)
    }

    func testApplyWithRollback() throws {
        let (ns, conntrack) = try filledNamespace("apply")
        let before = try ns.listedKeys()
        let a = udpFlow("10.10.0.1", "10.10.0.2", 1, 1)
        let b = udpFlow("10.10.0.1", "10.10.0.2", 2, 2)
        let existing = udpFlow("10.1.0.1", "10.1.0.2", 53, 53)
        var mark = FlowUpdate()
        mark.mark = 0x55
        let update = FlowWrite.update(try flowKey("10.1.0.5", "10.1.0.6", .udp, 6000, 6001, zone: 5), mark)
        let results = try conntrack.apply([.create(a), update, .create(b), .create(existing)], rollback: true)
        XCTAssertEqual(results, [.done, .done, .done, .failed(.exists)])
        // The entries the batch created are gone again; the update stays.
        XCTAssertEqual(try ns.listedKeys(), before)
        XCTAssertEqual(try ns.listedKeys(["-m", "0x55"]), ["p=17 src=10.1.0.5 dst=10.1.0.6 sport=6000 dport=6001 zone=5"])
        // Without rollback they stay.
        XCTAssertEqual(try conntrack.apply([.create(a), .create(b), .create(existing)]), [.done, .done, .failed(.exists)])
        XCTAssertEqual(try ns.count(), before.count + 2)
        // Deletes report gone entries. A delete of an entry gone already
        // left the table as asked: no rollback, c stays.
        let c = udpFlow("10.10.0.1", "10.10.0.2", 3, 3)
        XCTAssertEqual(try conntrack.apply([.create(c), .delete(a.key!), .delete(a.key!), .update(b.key!, mark)], rollback: true),
                       [.done, .done, .notFound, .done])
        XCTAssertEqual(try ns.count(), before.count + 2)
        XCTAssertTrue(try ns.listedKeys(["-m", "0x55"]).contains("p=17 src=10.10.0.1 dst=10.10.0.2 sport=2 dport=2"))
        // An update of a missing entry is a failure: d is taken back.
        let d = udpFlow("10.10.0.1", "10.10.0.2", 4, 4)
        XCTAssertEqual(try conntrack.apply([.create(d), .update(a.key!, mark)], rollback: true), [.done, .notFound])
        XCTAssertEqual(try ns.count(), before.count + 2)
        XCTAssertFalse(try ns.listedKeys().contains("p=17 src=10.10.0.1 dst=10.10.0.2 sport=4 dport=4"))
        XCTAssertEqual(try conntrack.apply([]), [])
    }

    func testFlush() throws {
        let (ns, conntrack) = try filledNamespace("flush")
        try conntrack.flush()
        XCTAssertEqual(try ns.count(), 0)
        try conntrack.flush()
    }

    func testFlushFamily() throws {
        let (ns, conntrack) = try filledNamespace("flushfamily")
        let v4 = try ns.listedKeys(["-f", "ipv4"])
        XCTAssertEqual(v4.count, 10)
        // A kernel that would flush everything: refused, nothing sent.
        let old = try handle(ns, capabilities: .detect().removing([.familyFlush]))
        XCTAssertThrowsError(try old.flush(family: .ipv6)) { error in
            XCTAssertEqual((error as? ConntrackError)?.reason,
                           .unsupported(.familyFlush, kernel: KernelCapabilities.detect().version))
        }
        XCTAssertEqual(try ns.count(), tableLines.count)
        guard conntrack.capabilities.supports(.familyFlush) else {
            throw XCTSkip("this kernel (\(conntrack.capabilities.version)) flushes every family at once")
        }
        try conntrack.flush(family: .ipv6)
        XCTAssertEqual(try ns.listedKeys(["-f", "ipv6"]), [])
        XCTAssertEqual(try ns.listedKeys(), v4)
        try conntrack.flush(family: .ipv4)
        XCTAssertEqual(try ns.count(), 0)
    }

    func testStatistics() throws {
        let (ns, conntrack) = try filledNamespace("stats")
        guard conntrack.capabilities.supports(.statistics) else {
            throw XCTSkip("this kernel has no ctnetlink statistics")
        }
        // Per CPU, the counters conntrack -S prints (nothing runs meanwhile).
        let cpus = try conntrack.statistics()
        let listed = try ns.conntrack(["-S"]).lines.map(parseStats)
        XCTAssertEqual(cpus.count, listed.count)
        XCTAssertFalse(cpus.isEmpty)
        for (cpu, line) in zip(cpus, listed) {
            XCTAssertEqual("\(cpu.cpu)", line["cpu"])
            var named = Dictionary(uniqueKeysWithValues: cpu.counters.map { ($0.name, "\($0.value)") })
            named["cpu"] = "\(cpu.cpu)"
            XCTAssertEqual(named, line, "cpu \(cpu.cpu)")
        }
        XCTAssertEqual(cpus.compactMap(\.insert).reduce(0, +), UInt32(tableLines.count), "one insert per entry made")
        // Entries and limit.
        let size = try conntrack.tableSize()
        XCTAssertEqual(Int(size.entries), try ns.count())
        XCTAssertEqual(Int(size.entries), tableLines.count)
        let max = try ns.exec(["cat", "/proc/sys/net/netfilter/nf_conntrack_max"]).stdout
        XCTAssertEqual(size.limit.map { "\($0)" }, max.trimmingCharacters(in: .whitespacesAndNewlines))
        try conntrack.flush()
        XCTAssertEqual(try conntrack.tableSize().entries, 0)
        // Expectation counters.
        let expect = try conntrack.expectationStatistics()
        let expectListed = try ns.conntrack(["-S", "expect"]).lines.map(parseStats)
        XCTAssertEqual(expect.count, expectListed.count)
        for (cpu, line) in zip(expect, expectListed) {
            XCTAssertEqual(line, ["cpu": "\(cpu.cpu)", "expect_new": "\(cpu.new ?? 99)",
                                  "expect_create": "\(cpu.create ?? 99)", "expect_delete": "\(cpu.delete ?? 99)"])
        }
        // Without the statistics messages: refused.
        let old = try handle(ns, capabilities: .detect().removing([.statistics]))
        XCTAssertThrowsError(try old.tableSize()) { error in
            guard case .unsupported(.statistics, _)? = (error as? ConntrackError)?.reason else { return XCTFail("\(error)") }
        }
    }

    private func parseStats(_ line: String) -> [String: String] {
        var fields: [String: String] = [:]
        for word in line.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
            let parts = word.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        return fields
    }

    /// Opening a handle on a namespace that does not exist, or on a file
    /// that is none.
    func testOpenErrors() throws {
        XCTAssertThrowsError(try Conntrack(namespace: .named("ctlkt-no-such-namespace"))) { error in
            let error = error as? ConntrackError
            XCTAssertEqual(error?.operation, .open)
            XCTAssertEqual(error?.errno, Errno(ENOENT))
            guard case .namespace(.named("ctlkt-no-such-namespace"), _)? = error?.reason else { return XCTFail("\(String(describing: error))") }
        }
        XCTAssertThrowsError(try Conntrack(namespace: .path("/etc/hostname"))) { error in
            XCTAssertEqual((error as? ConntrackError)?.operation, .open)
        }
        // By path and by descriptor, the same table as by name.
        let ns = try makeNamespace("open")
        try ns.load(["-I -p udp -s 10.11.0.1 -d 10.11.0.2 --sport 1 --dport 2 -t 500"])
        let byPath = try Conntrack(namespace: .path("/run/netns/\(ns.name)"))
        XCTAssertEqual(try byPath.allFlows().map(key(of:)), ["p=17 src=10.11.0.1 dst=10.11.0.2 sport=1 dport=2"])
        let fd = open("/run/netns/\(ns.name)", O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let byDescriptor = try Conntrack(namespace: .descriptor(fd))
        close(fd)
        XCTAssertEqual(try byDescriptor.allFlows().count, 1)
        XCTAssertEqual(try byDescriptor.tableSize().entries, 1)
    }
}
