// libFuzzer target for everything that reads kernel bytes (see CTCore's
// FuzzEntry). Built with -sanitize=fuzzer and -DFUZZING (make fuzz), main
// hands its arguments to libFuzzer's driver, which calls
// LLVMFuzzerTestOneInput. In an ordinary build it is a replay tool: each
// argument is a file whose bytes go through the same path, so that a crash
// reproduces without libFuzzer.
import CTCore
import Glibc
#if FUZZING
import CFuzzer
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzEntry.decodeAll(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

@main
struct FuzzDecoder {
    static func main() {
        #if FUZZING
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { fuzz($0, $1) })
        #else
        for path in CommandLine.arguments.dropFirst() {
            do {
                let bytes = try readFileBytes(path)
                print("\(path): \(bytes.count) bytes, \(FuzzEntry.decodeAll(bytes)) bytes formatted")
            } catch {
                print("\(path): \(error)")
                exit(1)
            }
        }
        #endif
    }
}
