import CTCore
import Glibc

/// ctl: a drop-in for conntrack(8).
func main() -> Never {
    do {
        let invocation = try parseArguments(CommandLine.argc, CommandLine.unsafeArgv)
        try validate(invocation)
        try checkImplemented(invocation)
        exit(run(invocation).rawValue)
    } catch {
        Console.fail(error)
    }
}

main()
