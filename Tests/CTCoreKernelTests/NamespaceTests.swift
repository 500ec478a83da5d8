import CTCore
import Foundation
import XCTest

/// Handles on several namespaces at once, and a large dump cancelled.
final class NamespaceTests: KernelTestCase {
    /// Two handles on two namespaces, used at once from two tasks: each
    /// sees and changes only its own table.
    func testTwoNamespacesConcurrently() async throws {
        let red = try makeNamespace("red")
        let blue = try makeNamespace("blue")
        try red.load((0..<200).map { "-I -p udp -s 10.40.0.\($0 % 250 + 1) -d 10.40.1.1 --sport \($0) --dport 53 -t 600" })
        try blue.load((0..<300).map { "-I -p tcp -s 10.50.0.\($0 % 250 + 1) -d 10.50.1.1 --sport \($0) --dport 80 --state ESTABLISHED -t 600" })
        let redHandle = try handle(red)
        let blueHandle = try Conntrack(namespace: .path("/run/netns/\(blue.name)"))

        func work(_ conntrack: Conntrack, prefix: String, base: Int, proto: IPProtocol) async throws -> Int {
            var checked = 0
            for round in 0..<20 {
                try conntrack.create(udpFlow("\(prefix).9.\(round + 1)", "\(prefix).9.250", 7, 7))
                var n = 0
                for try await flow in conntrack.flows() {
                    guard case .v4(let src)? = flow.orig?.src, text(.v4(src)).hasPrefix(prefix + ".") else {
                        throw TestFailure("a flow of the other namespace: \(flow)")
                    }
                    n += 1
                }
                let all = try conntrack.allFlows()
                guard n == base + round + 1, all.count == n else {
                    throw TestFailure("\(prefix): \(n) streamed, \(all.count) listed, \(base + round + 1) expected")
                }
                checked += n
                await Task.yield()
            }
            return checked
        }
        async let r = work(redHandle, prefix: "10.40", base: 200, proto: .udp)
        async let b = work(blueHandle, prefix: "10.50", base: 300, proto: .tcp)
        let (redChecked, blueChecked) = try await (r, b)
        XCTAssertEqual(redChecked, (1...20).map { 200 + $0 }.reduce(0, +))
        XCTAssertEqual(blueChecked, (1...20).map { 300 + $0 }.reduce(0, +))
        XCTAssertEqual(try red.count(), 220)
        XCTAssertEqual(try blue.count(), 320)
        XCTAssertEqual(try red.listedKeys(["-s", "10.50.0.0/16"]), [])
        XCTAssertEqual(try blue.listedKeys(["-s", "10.40.0.0/16"]), [])
        // Deletes and flushes from both at once stay in their namespace.
        async let redDeleted = Task { try redHandle.deleteAll(matching: makeFilter { f in f.ipProtocol = .udp }) }.value
        async let blueFlushed: Void = Task { try blueHandle.flush() }.value
        let deleted = try await redDeleted.deleted
        try await blueFlushed
        XCTAssertEqual(deleted, 220)
        XCTAssertEqual(try red.count(), 0)
        XCTAssertEqual(try blue.count(), 0)
        // The handle of the test process's own namespace saw none of it (it
        // is not listed: the host's table is never touched).
        XCTAssertEqual(redHandle.namespace, .named(red.name))
    }

    /// A task iterating flows() of a 20,000-entry table, cancelled: it ends
    /// promptly, and the handle works afterwards.
    func testCancelLargeDump() async throws {
        let ns = try makeNamespace("bigdump")
        let conntrack = try handle(ns)
        let total = 20_000
        let flows = (0..<total).map { udpFlow("10.60.\($0 / 250).\($0 % 250 + 1)", "10.61.0.1", 1000, 2000) }
        let results = try conntrack.apply(flows.map { .create($0) })
        XCTAssertEqual(results.filter { $0 != .done }.count, 0)
        XCTAssertEqual(try ns.count(), total)
        let fds = openDescriptors()
        for round in 0..<3 {
            let started = Collector<Int>.Flag()
            let task = Task {
                var n = 0
                for try await _ in conntrack.flows(bufferSize: 512) {
                    n += 1
                    if n == 100 { started.set() }
                    if n >= 100 { try? await Task.sleep(nanoseconds: 1_000_000) }
                }
                return n
            }
            try await eventually(10, "the dump to start") { started.isSet }
            let start = Date()
            task.cancel()
            let n = try await task.value
            let took = Date().timeIntervalSince(start)
            XCTAssertLessThan(took, 1.0, "round \(round): the dump ended \(took) s after cancel")
            XCTAssertLessThan(n, total, "round \(round): cancelled before the end")
        }
        // The handle works afterwards, and the cancelled dumps left no
        // socket or thread behind (give their threads a moment to go).
        XCTAssertEqual(try conntrack.tableSize().entries, UInt32(total))
        var n = 0
        for try await _ in conntrack.flows() { n += 1 }
        XCTAssertEqual(n, total)
        try await eventually(5, "descriptors back to \(fds) + at most the idle sessions") {
            openDescriptors() <= fds + 4
        }
        // Dropping an iterator half way ends its dump too.
        do {
            var iterator = conntrack.flows().makeAsyncIterator()
            _ = try await iterator.next()
        }
        XCTAssertEqual(try conntrack.allFlows().count, total)
        try conntrack.flush()
        XCTAssertEqual(try ns.count(), 0)
    }

    private func openDescriptors() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
    }
}

extension Collector {
    /// A flag one task sets and another polls.
    final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        func set() { lock.lock(); value = true; lock.unlock() }
        var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    }
}
