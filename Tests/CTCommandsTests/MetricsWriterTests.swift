import CTCore
import XCTest
@testable import CTCommands

/// The -o metrics writer: grouping of samples, HELP/TYPE once per metric,
/// escaping. (The integration tests run its output through promtool and
/// prometheus_client's parser.)
final class MetricsWriterTests: XCTestCase {
    func testSamplesOfOneMetricStayTogetherWithOneHelpAndType() {
        var w = MetricsWriter()
        w.entries(3, labels: [("netns", "a")])
        w.limit(100, labels: [("netns", "a")])
        w.entries(5, labels: [("netns", "b")])
        XCTAssertEqual(w.text, """
            # HELP ctl_conntrack_entries Entries in the connection tracking table.
            # TYPE ctl_conntrack_entries gauge
            ctl_conntrack_entries{netns="a"} 3
            ctl_conntrack_entries{netns="b"} 5
            # HELP ctl_conntrack_limit The most entries the connection tracking table may hold (nf_conntrack_max).
            # TYPE ctl_conntrack_limit gauge
            ctl_conntrack_limit{netns="a"} 100

            """)
    }

    func testEmptyWriterWritesNothing() {
        XCTAssertEqual(MetricsWriter().text, "")
    }

    func testEscaping() {
        XCTAssertEqual(MetricsWriter.escape("a\\b\"c\nd"), "a\\\\b\\\"c\\nd")
        XCTAssertEqual(MetricsWriter.labelName("reply-src"), "reply_src")
        XCTAssertEqual(MetricsWriter.labelName("1x"), "_1x")
        var w = MetricsWriter()
        w.groups([.init(keys: [("label", "x\"y"), ("reply-dport", "53")], entries: 2, packets: 7, bytes: 900)])
        XCTAssertTrue(w.text.contains("ctl_conntrack_group_entries{label=\"x\\\"y\",reply_dport=\"53\"} 2\n"), w.text)
        XCTAssertTrue(w.text.contains("ctl_conntrack_group_packets{label=\"x\\\"y\",reply_dport=\"53\"} 7\n"), w.text)
        XCTAssertTrue(w.text.contains("ctl_conntrack_group_bytes{label=\"x\\\"y\",reply_dport=\"53\"} 900\n"), w.text)
    }

    func testGroupsWithoutAccountingHaveNoPacketsOrBytes() {
        var w = MetricsWriter()
        w.groups([.init(keys: [("src", "10.0.0.1")], entries: 4), .init(keys: [("src", "::1")], entries: 1)])
        XCTAssertFalse(w.text.contains("packets"))
        XCTAssertFalse(w.text.contains("bytes"))
        XCTAssertEqual(w.text.components(separatedBy: "# TYPE").count, 2)
    }

    func testPerCPUCountersAndSums() {
        var a = CPUStatistics(cpu: 0)
        a.found = 2
        a.insertFailed = 1
        var b = CPUStatistics(cpu: 1)
        b.found = 5
        b.insertFailed = 0
        var w = MetricsWriter()
        w.statistics([a, b])
        let lines = w.text.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("ctl_conntrack_stat_found_total{cpu=\"0\"} 2"))
        XCTAssertTrue(lines.contains("ctl_conntrack_stat_found_total{cpu=\"1\"} 5"))
        XCTAssertTrue(lines.contains("ctl_conntrack_stat_found_all_cpus_total 7"))
        XCTAssertTrue(lines.contains("ctl_conntrack_stat_insert_failed_all_cpus_total 1"))
        XCTAssertTrue(lines.contains("# TYPE ctl_conntrack_stat_insert_failed_total counter"))
    }
}
