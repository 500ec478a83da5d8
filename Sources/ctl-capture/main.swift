import CTCore
import Glibc

// ctl-capture PREFIX [expect]: dumps the conntrack table (or with
// "expect" the expectation table, every family) of the current network
// namespace and writes each message payload to PREFIX-N.bin (N from 0).
// Prints the number of messages written.
// ctl-capture --probe: prints each KernelProbe answer ("status-dump-filter
// yes|no|unknown"), for make test-kernels.
func warn(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

let args = CommandLine.arguments
if args.count == 2, args[1] == "--probe" {
    let answer = KernelProbe.statusDumpFilter()
    print("status-dump-filter \(answer.map { $0 ? "yes" : "no" } ?? "unknown")")
    exit(0)
}
guard args.count == 2 || (args.count == 3 && args[2] == "expect") else {
    warn("usage: ctl-capture PREFIX [expect]")
    exit(2)
}
do {
    let ct = try CTSession()
    var index = 0
    let dump = args.count == 3 ? ct.dumpExpectationPayloads : ct.dumpPayloads
    try dump(nil) { bytes in
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
