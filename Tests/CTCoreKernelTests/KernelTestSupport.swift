import CTCore
import Foundation
import Glibc
import XCTest

// Support for the library tests against the running kernel: private
// network namespaces (made with `ip netns add`, deleted after each test,
// also when it fails), commands run inside them, and conntrack 1.4.7's
// listings turned into comparable keys. These tests see CTCore only through
// its public API (the target is built as a client of another package).

/// What a command printed and how it ended.
struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String

    var lines: [String] { stdout.split(separator: "\n").map(String.init) }
}

/// Runs `argv` (looked up on PATH) with `input` on standard input.
@discardableResult
func runCommand(_ argv: [String], input: String? = nil) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = argv
    // Files, not pipes: a large listing cannot block the child.
    let dir = FileManager.default.temporaryDirectory
    let tag = UUID().uuidString
    let outURL = dir.appendingPathComponent("ctlkt-\(tag).out")
    let errURL = dir.appendingPathComponent("ctlkt-\(tag).err")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer {
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
    }
    let out = try FileHandle(forWritingTo: outURL)
    let err = try FileHandle(forWritingTo: errURL)
    process.standardOutput = out
    process.standardError = err
    let stdin = Pipe()
    process.standardInput = input == nil ? FileHandle.nullDevice : stdin
    try process.run()
    if let input {
        stdin.fileHandleForWriting.write(input.data(using: .utf8)!)
        try stdin.fileHandleForWriting.close()
    }
    process.waitUntilExit()
    try out.close()
    try err.close()
    return CommandResult(status: process.terminationStatus,
                         stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                         stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
}

/// A network namespace of its own for one test.
final class TestNamespace: @unchecked Sendable {
    let name: String
    private var children: [Process] = []
    private static let counter = Counter()

    /// Makes the namespace and brings its loopback up; the test deletes it
    /// when it ends (see ``KernelTestCase/makeNamespace(_:)``).
    init(_ tag: String) throws {
        name = "ctlkt-\(getpid())-\(TestNamespace.counter.next())-\(tag)"
        let add = try runCommand(["ip", "netns", "add", name])
        guard add.status == 0 else { throw TestFailure("ip netns add \(name): \(add.stderr)") }
        try exec(["ip", "link", "set", "lo", "up"])
    }

    /// Runs `argv` inside the namespace; throws unless it succeeds.
    @discardableResult
    func exec(_ argv: [String], input: String? = nil, check: Bool = true) throws -> CommandResult {
        let result = try runCommand(["ip", "netns", "exec", name] + argv, input: input)
        if check, result.status != 0 {
            throw TestFailure("\(argv.joined(separator: " ")) in \(name) exited \(result.status): \(result.stderr)")
        }
        return result
    }

    /// conntrack 1.4.7 inside the namespace.
    @discardableResult
    func conntrack(_ args: [String], input: String? = nil, check: Bool = true) throws -> CommandResult {
        try exec(["conntrack"] + args, input: input, check: check)
    }

    /// `conntrack -R` of `lines` (one command each).
    func load(_ lines: [String]) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ctlkt-\(UUID().uuidString).r").path
        _ = FileManager.default.createFile(atPath: path, contents: (lines.joined(separator: "\n") + "\n").data(using: .utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        try conntrack(["-R", path])
    }

    /// The original-tuple keys (see ``key(of:)``) of `conntrack -L args`.
    func listedKeys(_ args: [String] = []) throws -> Set<String> {
        Set(try conntrack(["-L"] + args).lines.compactMap(key(ofListing:)))
    }

    /// `conntrack -C`.
    func count() throws -> Int {
        Int(try conntrack(["-C"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    /// A process that runs inside the namespace until the test ends.
    func spawn(_ argv: [String]) throws -> (Process, FileHandle, FileHandle) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", name] + argv
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()
        children.append(process)
        return (process, stdin.fileHandleForWriting, stdout.fileHandleForReading)
    }

    /// Ends what runs in the namespace and deletes it.
    func destroy() {
        // SIGKILL: a child spawned from a Swift concurrency thread inherits
        // its blocked signals, SIGTERM among them, and would never end.
        for child in children where child.isRunning {
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
        }
        if let pids = try? runCommand(["ip", "netns", "pids", name]) {
            for pid in pids.lines.compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
        }
        for _ in 0..<20 {
            if let r = try? runCommand(["ip", "netns", "delete", name]), r.status == 0 { return }
            usleep(50_000)
        }
    }

    /// Deletes namespaces left by earlier runs whose process is gone.
    static func removeLeftovers() {
        guard let list = try? runCommand(["ip", "netns", "list"]) else { return }
        for line in list.lines {
            let name = String(line.split(separator: " ").first ?? "")
            let parts = name.split(separator: "-")
            guard parts.count >= 3, parts[0] == "ctlkt", let pid = Int32(parts[1]) else { continue }
            if pid != getpid(), kill(pid, 0) != 0 { _ = try? runCommand(["ip", "netns", "delete", name]) }
        }
    }

    private final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func next() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The base of every kernel test: skips without root or `ip`/`conntrack`,
/// and deletes the namespaces a test made when it ends.
class KernelTestCase: XCTestCase {
    private var namespaces: [TestNamespace] = []

    override func setUpWithError() throws {
        try super.setUpWithError()
        guard geteuid() == 0 else { throw XCTSkip("the library tests against the kernel need root (network namespaces)") }
        guard (try? runCommand(["conntrack", "--version"]))?.status == 0 else {
            throw XCTSkip("conntrack (the oracle) is not installed")
        }
        TestNamespace.removeLeftovers()
    }

    override func tearDown() {
        for ns in namespaces { ns.destroy() }
        namespaces = []
        super.tearDown()
    }

    /// A namespace of the test's own, deleted when the test ends.
    func makeNamespace(_ tag: String) throws -> TestNamespace {
        let ns = try TestNamespace(tag)
        namespaces.append(ns)
        return ns
    }

    /// A handle on `ns`'s table.
    func handle(_ ns: TestNamespace, capabilities: KernelCapabilities = .detect()) throws -> Conntrack {
        try Conntrack(namespace: .named(ns.name), capabilities: capabilities)
    }

    /// Waits until `condition` holds, for at most `seconds`.
    func eventually(_ seconds: Double = 5, _ what: String,
                    _ condition: () throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            if try condition() { return }
            if Date() > deadline { throw TestFailure("timed out after \(seconds) s waiting for \(what)") }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
    }
}

// MARK: - Addresses and keys

func ip(_ text: String) -> IPAddress {
    if text.contains(":") {
        var raw = in6_addr()
        precondition(inet_pton(AF_INET6, text, &raw) == 1, "bad address \(text)")
        let bytes = withUnsafeBytes(of: &raw) { Array($0) }
        let hi = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let lo = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return .v6(hi, lo)
    }
    var raw = in_addr()
    precondition(inet_pton(AF_INET, text, &raw) == 1, "bad address \(text)")
    return .v4(UInt32(bigEndian: raw.s_addr))
}

/// The address as conntrack prints it (inet_ntop).
func text(_ address: IPAddress) -> String {
    var buffer = [CChar](repeating: 0, count: 64)
    switch address {
    case .v4(let value):
        var raw = in_addr(s_addr: value.bigEndian)
        inet_ntop(AF_INET, &raw, &buffer, 64)
    case .v6(let hi, let lo):
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 {
            bytes[i] = UInt8(truncatingIfNeeded: hi >> UInt64(56 - 8 * i))
            bytes[8 + i] = UInt8(truncatingIfNeeded: lo >> UInt64(56 - 8 * i))
        }
        inet_ntop(AF_INET6, bytes, &buffer, 64)
    }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// A flow's identity for comparing with conntrack's listing: protocol
/// number, the original tuple's fields as conntrack prints them, and a zone
/// other than 0.
func key(of flow: Flow) -> String {
    var parts = ["p=\(flow.ipProtocol?.rawValue ?? 0)"]
    if let orig = flow.orig { parts += fields(orig, flow.ipProtocol) }
    if let zone = flow.zone, zone != 0 { parts.append("zone=\(zone)") }
    return parts.joined(separator: " ")
}

func fields(_ t: Tuple, _ proto: IPProtocol?) -> [String] {
    var parts: [String] = []
    if let src = t.src { parts.append("src=\(text(src))") }
    if let dst = t.dst { parts.append("dst=\(text(dst))") }
    switch proto {
    case .tcp?, .udp?, .udplite?, .sctp?:
        parts.append("sport=\(t.srcPort ?? 0)")
        parts.append("dport=\(t.dstPort ?? 0)")
    case .icmp?, .icmpv6?:
        parts.append("type=\(t.icmpType ?? 0)")
        parts.append("code=\(t.icmpCode ?? 0)")
        parts.append("id=\(t.icmpID ?? 0)")
    default:
        break
    }
    return parts
}

/// The same key from one line of `conntrack -L` (default output).
func key(ofListing line: String) -> String? {
    let words = line.split(separator: " ").map(String.init)
    guard words.count > 2, let proto = Int(words[1]) else { return nil }
    var parts = ["p=\(proto)"]
    var sources = 0
    for word in words {
        if word.hasPrefix("src=") { sources += 1 }
        if sources == 1, ["src=", "dst=", "sport=", "dport=", "type=", "code=", "id="].contains(where: word.hasPrefix) {
            parts.append(word)
        }
    }
    if let zone = words.first(where: { $0.hasPrefix("zone=") }) { parts.append(zone) }
    return parts.joined(separator: " ")
}

/// A flow key from conntrack-style words.
func flowKey(_ src: String, _ dst: String, _ proto: IPProtocol, _ sport: UInt16? = nil, _ dport: UInt16? = nil,
             zone: UInt16? = nil, id: UInt32? = nil) throws -> FlowKey {
    try FlowKey(tuple: Tuple(source: ip(src), destination: ip(dst), protocol: proto,
                             sourcePort: sport, destinationPort: dport), zone: zone, id: id)
}

/// A UDP entry to create (the kernel derives its reply tuple).
func udpFlow(_ src: String, _ dst: String, _ sport: UInt16, _ dport: UInt16, timeout: UInt32 = 600) -> Flow {
    var flow = Flow()
    flow.orig = Tuple(source: ip(src), destination: ip(dst), protocol: .udp, sourcePort: sport, destinationPort: dport)
    flow.timeout = timeout
    return flow
}

// MARK: - Collecting a stream

/// Consumes an async sequence on a task of its own, keeping what arrives;
/// the consumer can be paused so that the producer's buffers fill.
final class Collector<Element: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Element] = []
    private var ended = false
    private var failure: (any Error)?
    private var pausedFlag = false
    private(set) var task: Task<Void, Never>?

    init<S: AsyncSequence & Sendable>(_ sequence: S) where S.Element == Element {
        task = Task { [self] in
            do {
                for try await item in sequence {
                    locked { items.append(item) }
                    while locked({ pausedFlag }) { try? await Task.sleep(nanoseconds: 5_000_000) }
                }
            } catch {
                locked { failure = error }
            }
            locked { ended = true }
        }
    }

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }

    var elements: [Element] { locked { items } }
    var isEnded: Bool { locked { ended } }
    var error: (any Error)? { locked { failure } }
    var paused: Bool {
        get { locked { pausedFlag } }
        set { locked { pausedFlag = newValue } }
    }

    func cancel() { task?.cancel() }
}

extension ConntrackEvent {
    var event: Event? {
        if case .event(let e) = self { return e }
        return nil
    }
}

/// A filter built by `build`.
func makeFilter(_ build: (inout FlowFilter) -> Void) -> FlowFilter {
    var filter = FlowFilter()
    build(&filter)
    return filter
}
