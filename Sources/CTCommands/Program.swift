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

/// The command line of this process: ctl's own options, conntrack's
/// options, the checks, the command. Returns the exit code, or throws what
/// ends the run.
private func runCommandLine(_ session: Session) throws(Failure) -> ExitCode {
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    let given = argv
    // The words themselves are kept as they came (bytes that are not
    // UTF-8 too): only ctl's own options and their values leave argv.
    let (own, keep) = try takeOwnOptions(Int(argc), { String(cString: given[$0]!) })
    if keep.count != Int(argc) {
        argv = .allocate(capacity: keep.count + 1)
        for (i, k) in keep.enumerated() { argv[i] = given[k] }
        argv[keep.count] = nil
        argc = Int32(keep.count)
    }
    if own.netns != nil, own.allNetns { throw .parameter(GroupOptions.netnsWithAllNetns) }
    if let name = own.netns { try enterNamespace(name) }
    session.labelMapPath = own.labelmap
    var invocation = try parseArguments(argc, argv, in: session)
    invocation.own = own
    try validate(invocation, session)
    return try run(invocation, session)
}

/// ctl's own options, which conntrack does not have. Each is spelled in
/// full (`--name VALUE` or `--name=VALUE`) and may stand anywhere on the
/// command line: they are taken out before conntrack's options are parsed,
/// so conntrack's options (their abbreviations too) read as without them.
/// Values are kept as given; the commands that use them check them.
struct OwnOptions: Equatable {
    /// --netns NAME|PATH: the network namespace to run in.
    var netns: String?
    /// --group-by KEY[,KEY...].
    var groupBy: String?
    /// --top N.
    var top: String?
    /// --all-netns.
    var allNetns = false
    /// --interval SECONDS.
    var interval: String?
    /// --labelmap FILE (conntrack 1.4.9's option).
    var labelmap: String?

    /// Sets the option `name` takes a value for; false when `name` takes
    /// none or is not one of ctl's.
    fileprivate mutating func set(_ name: String, _ value: String) -> Bool {
        switch name {
        case "netns": netns = value
        case "group-by": groupBy = value
        case "top": top = value
        case "interval": interval = value
        case "labelmap": labelmap = value
        default: return false
        }
        return true
    }

    /// Whether `name` is one of ctl's options that take a value.
    fileprivate static func takesValue(_ name: String) -> Bool {
        var probe = OwnOptions()
        return probe.set(name, "")
    }
}

/// Takes ctl's own options out of `count` words (`word(i)`, the program
/// name first): returns them and the positions of the words to keep. A
/// valued option without its value (or with an empty one) is refused.
func takeOwnOptions(_ count: Int, _ word: (Int) -> String) throws(Failure) -> (OwnOptions, keep: [Int]) {
    var own = OwnOptions()
    var keep: [Int] = []
    var i = 0
    while i < count {
        let w = word(i)
        guard i > 0, w.hasPrefix("--") else {
            keep.append(i)
            i += 1
            continue
        }
        let body = w.dropFirst(2)
        let name = String(body.prefix { $0 != "=" })
        if name == "all-netns", !body.contains("=") {
            own.allNetns = true
            i += 1
        } else if OwnOptions.takesValue(name) {
            let value: String
            if body.contains("=") {
                value = String(body.dropFirst(name.count + 1))
                i += 1
            } else {
                guard i + 1 < count else { throw .parameter("option `--\(name)' requires an argument") }
                value = word(i + 1)
                i += 2
            }
            guard !value.isEmpty else { throw .parameter("option `--\(name)' requires an argument") }
            _ = own.set(name, value)
        } else {
            keep.append(i)
            i += 1
        }
    }
    return (own, keep)
}

/// The same for a list of words (the argument fuzzer, the tests): the
/// options and the other words.
func takeOwnOptions(_ arguments: [String]) throws(Failure) -> (OwnOptions, [String]) {
    let (own, keep) = try takeOwnOptions(arguments.count, { arguments[$0] })
    return (own, keep.map { arguments[$0] })
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
