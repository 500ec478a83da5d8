// libFuzzer target for the argument parser, the option checks and -R's
// line parser (see CTCommands' FuzzArguments). Built with -sanitize=fuzzer
// and -DFUZZING (make fuzz-args), main hands its arguments to libFuzzer's
// driver. In an ordinary build it replays files: each argument is an input
// whose outcome is printed, so that a failure reproduces without libFuzzer.
import CTCommands
import CTCore
import Glibc
#if FUZZING
import CFuzzer
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzArguments.run(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

@main
struct FuzzArgs {
    static func main() {
        #if FUZZING
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { fuzz($0, $1) })
        #else
        for path in CommandLine.arguments.dropFirst() {
            do {
                let bytes = try readFileBytes(path)
                print("\(path):")
                for outcome in FuzzArguments.run(bytes) { print("  \(outcome)") }
            } catch {
                print("\(path): \(error)")
                exit(1)
            }
        }
        #endif
    }
}
