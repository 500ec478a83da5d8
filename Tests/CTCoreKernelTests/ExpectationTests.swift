import CTCore
import Foundation
import XCTest

/// The expectation table: real expectations made by the kernel's ftp and
/// sip helpers on loopback traffic (Tests/integration/expect_traffic.py),
/// compared with conntrack -L expect.
final class ExpectationTests: KernelTestCase {
    static let ruleset = """
        table inet ctlktexp {
            ct helper ftp-x { type "ftp" protocol tcp; l3proto inet; }
            ct helper sip-x { type "sip" protocol udp; l3proto inet; }
            chain out {
                type filter hook output priority filter; policy accept;
                ct state new tcp dport 2121 ct helper set "ftp-x"
                ct state new udp dport 5060 ct helper set "sip-x"
            }
        }
        """

    static let trafficScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("integration/expect_traffic.py").path

    /// A namespace with an ftp and a sip master, each with its expectation.
    private func helperNamespace() throws -> TestNamespace {
        let ns = try makeNamespace("expect")
        try ns.exec(["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_events=1",
                     "net.netfilter.nf_conntrack_udp_timeout=3600"])
        let rules = try ns.exec(["nft", "-f", "-"], input: Self.ruleset, check: false)
        guard rules.status == 0 else { throw XCTSkip("this kernel has no ftp/sip conntrack helpers: \(rules.stderr)") }
        let (_, _, stdout) = try ns.spawn(["python3", Self.trafficScript, "ftp4", "sip"])
        let ready = String(decoding: stdout.availableData, as: UTF8.self)
        guard ready.hasPrefix("READY") else { throw TestFailure("expect_traffic.py: \(ready)") }
        return ns
    }

    private func key(of e: Expectation) -> String {
        guard let t = e.tuple else { return "?" }
        return (["proto=\(t.ipProtocol?.rawValue ?? 0)"] + fields(t, .udp)).joined(separator: " ")
    }

    private func listedExpectations(_ ns: TestNamespace, _ args: [String] = []) throws -> Set<String> {
        Set(try ns.conntrack(["-L", "expect"] + args).lines.map { line in
            line.split(separator: " ").dropFirst().prefix { !$0.hasPrefix("mask-") }.joined(separator: " ")
        })
    }

    private let sipMaster = Tuple(source: ip("127.0.0.1"), destination: ip("127.0.0.1"), protocol: .udp,
                                  sourcePort: 5062, destinationPort: 5060)

    private func expected(_ dport: UInt16, proto: IPProtocol = .udp) -> Tuple {
        Tuple(source: ip("127.0.0.1"), destination: ip("127.0.0.1"), protocol: proto, sourcePort: 0, destinationPort: dport)
    }

    private let mask = Tuple(source: .v4(.max), destination: .v4(.max), protocol: .udp, sourcePort: 0, destinationPort: .max)

    func testDumpGetCreateDeleteFlush() async throws {
        let ns = try helperNamespace()
        let conntrack = try handle(ns)
        // Dump.
        let listed = try listedExpectations(ns)
        XCTAssertEqual(listed, ["proto=6 src=127.0.0.1 dst=127.0.0.1 sport=0 dport=40001",
                                "proto=17 src=127.0.0.1 dst=127.0.0.1 sport=0 dport=5070"])
        let all = try conntrack.allExpectations()
        XCTAssertEqual(Set(all.map(key(of:))), listed)
        let ftp = try XCTUnwrap(all.first { $0.helper == "ftp" })
        XCTAssertEqual(ftp.family, .ipv4)
        XCTAssertEqual(ftp.master.map { fields($0, .tcp) }, ["src=127.0.0.1", "dst=127.0.0.1", "sport=40201", "dport=2121"])
        XCTAssertTrue(all.first { $0.helper == "sip" }?.flags?.contains(.permanent) ?? false)
        XCTAssertEqual(try conntrack.allExpectations(family: .ipv6), [])
        XCTAssertEqual(try listedExpectations(ns, ["-f", "ipv6"]), [])
        var one = 0
        XCTAssertTrue(try conntrack.forEachExpectation { _ in one += 1; return .stop }.stopped)
        XCTAssertEqual(one, 1)

        // Get.
        let got = try XCTUnwrap(try conntrack.expectation(for: expected(40001, proto: .tcp), family: .ipv4))
        XCTAssertEqual(got.helper, "ftp")
        XCTAssertEqual(got.id, ftp.id)
        XCTAssertNil(try conntrack.expectation(for: expected(40999, proto: .tcp), family: .ipv4))

        // Create, with events.
        let events = Collector(conntrack.expectationEvents())
        defer { events.cancel() }
        try await Task.sleep(nanoseconds: 300_000_000)
        try conntrack.createExpectation(master: sipMaster, expected: expected(5090), mask: mask, family: .ipv4, timeout: 100)
        let afterCreate = try listedExpectations(ns)
        XCTAssertTrue(afterCreate.contains("proto=17 src=127.0.0.1 dst=127.0.0.1 sport=0 dport=5090"), "\(afterCreate)")
        XCTAssertEqual(Set(try conntrack.allExpectations().map(key(of:))), afterCreate)
        let line = try XCTUnwrap(try ns.conntrack(["-L", "expect"]).lines.first { $0.contains("dport=5090") })
        XCTAssertTrue(line.contains("master-src=127.0.0.1 master-dst=127.0.0.1 sport=5062 dport=5060"), line)
        let createdTimeout = Int(line.split(separator: " ")[0])!
        // The same again: EEXIST.
        XCTAssertThrowsError(try conntrack.createExpectation(master: sipMaster, expected: expected(5090), mask: mask,
                                                             family: .ipv4, timeout: 100)) { error in
            XCTAssertEqual((error as? ConntrackError)?.errno, .exists)
            XCTAssertEqual((error as? ConntrackError)?.operation, .expectationCreate)
        }
        try await eventually(5, "the new expectation's event") {
            events.elements.contains { if case .new(let e) = $0 { return e.tuple?.dstPort == 5090 } else { return false } }
        }

        // Delete: done, then gone.
        XCTAssertEqual(try conntrack.deleteExpectation(for: expected(5090), family: .ipv4), .done)
        XCTAssertFalse(try listedExpectations(ns).contains { $0.hasSuffix("dport=5090") })
        XCTAssertEqual(try conntrack.deleteExpectation(for: expected(5090), family: .ipv4), .notFound)
        try await eventually(5, "the destroy event") {
            events.elements.contains { if case .destroy(let e) = $0 { return e.tuple?.dstPort == 5090 } else { return false } }
        }
        XCTAssertFalse(events.elements.contains(.lost))

        // The kernel gives a new expectation of a master with a helper that
        // helper's timeout (sip: 180 s) whatever the request says; conntrack
        // -I expect -t 100 gets the same as the library did. (Done after the
        // delete: the sip master keeps a bounded number of expectations, and
        // a new one evicts the oldest.)
        try ns.conntrack(["-I", "expect", "-s", "127.0.0.1", "-d", "127.0.0.1", "-p", "udp", "--sport", "5062",
                          "--dport", "5060", "-t", "100", "--tuple-src", "127.0.0.1", "--tuple-dst", "127.0.0.1",
                          "--mask-src", "255.255.255.255", "--mask-dst", "255.255.255.255",
                          "--tuple-port-src", "0", "--tuple-port-dst", "5091", "--mask-port-src", "0",
                          "--mask-port-dst", "65535"])
        let oracleLine = try XCTUnwrap(try ns.conntrack(["-L", "expect"]).lines.first { $0.contains("dport=5091") })
        XCTAssertLessThanOrEqual(abs(Int(oracleLine.split(separator: " ")[0])! - createdTimeout), 2,
                                 "\(line)\n\(oracleLine)")

        // Flush: the expectation table only.
        let entries = try ns.count()
        XCTAssertFalse(try listedExpectations(ns).isEmpty)
        try conntrack.flushExpectations()
        XCTAssertEqual(try listedExpectations(ns), [])
        XCTAssertEqual(try conntrack.allExpectations(), [])
        XCTAssertEqual(try ns.count(), entries)
        try conntrack.flushExpectations()

        // Statistics as conntrack -S expect shows them.
        let stats = try conntrack.expectationStatistics()
        // Created: the helpers' two, ctnetlink's two, and any the sip helper
        // made again for a retransmission.
        XCTAssertGreaterThanOrEqual(stats.compactMap(\.create).reduce(0, +), 4)
        let listedStats = try ns.conntrack(["-S", "expect"]).lines
        XCTAssertEqual(listedStats.count, stats.count)
        for (cpu, text) in zip(stats, listedStats) {
            XCTAssertTrue(text.contains("expect_new=\(cpu.new ?? 0) expect_create=\(cpu.create ?? 0) expect_delete=\(cpu.delete ?? 0)"),
                          text)
        }
    }

    func testCreateErrorsAndEmptyTable() throws {
        let ns = try makeNamespace("expect-empty")
        let conntrack = try handle(ns)
        // An empty table: dump and flush work on it.
        XCTAssertEqual(try conntrack.allExpectations(), [])
        XCTAssertEqual(try listedExpectations(ns), [])
        try conntrack.flushExpectations()
        XCTAssertNil(try conntrack.expectation(for: expected(5090), family: .ipv4))
        XCTAssertEqual(try conntrack.deleteExpectation(for: expected(5090), family: .ipv4), .notFound)
        // No master: ENOENT, like conntrack's "master conntrack not found".
        XCTAssertThrowsError(try conntrack.createExpectation(master: sipMaster, expected: expected(5090), mask: mask,
                                                             family: .ipv4, timeout: 100)) { error in
            XCTAssertEqual((error as? ConntrackError)?.errno, .noEntry)
        }
        // A master without a helper: EOPNOTSUPP.
        try conntrack.create(udpFlow("127.0.0.1", "127.0.0.1", 5062, 5060))
        XCTAssertThrowsError(try conntrack.createExpectation(master: sipMaster, expected: expected(5090), mask: mask,
                                                             family: .ipv4, timeout: 100)) { error in
            XCTAssertEqual((error as? ConntrackError)?.errno, .notSupported)
        }
        let oracle = try ns.conntrack(["-I", "expect", "-s", "127.0.0.1", "-d", "127.0.0.1", "-p", "udp", "--sport", "5062",
                                       "--dport", "5060", "-t", "100", "--tuple-src", "127.0.0.1", "--tuple-dst", "127.0.0.1",
                                       "--mask-src", "255.255.255.255", "--mask-dst", "255.255.255.255",
                                       "--tuple-port-src", "0", "--tuple-port-dst", "5090", "--mask-port-src", "0",
                                       "--mask-port-dst", "65535"], check: false)
        XCTAssertTrue(oracle.stderr.contains("Operation not supported"), oracle.stderr)
        XCTAssertEqual(try conntrack.allExpectations(), [])
    }
}
