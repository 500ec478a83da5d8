import Glibc
@testable import CTCommands

/// Parses `words` (without the program name) as ctlMain does, in-process:
/// ctl's own options taken out, conntrack's options parsed, then checked;
/// with `inFile`, as the words of a -R line (which keep every word).
/// Warnings go nowhere.
func parsedCommandLine(_ words: [String], inFile: Bool = false) throws(Failure) -> Invocation {
    let (own, rest) = inFile ? (OwnOptions(), ["ctl"] + words) : try takeOwnOptions(["ctl"] + words)
    let argv = cArguments(rest)
    defer {
        for i in 0..<rest.count { free(argv[i]) }
        argv.deallocate()
    }
    let session = Session(discardMessages: true)
    var inv = try parseArguments(Int32(rest.count), argv, inFile: inFile, in: session)
    inv.own = own
    try validate(inv, session)
    return inv
}

/// How `words` are refused (see parsedCommandLine); nil when they are not.
func commandLineRefusal(_ words: [String], inFile: Bool = false) -> Failure? {
    do throws(Failure) {
        _ = try parsedCommandLine(words, inFile: inFile)
        return nil
    } catch {
        return error
    }
}
