// A tour of CTCore's public API in a network namespace of its own: dump
// with a filter, get, create, update, delete by key, delete by filter,
// events, statistics. Run it as root; it exits non-zero on any failure and
// deletes its namespace in every case.
import CTCore
import Foundation
import Recipes

struct TourFailure: Error, CustomStringConvertible {
    var description: String
}

let start = ContinuousClock.now

func say(_ line: String) {
    let elapsed = (ContinuousClock.now - start).components
    let ms = elapsed.seconds * 1000 + elapsed.attoseconds / 1_000_000_000_000_000
    print(String(format: "[%6.3f] ", Double(ms) / 1000) + line)
    fflush(nil)   // every stream (stdout is a C global Swift 6 will not touch)
}

func check(_ condition: Bool, _ what: @autoclosure () -> String) throws {
    guard condition else { throw TourFailure(description: what()) }
    say("  ok: \(what())")
}

/// Runs a command, throwing if it fails.
func run(_ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw TourFailure(description: "\(arguments.joined(separator: " ")) exited \(process.terminationStatus)")
    }
}

/// An IPv4 address written in the tour.
func v4(_ text: String) -> IPAddress {
    guard let address = IPAddress(text), address.family == .ipv4 else { fatalError("not an IPv4 address: \(text)") }
    return address
}

/// A UDP entry from `client`:`port` to `server`:53, two minutes to live.
func udpFlow(_ client: String, _ port: UInt16, to server: String, dport: UInt16 = 53) -> Flow {
    var flow = Flow()
    flow.family = .ipv4
    flow.orig = Tuple(source: v4(client), destination: v4(server), protocol: .udp,
                      sourcePort: port, destinationPort: dport)
    flow.reply = Tuple(source: v4(server), destination: v4(client), protocol: .udp,
                       sourcePort: dport, destinationPort: port)
    flow.timeout = 120
    return flow
}

func tour(_ conntrack: Conntrack, namespace: String) async throws {
    let capabilities = conntrack.capabilities
    say("kernel \(capabilities.version): \(capabilities.features.map(\.rawValue).sorted().joined(separator: ", "))")

    // Events: subscribe before anything happens (the iterator exists, so
    // the stream is listening), collect on a task of its own.
    var eventFilter = FlowFilter()
    eventFilter.ipProtocol = .udp
    var events = conntrack.events(matching: eventFilter).makeAsyncIterator()
    try await Task.sleep(for: .milliseconds(300))   // the listener opens its socket on its own thread
    // Until 35 new and 35 destroy events came, or the tour cancels it.
    let listener = Task { () throws(ConntrackError) -> [Event] in
        var seen: [Event] = []
        var news = 0, destroys = 0
        while news < 35 || destroys < 35, let element = try await events.next() {
            guard case .event(let event) = element else { continue }
            seen.append(event)
            if event.type == .new { news += 1 }
            if event.type == .destroy { destroys += 1 }
        }
        return seen
    }

    say("create: 20 UDP entries to 10.1.0.1:53, 10 to 10.1.0.2:53, 5 to 10.1.0.3:5353")
    for port in UInt16(1000)..<1020 { try conntrack.create(udpFlow("10.0.0.1", port, to: "10.1.0.1")) }
    let writes = (UInt16(2000)..<2010).map { FlowWrite.create(udpFlow("10.0.0.2", $0, to: "10.1.0.2")) }
        + (UInt16(3000)..<3005).map { FlowWrite.create(udpFlow("10.0.0.3", $0, to: "10.1.0.3", dport: 5353)) }
    let created = try conntrack.apply(writes)
    try check(created.allSatisfy { $0 == .done }, "15 more created in one batch (apply)")
    do {
        try conntrack.create(udpFlow("10.0.0.1", 1000, to: "10.1.0.1"))
        throw TourFailure(description: "creating an existing entry succeeded")
    } catch let error as ConntrackError {
        try check(error.errno == .exists, "creating it again fails: \(error)")
    }

    say("dump with a filter: UDP to 10.1.0.1, port 53")
    var filter = FlowFilter()
    filter.family = .ipv4
    filter.ipProtocol = .udp
    filter.origDst = AddressMatch(v4("10.1.0.1"))
    filter.origDstPort = 53
    let clauses = filter.kernelFilteredClauses(on: capabilities).map(\.rawValue).sorted()
    say("  the kernel applies: \(clauses.joined(separator: ", ")); the rest is checked here")
    // The documentation's example (KernelFiltering.md), checked.
    var documented = FlowFilter()
    documented.family = .ipv4
    documented.origDst = AddressMatch(IPAddress("10.0.0.1")!)
    documented.tcpState = .established
    try check(documented.kernelFilteredClauses(on: .forKernel(KernelVersion(6, 1)))
                  == [.family, .ipProtocol, .origDst]
              && documented.kernelFilteredClauses(on: .forKernel(KernelVersion(5, 10))) == [.family],
              "the kernel's clauses on 6.1 and on 5.10 are as documented")
    let dumped = try conntrack.allFlows(matching: filter)
    try check(dumped.count == 20, "dumped \(dumped.count) entries (20 expected)")
    var streamed = 0
    for try await flow in conntrack.flows(matching: filter) where flow.orig?.dst == v4("10.1.0.1") { streamed += 1 }
    try check(streamed == 20, "the async dump gives the same \(streamed)")
    var whole = 0
    let summary = try conntrack.forEachFlow { _ in whole += 1; return .proceed }
    try check(whole == 35 && !summary.interrupted, "the whole table: \(whole) entries")

    say("get, update and delete by key")
    let key = try FlowKey(tuple: udpFlow("10.0.0.1", 1005, to: "10.1.0.1").orig!)
    let entry = try conntrack.get(key)
    try check(entry?.orig == key.tuple && entry?.id != nil, "get found the entry, id \(entry?.id ?? 0)")
    var update = FlowUpdate()
    update.mark = 42
    update.timeout = 600
    let updated = try conntrack.update(key, update)
    try check(updated?.mark == 42 && (updated?.timeout ?? 0) > 500,
              "update set mark \(updated?.mark ?? 0), timeout \(updated?.timeout ?? 0)")
    var marked = FlowFilter()
    marked.mark = 42
    try check(try conntrack.allFlows(matching: marked).count == 1, "a dump by mark finds it")
    try check(try conntrack.delete(key) == .done, "delete by key: done")
    try check(try conntrack.delete(key) == .notFound, "delete again: not found")
    try check(try conntrack.get(key) == nil, "get: gone")
    let missing = try FlowKey(tuple: udpFlow("10.9.9.9", 1, to: "10.9.9.8").orig!)
    try check(try conntrack.update(missing, update) == nil, "update of a missing entry: nil")

    say("delete a list of keys")
    let keys = try (UInt16(1010)..<1015).map { port throws(ConntrackError) in
        try FlowKey(tuple: udpFlow("10.0.0.1", port, to: "10.1.0.1").orig!)
    }
    let results = try conntrack.delete(keys + [missing])
    try check(results == Array(repeating: .done, count: 5) + [.notFound], "5 deleted, 1 not found")

    say("delete by filter: what is left of 10.1.0.1")
    let deleted = try conntrack.deleteAll(matching: filter)
    try check(deleted.deleted == 14, "deleted \(deleted.deleted) (14 expected)")

    say("delete by several filters in one dump (the stale UDP recipe)")
    let stale = try deleteStaleUDPEntries(of: [Backend(address: v4("10.1.0.2"), port: 53),
                                               Backend(address: v4("10.1.0.3"), port: 5353)], in: conntrack)
    try check(stale == 15, "deleted \(stale) entries of two backends (15 expected)")
    try check(try conntrack.allFlows().isEmpty, "the table is empty")

    say("events: wait (5 s at most) for 35 new and 35 destroy")
    let timeout = Task {
        try await Task.sleep(for: .seconds(5))
        listener.cancel()
    }
    let seen = try await listener.value
    timeout.cancel()
    let news = seen.filter { $0.type == .new }.count, destroys = seen.filter { $0.type == .destroy }.count
    let updates = seen.filter { $0.type == .update }.count
    say("  \(seen.count) events: \(news) new, \(updates) update, \(destroys) destroy")
    try check(news == 35 && destroys == 35, "every create and delete was seen")
    try check(seen.allSatisfy { $0.portID != 0 }, "each event names the port that caused it")

    say("statistics")
    let size = try conntrack.tableSize()
    try check(size.entries == 0, "table size: \(size.entries) entries, limit \(size.limit.map(String.init) ?? "-")")
    let cpus = try conntrack.statistics()
    try check(!cpus.isEmpty, "\(cpus.count) CPUs of counters")
    let metrics = try prometheusMetrics(of: conntrack)
    try check(metrics.contains("conntrack_entries 0"), "Prometheus text: \(metrics.split(separator: "\n").count) lines")

    say("a process's namespace by /proc/PID/ns/net (the container recipe)")
    try conntrack.create(udpFlow("10.0.0.7", 7000, to: "10.1.0.7"))
    let sleeper = Process()
    sleeper.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    sleeper.arguments = ["ip", "netns", "exec", namespace, "sleep", "30"]
    try sleeper.run()
    defer {
        // SIGKILL: a process started from a task inherits the pool
        // thread's blocked signals, SIGTERM among them.
        kill(sleeper.processIdentifier, SIGKILL)
        sleeper.waitUntilExit()
    }
    try await Task.sleep(for: .milliseconds(300))
    let inside = try flows(ofProcess: sleeper.processIdentifier)
    try check(inside.count == 1 && inside[0].orig?.src == v4("10.0.0.7"),
              "pid \(sleeper.processIdentifier)'s namespace has the one entry")
    let here = try Conntrack()
    try check(here.namespace == .current, "a second handle on this process's namespace opens beside it")

    say("an event exporter that keeps a live table (the recipe)")
    var exported = FlowFilter()
    exported.origDst = AddressMatch(v4("10.1.0.9"))
    struct Exported: Sendable {
        var table: LiveTable
        var lines: [String]
    }
    let exporter = Task { () throws -> Exported in
        var lines: [String] = []
        let table = try await exportEvents(of: conntrack, matching: exported) { lines.append($0) }
        return Exported(table: table, lines: lines)
    }
    try await Task.sleep(for: .milliseconds(300))
    let exportedKeys = try (UInt16(9000)..<9010).map { port throws(ConntrackError) -> FlowKey in
        let flow = udpFlow("10.0.0.9", port, to: "10.1.0.9")
        try conntrack.create(flow)
        return try FlowKey(tuple: flow.orig!)
    }
    _ = try conntrack.delete(Array(exportedKeys.prefix(3)))
    try await Task.sleep(for: .seconds(1))
    exporter.cancel()
    let (table, lines) = try await (exporter.value.table, exporter.value.lines)
    say("  exported \(lines.count) lines: \(lines.prefix(2).joined(separator: "; ")), ...")
    try check(table.flows.count == 7 && Set(table.flows.keys.map(\.tuple)) == Set(exportedKeys.dropFirst(3).map(\.tuple)),
              "its table holds the 7 entries left")

    say("flush")
    try conntrack.flush(family: .ipv4)
    try check(try conntrack.allFlows().isEmpty, "flush of IPv4: empty")
}

let namespace = "ctl-tour-\(getpid())"
var status: Int32 = 0
do {
    try run(["ip", "netns", "add", namespace])
    defer { try? run(["ip", "netns", "delete", namespace]) }
    say("namespace \(namespace)")
    let conntrack = try Conntrack(namespace: .named(namespace))
    try await tour(conntrack, namespace: namespace)
    say("tour complete")
} catch {
    say("FAILED: \(error)")
    status = 1
}
exit(status)
