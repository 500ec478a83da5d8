import Glibc

/// Connection label names, bit number to name, as read from connlabel.conf
/// ("BIT NAME" per line, '#' starts a comment).
public struct LabelMap: Equatable, Sendable {
    /// The file conntrack (libnetfilter_conntrack) reads label names from.
    public static let defaultPath = "/etc/xtables/connlabel.conf"

    public private(set) var names: [Int: String]

    public init(names: [Int: String]) { self.names = names }

    /// Parses the text of a connlabel.conf file.
    public init(parsing text: String) {
        var names: [Int: String] = [:]
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = rawLine.drop(while: { $0 == " " || $0 == "\t" })
            guard let first = line.first, first != "#" else { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard fields.count >= 2, let bit = Int(fields[0]), bit >= 0, bit < 128 else { continue }
            if names[bit] == nil { names[bit] = String(fields[1]) }
        }
        self.names = names
    }

    /// Reads `path`; throws the open/read error.
    public static func load(path: String = defaultPath) throws(Errno) -> LabelMap {
        guard let file = fopen(path, "r") else { throw Errno.current }
        defer { fclose(file) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if n > 0 { data.append(contentsOf: chunk[0..<n]) }
            if n < chunk.count {
                if ferror(file) != 0 { throw Errno.current }
                break
            }
        }
        return LabelMap(parsing: String(decoding: data, as: UTF8.self))
    }

    public func name(ofBit bit: Int) -> String? { names[bit] }
}
