import CTCore
import Glibc

// -R / --load-file: run the commands of a file (conntrack's save format and
// any -I, -A, -U, -D, -F lines). Like conntrack, every line is parsed and
// checked before the first one runs, so a bad line changes nothing; then
// the lines run in order and the first kernel error stops the run. Unlike
// conntrack, errors name their line ("line N: ...").

/// conntrack reads a file line into a buffer of this many bytes; a longer
/// line is cut there and the rest read as the next line.
private let lineBufferLength = 10_239
/// conntrack takes at most this many words from a line.
private let maximumWords = 253

/// What one line asks for.
private enum Action {
    /// -I (or -A, which does not mind an existing entry).
    case create(EntryChange, add: Bool)
    /// -U, -D or -F, run as the command line would run it.
    case command(Invocation)
}

/// The words of each line that has any, with its line number: blanks and
/// tabs separate words, double quotes group them (and go), a NUL ends the
/// line, and lines whose first word starts with '#' are comments.
private func lines(of bytes: [UInt8]) -> [(number: Int, words: [String])] {
    var result: [(Int, [String])] = []
    var number = 1
    var start = 0
    while start < bytes.count {
        var end = start
        while end < bytes.count, bytes[end] != UInt8(ascii: "\n"), end - start < lineBufferLength { end += 1 }
        let lineNumber = number
        var next = end
        if end < bytes.count, bytes[end] == UInt8(ascii: "\n") {
            next = end + 1
            number += 1
        }
        var words: [String] = []
        var word: [UInt8] = []
        var inWord = false
        var quoted = false
        for b in bytes[start..<end] {
            if b == 0 { break }
            if b == UInt8(ascii: "\"") {
                quoted.toggle()
                inWord = true
            } else if !quoted, b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") {
                if inWord, !word.isEmpty { words.append(String(decoding: word, as: UTF8.self)) }
                word.removeAll(keepingCapacity: true)
                inWord = false
            } else {
                word.append(b)
                inWord = true
            }
        }
        if inWord, !word.isEmpty { words.append(String(decoding: word, as: UTF8.self)) }
        if let first = words.first, !first.hasPrefix("#") { result.append((lineNumber, words)) }
        start = next
    }
    return result
}

/// Parses and checks one line.
private func parseLine(_ words: [String]) throws(Failure) -> Action {
    guard words.count <= maximumWords else { throw .parameter("too many arguments") }
    var argv: [UnsafeMutablePointer<CChar>?] = (["conntrack"] + words).map { strdup($0) }
    argv.append(nil)
    defer { for p in argv { free(p) } }
    let parsed: Result<Invocation, Failure> = argv.withUnsafeMutableBufferPointer { buffer in
        do throws(Failure) {
            return .success(try parseArguments(Int32(words.count + 1), buffer.baseAddress!, inFile: true))
        } catch {
            return .failure(error)
        }
    }
    let inv = try parsed.get()
    guard let command = inv.command else {
        try validate(inv)
        throw .parameter("Cannot use command `unknown' with --load-file")
    }
    switch command {
    case .create, .add, .update, .delete, .flush:
        guard inv.table != .conntrack else { break }
        fallthrough
    default:
        let name = "-\(command.rawValue)" + (inv.table == .conntrack ? "" : " \(inv.table.rawValue)")
        throw .parameter("Cannot use command `\(name)' with --load-file")
    }
    try validate(inv)
    try checkImplemented(inv)
    switch command {
    case .create, .add:
        return .create(try createChange(inv), add: command == .add)
    case .update:
        _ = try UpdatePlan(inv)
        return .command(inv)
    default:
        return .command(inv)
    }
}

func load(_ inv: Invocation) -> ExitCode {
    let path = inv.loadFile ?? "-"
    let bytes: [UInt8]
    do {
        bytes = try readFileBytes(path)
    } catch {
        Console.fail(.parameter("Failed to open file \(path) for reading"))
    }
    var actions: [(line: Int, action: Action)] = []
    for (number, words) in lines(of: bytes) {
        Console.errorContext = "line \(number): "
        do {
            actions.append((number, try parseLine(words)))
        } catch {
            Console.fail(error)
        }
    }
    Console.inLoadFile = true
    var i = 0
    while i < actions.count {
        Console.errorContext = "line \(actions[i].line): "
        guard case .create = actions[i].action else {
            guard case .command(let lineInvocation) = actions[i].action else { continue }
            let code = run(lineInvocation)
            if code != .ok { return code }
            i += 1
            continue
        }
        // A run of creates goes out in batches.
        var end = i
        var changes: [EntryChange] = []
        var adds: [Bool] = []
        while end < actions.count, case .create(let change, let add) = actions[end].action {
            changes.append(change)
            adds.append(add)
            end += 1
        }
        if let code = createRun(changes, adds: adds, lines: actions[i..<end].map(\.line)) { return code }
        i = end
    }
    return .ok
}

/// Sends a run of creates in batches. The first failure (EEXIST is none
/// for -A) stops the run as conntrack stops there; the creates after it
/// that went out in the same batch are taken back, so the table is as
/// conntrack would leave it. Returns the exit code of a failure.
private func createRun(_ changes: [EntryChange], adds: [Bool], lines: [Int]) -> ExitCode? {
    let ct = openConntrack(.create)
    let failures: [Int: Errno]
    do {
        failures = try ct.create(batch: changes)
    } catch {
        Console.errorContext = "line \(lines[0]): "
        Console.error(operationFailed(error, .create))
        return .failure
    }
    let firstFailure = failures.keys.sorted().first { index in
        !(adds[index] && failures[index] == Errno(EEXIST))
    }
    guard let failed = firstFailure else { return nil }
    for j in (failed + 1)..<changes.count where failures[j] == nil {
        try? ct.undoCreate(changes[j])
    }
    Console.errorContext = "line \(lines[failed]): "
    Console.error(operationFailed(failures[failed]!, adds[failed] ? .add : .create))
    return .failure
}
