import Foundation
import XCTest
@testable import CTCore

/// Byte fixtures captured from the kernel by `make fixtures`.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// All message files, sorted by name.
    static func messageNames() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".bin") }.sorted()
    }

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(name)))
    }

    static func text(_ name: String) throws -> String {
        try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
    }

    /// The fixture's base name: "traffic-1.bin" -> "traffic".
    static func base(of name: String) -> String {
        let stem = name.dropLast(4)
        return String(stem[..<stem.lastIndex(of: "-")!])
    }

    /// How far apart (seconds) the message's timeout and the one conntrack
    /// printed may be. Fixtures captured inside an emulated guest (make
    /// test-kernels; named in emulated-captures.txt) were listed several
    /// seconds after the capture: every process start there is slow.
    static func timeoutTolerance(_ base: String) -> Int {
        let names = (try? text("emulated-captures.txt"))?.split(separator: "\n").map(String.init) ?? []
        return names.contains(base) ? 15 : 2
    }

    static func labelMap() throws -> LabelMap {
        LabelMap(parsing: try text("connlabel.conf"))
    }

    static func flow(_ name: String) throws -> Flow {
        try ByteView.with(try bytes(name)) { try Decoder.flow($0) }
    }
}

/// Formats `flow` into a String with `options`.
func format(_ flow: Flow, _ options: OutputOptions, labels: LabelMap? = nil, now: Int = 0) -> String {
    let out = OutputBuffer(fd: -1)
    TextFormatter(options: options, labelMap: labels).write(flow, to: out, now: now)
    return String(decoding: out.pending, as: UTF8.self)
}

/// A line with its timeout replaced by "T" and its delta-time removed, and
/// the timeout itself: the two vary between two dumps of the same entry.
func normalise(_ line: String, extended: Bool) -> (String, Int?) {
    var fields = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
    fields.removeAll { $0.hasPrefix("delta-time=") }
    // Timeout position: after "proto num" (and "family num" with extended).
    var index = 0, seen = 0
    let wanted = extended ? 4 : 2
    while index < fields.count, seen < wanted {
        if !fields[index].isEmpty { seen += 1 }
        index += 1
    }
    var timeout: Int? = nil
    if index < fields.count, let t = Int(fields[index]) {
        timeout = t
        fields[index] = "T"
    }
    return (fields.joined(separator: " "), timeout)
}

/// `flow` as a -o save line, without its newline.
func saveLine(_ flow: Flow, command: StaticString = "-A") -> String {
    let out = OutputBuffer(fd: -1)
    SaveFormatter(command: command).write(flow, to: out)
    return String(decoding: out.pending.dropLast(), as: UTF8.self)
}

/// A save line with the value after "-t" replaced by "T".
func saveNormalised(_ line: String) -> String {
    var words = line.split(separator: " ").map(String.init)
    if let i = words.firstIndex(of: "-t"), i + 1 < words.count { words[i + 1] = "T" }
    return words.joined(separator: " ")
}
