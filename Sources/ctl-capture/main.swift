import CTCore
import Glibc

// ctl-capture PREFIX: dumps the conntrack table of the current network
// namespace and writes each message payload to PREFIX-N.bin (N from 0).
// Prints the number of messages written.
func warn(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

let args = CommandLine.arguments
guard args.count == 2 else {
    warn("usage: ctl-capture PREFIX")
    exit(2)
}
do {
    let ct = try Conntrack()
    var index = 0
    try ct.dumpPayloads(family: nil) { bytes in
        let path = "\(args[1])-\(index).bin"
        guard let f = fopen(path, "w") else { throw Errno.current }
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        fclose(f)
        index += 1
    }
    print(index)
} catch {
    warn("ctl-capture: \(error)")
    exit(1)
}
