import CTCore
import Glibc

/// ctl: a drop-in for conntrack(8). The whole program, from argv to the
/// exit code; `ctl`'s main.swift only calls it.
public func ctlMain() -> Never {
    let session = Session()
    let code: ExitCode
    do throws(Failure) {
        code = try runCommandLine(session)
    } catch {
        // The one place where a failure is reported.
        code = session.console.report(error)
    }
    exit(code.rawValue)
}

/// The command line of this process: --netns, conntrack's options, the
/// checks, the command. Returns the exit code, or throws what ends the run.
private func runCommandLine(_ session: Session) throws(Failure) -> ExitCode {
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    let given = argv
    // The words themselves are kept as they came (bytes that are not
    // UTF-8 too): only --netns and its value leave argv.
    if let (name, keep) = try takeNetns(Int(argc), { String(cString: given[$0]!) }) {
        try enterNamespace(name)
        argv = .allocate(capacity: keep.count + 1)
        for (i, k) in keep.enumerated() { argv[i] = given[k] }
        argv[keep.count] = nil
        argc = Int32(keep.count)
    }
    let invocation = try parseArguments(argc, argv, in: session)
    try validate(invocation, session)
    return try run(invocation, session)
}

/// ctl's own option `--netns NAME|PATH` (also `--netns=NAME`), anywhere on
/// the command line and spelled in full: it is taken out before conntrack's
/// options are parsed, so everything else (-R first, too) reads as without
/// it. Of `count` words (`word(i)`, the program name first), returns the
/// namespace and the positions of the words to keep; nil when it is not
/// there.
func takeNetns(_ count: Int, _ word: (Int) -> String) throws(Failure) -> (name: String, keep: [Int])? {
    var keep: [Int] = []
    var name: String? = nil
    var i = 0
    while i < count {
        let w = word(i)
        if i > 0, w == "--netns" {
            guard i + 1 < count else { throw .parameter("option `--netns' requires an argument") }
            name = word(i + 1)
            i += 2
            continue
        }
        if i > 0, w.hasPrefix("--netns=") {
            name = String(w.dropFirst("--netns=".count))
            i += 1
            continue
        }
        keep.append(i)
        i += 1
    }
    guard let name else { return nil }
    guard !name.isEmpty else { throw .parameter("option `--netns' requires an argument") }
    return (name, keep)
}

/// The same for a list of words (the argument fuzzer, the tests): the
/// namespace and the other words.
func takeNetns(_ arguments: [String]) throws(Failure) -> (String, [String])? {
    guard let (name, keep) = try takeNetns(arguments.count, { arguments[$0] }) else { return nil }
    return (name, keep.map { arguments[$0] })
}

/// Enters the network namespace; a failure ends the run with exit code 1.
func enterNamespace(_ name: String) throws(Failure) {
    do {
        try NetworkNamespace.enter(name)
    } catch {
        switch error {
        case .open(let errno):
            throw .other("cannot open network namespace `\(name)' (\(NetworkNamespace.filePath(for: name))): \(errno)")
        case .enter(let errno):
            throw .other("cannot enter network namespace `\(name)': \(errno)")
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
