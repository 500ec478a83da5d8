import CTCore
import Glibc

/// ctl: a drop-in for conntrack(8). The whole program, from argv to the
/// exit code; `ctl`'s main.swift only calls it.
public func ctlMain() -> Never {
    do {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        if let (name, rest) = try takeNetns(CommandLine.arguments) {
            enterNamespace(name)
            argc = Int32(rest.count)
            argv = cArguments(rest)
        }
        let invocation = try parseArguments(argc, argv)
        try validate(invocation)
        exit(run(invocation).rawValue)
    } catch {
        Console.fail(error)
    }
}

/// ctl's own option `--netns NAME|PATH` (also `--netns=NAME`), anywhere on
/// the command line and spelled in full: it is taken out before conntrack's
/// options are parsed, so everything else (-R first, too) reads as without
/// it. Returns nil when it is not there.
func takeNetns(_ arguments: [String]) throws(Failure) -> (String, [String])? {
    var rest: [String] = []
    var name: String? = nil
    var i = 0
    while i < arguments.count {
        let word = arguments[i]
        if i > 0, word == "--netns" {
            guard i + 1 < arguments.count else { throw .parameter("option `--netns' requires an argument") }
            name = arguments[i + 1]
            i += 2
            continue
        }
        if i > 0, word.hasPrefix("--netns=") {
            name = String(word.dropFirst("--netns=".count))
            i += 1
            continue
        }
        rest.append(word)
        i += 1
    }
    guard let name else { return nil }
    guard !name.isEmpty else { throw .parameter("option `--netns' requires an argument") }
    return (name, rest)
}

/// Enters the network namespace or ends with exit code 1.
func enterNamespace(_ name: String) {
    do {
        try NetworkNamespace.enter(name)
    } catch {
        switch error {
        case .open(let errno):
            Console.fail(.other("cannot open network namespace `\(name)' (\(NetworkNamespace.path(for: name))): \(errno)"))
        case .enter(let errno):
            Console.fail(.other("cannot enter network namespace `\(name)': \(errno)"))
        }
    }
}

/// argv for parseArguments, kept for the whole run.
func cArguments(_ words: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> {
    let argv = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: words.count + 1)
    for (i, word) in words.enumerated() { argv[i] = strdup(word) }
    argv[words.count] = nil
    return argv
}
