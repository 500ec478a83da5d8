// Developer tool for `make bench`: times CTCore's public API as a library
// user would call it, in the calling process's network namespace.
//
//   ctl-lib-bench dump-callback      forEachFlow over the table; prints the count
//   ctl-lib-bench dump-async         for try await over flows(); prints the count
//   ctl-lib-bench delete-keys FILE   deletes the tcp entries FILE lists, one
//                                    "SRC DST SPORT DPORT" a line, in one
//                                    delete(_:) call; prints how many went
import CTCore
import Glibc

@main
struct LibraryBench {
    static func main() async {
        let arguments = CommandLine.arguments
        do {
            let conntrack = try Conntrack()
            switch arguments.dropFirst().first {
            case "dump-callback":
                var count = 0
                try conntrack.forEachFlow { _ in
                    count += 1
                    return .proceed
                }
                print(count)
            case "dump-async":
                var count = 0
                for try await _ in conntrack.flows() { count += 1 }
                print(count)
            case "delete-keys" where arguments.count == 3:
                let keys = try readKeys(arguments[2])
                let results = try conntrack.delete(keys)
                print(results.filter { $0 == .done }.count)
            default:
                complain("usage: ctl-lib-bench dump-callback | dump-async | delete-keys FILE")
                exit(2)
            }
        } catch {
            complain("ctl-lib-bench: \(error)")
            exit(1)
        }
    }

    static func complain(_ text: String) {
        let line = Array((text + "\n").utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }

    static func readKeys(_ path: String) throws -> [FlowKey] {
        guard let file = fopen(path, "r") else { throw ConntrackError(.delete, .system(Errno.current)) }
        defer { fclose(file) }
        var keys: [FlowKey] = []
        var line: UnsafeMutablePointer<CChar>? = nil
        var size = 0
        defer { free(line) }
        while getline(&line, &size, file) > 0 {
            let words = String(cString: line!).split(separator: " ").map { $0.trimmingCharacters() }
            guard words.count == 4, let src = IPAddress(words[0]), let dst = IPAddress(words[1]),
                  let sport = UInt16(words[2]), let dport = UInt16(words[3]) else { continue }
            keys.append(try FlowKey(tuple: Tuple(source: src, destination: dst, protocol: .tcp,
                                                 sourcePort: sport, destinationPort: dport)))
        }
        return keys
    }
}

extension Substring {
    func trimmingCharacters() -> String {
        String(self.filter { !$0.isWhitespace })
    }
}
