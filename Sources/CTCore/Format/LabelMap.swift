import Glibc

/// Connection label names, bit number to name, as read from connlabel.conf
/// ("BIT NAME" per line, '#' starts a comment).
package struct LabelMap: Equatable, Sendable {
    /// The file conntrack (libnetfilter_conntrack) reads label names from.
    package static let defaultPath = "/etc/xtables/connlabel.conf"

    package private(set) var names: [Int: String]

    package init(names: [Int: String]) { self.names = names }

    /// Parses the text of a connlabel.conf file the way conntrack reads
    /// it: "BIT NAME" per line, BIT in C notation (decimal, 0x hex, 0
    /// octal) below 128, the first name of a bit wins, '#' lines and lines
    /// whose name holds a '#' are skipped. Returns nil, as conntrack refuses
    /// the whole file, when a name holds '=' or ',' or no name is found.
    package static func parse(_ text: String) -> LabelMap? {
        var names: [Int: String] = [:]
        for rawLine in text.split(whereSeparator: { $0.isNewline }) {
            let line = rawLine.drop(while: { $0 == " " || $0 == "\t" })
            guard let first = line.first, first != "#" else { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard fields.count >= 2, let bit = parseCInteger(fields[0]), bit < 128 else { continue }
            let name = fields[1]
            if name.contains("#") { continue }
            if name.contains("=") || name.contains(",") { return nil }
            if names[bit] == nil { names[bit] = String(name) }
        }
        return names.isEmpty ? nil : LabelMap(names: names)
    }

    /// Like `parse`, but an unusable file gives an empty map.
    package init(parsing text: String) {
        self = LabelMap.parse(text) ?? LabelMap(names: [:])
    }

    /// Reads `path`; throws the open/read error.
    package static func load(path: String = defaultPath) throws(Errno) -> LabelMap {
        let text = try readTextFile(path)
        // conntrack reports an unusable file as a failure with errno 0.
        guard let map = LabelMap.parse(text) else { throw Errno(0) }
        return map
    }

    package func name(ofBit bit: Int) -> String? { names[bit] }

    /// The bit a name stands for; the lowest one if the file gives the name
    /// to several bits.
    package func bit(named name: String) -> Int? {
        names.lazy.filter { $0.value == name }.map(\.key).min()
    }
}

/// The whole contents of a small text file (a configuration file or a
/// /proc entry), decoded as UTF-8.
package func readTextFile(_ path: String) throws(Errno) -> String {
    String(decoding: try readFileBytes(path), as: UTF8.self)
}

/// The whole contents of a file; "-" reads standard input. A directory
/// reads as nothing.
package func readFileBytes(_ path: String) throws(Errno) -> [UInt8] {
    try readFileBytes(path: Array(path.utf8))
}

/// The same for a path given as bytes, as they came on the command line
/// (they need not be UTF-8).
package func readFileBytes(path: [UInt8]) throws(Errno) -> [UInt8] {
    let isStdin = path == [UInt8(ascii: "-")]
    let opened = isStdin ? fdopen(0, "r") : (path + [0]).withUnsafeBufferPointer { bytes in
        bytes.withMemoryRebound(to: CChar.self) { fopen($0.baseAddress!, "r") }
    }
    guard let file = opened else { throw Errno.current }
    defer { if !isStdin { fclose(file) } }
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
        if n > 0 { data.append(contentsOf: chunk[0..<n]) }
        if n < chunk.count {
            if ferror(file) != 0 {
                if errno == EISDIR { return [] }
                throw Errno.current
            }
            break
        }
    }
    return data
}

/// A whole word as strtoul(3) with base 0 reads it: decimal, 0x hex or
/// 0 octal; nil for anything else (signs, junk, empty).
package func parseCInteger<S: StringProtocol>(_ word: S) -> Int? {
    if let value = word.utf8.withContiguousStorageIfAvailable(parseCInteger) { return value }
    return Array(word.utf8).withUnsafeBufferPointer(parseCInteger)
}

/// parseCInteger of a word's bytes.
package func parseCInteger(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
    guard let first = bytes.first, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else { return nil }
    var radix = 10
    var digits = bytes[...]
    if bytes.count > 1, first == UInt8(ascii: "0") {
        if bytes[1] | 0x20 == UInt8(ascii: "x") {
            radix = 16
            digits = bytes[2...]
            guard !digits.isEmpty else { return nil }
        } else {
            radix = 8
            digits = bytes[1...]
        }
    }
    var value = 0
    for b in digits {
        let d: Int
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): d = Int(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): d = Int(b - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): d = Int(b - UInt8(ascii: "A")) + 10
        default: return nil
        }
        guard d < radix else { return nil }
        let (m, o1) = value.multipliedReportingOverflow(by: radix)
        let (a, o2) = m.addingReportingOverflow(d)
        if o1 || o2 { return nil }
        value = a
    }
    return value
}
