import CTCore
import Foundation
import XCTest

/// Event streams: kinds and port ids, filters, bursts under each overflow
/// policy, cancellation.
final class EventStreamTests: KernelTestCase {
    /// A namespace whose loopback traffic is tracked, with events enabled.
    private func eventNamespace(_ tag: String) throws -> TestNamespace {
        let ns = try makeNamespace(tag)
        try ns.exec(["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_events=1"])
        try ns.exec(["nft", "-f", "-"], input: """
            table inet ctlktev {
                chain out {
                    type filter hook output priority 0; policy accept;
                    ct state new counter
                }
            }
            """)
        return ns
    }

    private func insertLine(_ i: Int, _ prefix: String = "10.20") -> String {
        "-I -p udp -s \(prefix).\(i / 250).\(i % 250 + 1) -d 10.30.0.1 --sport 1000 --dport 2000 -t 600"
    }

    /// Waits until the streams are subscribed: conntrack -I (and -D) of
    /// marker entries from 10.99.99.1 until every stream saw one.
    private func waitSubscribed(_ ns: TestNamespace, _ collectors: Collector<ConntrackEvent>...,
                                dport: Int = 1, delete: Bool = false) async throws {
        var port = 40000
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            let args = ["-p", "udp", "-s", "10.99.99.1", "-d", "10.99.99.2", "--sport", "\(port)", "--dport", "\(dport)"]
            try ns.conntrack(["-I"] + args + ["-t", "600"])
            if delete { try ns.conntrack(["-D"] + args) }
            let want = UInt16(port)
            for _ in 0..<10 {
                if collectors.allSatisfy({ $0.elements.contains { $0.event?.flow.orig?.srcPort == want } }) { return }
                try await Task.sleep(nanoseconds: 20_000_000)
            }
            port += 1
        }
        throw TestFailure("the event stream never saw a marker entry")
    }

    func testEventKindsAndPortIDs() async throws {
        let ns = try eventNamespace("events")
        let conntrack = try handle(ns)
        let collector = Collector(conntrack.events())
        defer { collector.cancel() }
        try await waitSubscribed(ns, collector)
        let args = ["-p", "udp", "-s", "10.21.0.1", "-d", "10.21.0.2", "--sport", "5", "--dport", "6"]
        try ns.conntrack(["-I"] + args + ["-t", "600"])
        try ns.conntrack(["-U"] + args + ["-m", "9"])
        try ns.conntrack(["-D"] + args)
        // A connection of the kernel's own (loopback traffic): port id 0.
        try ns.exec(["bash", "-c", "echo x > /dev/udp/127.0.0.1/5999"])
        let mine: (Event) -> Bool = { $0.flow.orig?.srcPort == 5 && $0.flow.orig?.dstPort == 6 }
        try await eventually(5, "new, update and destroy of the entry") {
            collector.elements.compactMap(\.event).filter(mine).count >= 3
        }
        try await eventually(5, "the loopback connection's event") {
            collector.elements.contains { $0.event?.flow.orig?.dstPort == 5999 }
        }
        let events = collector.elements.compactMap(\.event).filter(mine)
        XCTAssertEqual(events.map(\.type), [.new, .update, .destroy])
        for event in events { XCTAssertNotEqual(event.portID, 0, "\(event.type) from conntrack has its port id") }
        XCTAssertEqual(events[1].flow.mark, 9)
        XCTAssertEqual(events.map(\.flow.family), [.ipv4, .ipv4, .ipv4])
        let kernel = try XCTUnwrap(collector.elements.compactMap(\.event).first { $0.flow.orig?.dstPort == 5999 })
        XCTAssertEqual(kernel.type, .new)
        XCTAssertEqual(kernel.portID, 0)
        XCTAssertFalse(collector.elements.contains(.lost))
        // The library's own writes carry its port id, not 0.
        try conntrack.create(udpFlow("10.21.0.3", "10.21.0.4", 7, 8))
        XCTAssertEqual(try conntrack.delete(try flowKey("10.21.0.3", "10.21.0.4", .udp, 7, 8)), .done)
        try await eventually(5, "the library's new and destroy") {
            collector.elements.compactMap(\.event).filter { $0.flow.orig?.srcPort == 7 }.count == 2
        }
        let own = collector.elements.compactMap(\.event).filter { $0.flow.orig?.srcPort == 7 }
        XCTAssertEqual(own.map(\.type), [.new, .destroy])
        XCTAssertTrue(own.allSatisfy { $0.portID != 0 })
    }

    func testEventFilterAndTypes() async throws {
        let ns = try eventNamespace("evfilter")
        let conntrack = try handle(ns)
        var filter = FlowFilter()
        filter.ipProtocol = .udp
        filter.origDstPort = 7777
        let filtered = Collector(conntrack.events(matching: filter))
        let destroys = Collector(conntrack.events(options: EventStreamOptions(types: [.destroy])))
        defer { filtered.cancel(); destroys.cancel() }
        try await waitSubscribed(ns, filtered, destroys, dport: 7777, delete: true)
        var lines: [String] = []
        for port in 1...5 {
            lines.append("-I -p udp -s 10.22.0.1 -d 10.22.0.2 --sport \(port) --dport 7777 -t 600")
            lines.append("-I -p udp -s 10.22.0.1 -d 10.22.0.2 --sport \(port) --dport 7778 -t 600")
            lines.append("-I -p tcp -s 10.22.0.1 -d 10.22.0.2 --sport \(port) --dport 7777 --state ESTABLISHED -t 600")
        }
        try ns.load(lines)
        try ns.conntrack(["-D", "-s", "10.22.0.1"])
        let ours: (Event) -> Bool = { $0.flow.orig?.src == ip("10.22.0.1") }
        try await eventually(5, "5 new and 5 destroy events of the filter") {
            filtered.elements.compactMap(\.event).filter(ours).count >= 10
        }
        try await eventually(5, "15 destroy events") {
            destroys.elements.compactMap(\.event).filter { $0.flow.orig?.src == ip("10.22.0.1") }.count >= 15
        }
        try await Task.sleep(nanoseconds: 200_000_000)
        let seen = filtered.elements.compactMap(\.event).filter(ours)
        XCTAssertEqual(seen.count, 10, "\(seen)")
        XCTAssertTrue(filtered.elements.compactMap(\.event).allSatisfy { filter.matches($0.flow) })
        XCTAssertTrue(seen.allSatisfy { filter.matches($0.flow) })
        XCTAssertEqual(seen.filter { $0.type == .new }.count, 5)
        XCTAssertEqual(seen.filter { $0.type == .destroy }.count, 5)
        XCTAssertTrue(destroys.elements.compactMap(\.event).allSatisfy { $0.type == .destroy })
    }

    // MARK: - Bursts

    /// A stream with a small receive buffer whose consumer pauses during a
    /// burst of `count` entries made by conntrack -R, so the kernel drops
    /// events; then the consumer goes on.
    private func burst(_ policy: EventOverflowPolicy, count: Int = 3000)
        async throws -> (TestNamespace, Conntrack, Collector<ConntrackEvent>) {
        let ns = try eventNamespace("burst")
        let conntrack = try handle(ns)
        var options = EventStreamOptions(overflow: policy, receiveBufferSize: 8192)
        options.bufferedEvents = 64
        let collector = Collector(conntrack.events(options: options))
        try await waitSubscribed(ns, collector)
        collector.paused = true
        try ns.load((0..<count).map { insertLine($0) })
        XCTAssertGreaterThanOrEqual(try ns.count(), count)
        collector.paused = false
        return (ns, conntrack, collector)
    }

    func testBurstReport() async throws {
        let (ns, _, collector) = try await burst(.report)
        defer { collector.cancel() }
        try await eventually(10, "a .lost element") { collector.elements.contains(.lost) }
        // The stream goes on: later events arrive after the gap.
        try ns.conntrack(["-I", "-p", "tcp", "-s", "10.23.0.1", "-d", "10.23.0.2", "--sport", "1", "--dport", "2",
                          "--state", "ESTABLISHED", "-t", "600"])
        try await eventually(10, "the event after the burst") {
            collector.elements.contains { $0.event?.flow.orig?.src == ip("10.23.0.1") }
        }
        let all = collector.elements
        let lost = all.firstIndex(of: .lost)!
        let after = all.firstIndex { $0.event?.flow.orig?.src == ip("10.23.0.1") }!
        XCTAssertLessThan(lost, after)
        XCTAssertFalse(collector.isEnded)
        let delivered = all.compactMap(\.event).filter { $0.type == .new }.count
        XCTAssertLessThan(delivered, 3000, "the burst did not fit")
    }

    func testBurstResync() async throws {
        let (ns, _, collector) = try await burst(.resync)
        defer { collector.cancel() }
        try await eventually(20, "a whole resync") { collector.elements.contains(.resyncFinished) }
        let all = collector.elements
        let lost = try XCTUnwrap(all.firstIndex(of: .lost))
        XCTAssertEqual(all[lost + 1], .resyncStarted)
        let end = try XCTUnwrap(all.firstIndex(of: .resyncFinished))
        XCTAssertLessThan(lost, end)
        var snapshot: [String] = []
        for element in all[(lost + 2)..<end] {
            guard case .snapshot(let flow) = element else { return XCTFail("\(element) inside a resync") }
            snapshot.append(key(of: flow))
        }
        let table = try ns.listedKeys()
        XCTAssertEqual(snapshot.count, table.count)
        XCTAssertEqual(Set(snapshot), table)
        // Events go on after it.
        try ns.conntrack(["-D", "-s", "10.20.0.1"])
        try await eventually(10, "a destroy after the resync") {
            collector.elements.contains { $0.event?.type == .destroy && $0.event?.flow.orig?.src == ip("10.20.0.1") }
        }
    }

    func testBurstReliable() async throws {
        let (ns, _, collector) = try await burst(.reliable, count: 2000)
        defer { collector.cancel() }
        try await Task.sleep(nanoseconds: 300_000_000)
        // Deleting them all while the consumer pauses again: the kernel
        // keeps destroy events it could not deliver and sends them later.
        collector.paused = true
        try ns.conntrack(["-D", "-d", "10.30.0.1"])
        collector.paused = false
        try await eventually(30, "every destroy event") {
            collector.elements.compactMap(\.event).filter { $0.type == .destroy }.count >= 2000
        }
        XCTAssertFalse(collector.elements.contains(.lost), "no loss reported under .reliable")
        XCTAssertEqual(try ns.listedKeys(["-d", "10.30.0.1"]), [])
        XCTAssertFalse(collector.isEnded)
    }

    func testBurstFail() async throws {
        let (_, _, collector) = try await burst(.fail)
        try await eventually(10, "the end of the stream") { collector.isEnded }
        let error = try XCTUnwrap(collector.error as? ConntrackError, "\(String(describing: collector.error))")
        XCTAssertEqual(error.reason, .eventsLost)
        XCTAssertEqual(error.operation, .events)
    }

    // MARK: - Cancellation

    func testCancelIdleEventStream() async throws {
        let ns = try eventNamespace("evcancel")
        let conntrack = try handle(ns)
        for options in [EventStreamOptions(), EventStreamOptions(overflow: .resync), EventStreamOptions(overflow: .reliable)] {
            let task = Task {
                var n = 0
                for try await _ in conntrack.events(options: options) { n += 1 }
                return n
            }
            try await Task.sleep(nanoseconds: 300_000_000)
            let start = Date()
            task.cancel()
            let received = try await task.value
            let took = Date().timeIntervalSince(start)
            XCTAssertLessThan(took, 1.0, "the stream ended \(took) s after cancel (\(options.overflow))")
            XCTAssertEqual(received, 0)
        }
        // Expectation events too.
        let task = Task { for try await _ in conntrack.expectationEvents() {} }
        try await Task.sleep(nanoseconds: 300_000_000)
        let start = Date()
        task.cancel()
        try await task.value
        XCTAssertLessThan(Date().timeIntervalSince(start), 1.0)
        // The handle still works.
        try conntrack.create(udpFlow("10.24.0.1", "10.24.0.2", 1, 2))
        XCTAssertEqual(try ns.count(), 1)
    }
}
