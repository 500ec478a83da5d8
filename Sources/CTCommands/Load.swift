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
enum Action {
    /// -I (or -A, which does not mind an existing entry).
    case create(EntryChange, add: Bool)
    /// -U with its change.
    case update(Invocation, UpdatePlan)
    /// -D or -F, run as the command line would run it.
    case command(Invocation)
}

/// The words of one line, each NUL-terminated in one buffer, and an argv
/// of them (the program name first, then the words, then NULL), ready to
/// be handed to getopt. Both buffers are made once, for the longest line,
/// and reused line after line.
struct LineWords {
    /// Room for a cut line's bytes with a NUL after each, and "ctl".
    let text = UnsafeMutablePointer<CChar>.allocate(capacity: 2 * lineBufferLength + 8)
    /// Room for a word per two bytes, the program name and the NULL.
    let argv = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: lineBufferLength / 2 + 4)
    /// argc: the program name and the words.
    var count = 0

    func deallocate() {
        text.deallocate()
        argv.deallocate()
    }
}

/// Calls `body` with the words of each line that has any, and its line
/// number, until `body` returns false: blanks and tabs separate words,
/// double quotes group them (and go), a NUL ends the line, and lines whose
/// first word starts with '#' are comments.
func forEachLine(of bytes: [UInt8], _ body: (Int, inout LineWords) -> Bool) {
    var words = LineWords()
    defer { words.deallocate() }
    let text = words.text, argv = words.argv
    // The program name getopt expects first.
    text[0] = 0x63; text[1] = 0x74; text[2] = 0x6c; text[3] = 0   // "ctl"
    argv[0] = text
    bytes.withUnsafeBufferPointer { bytes in
        let total = bytes.count
        var number = 1
        var start = 0
        while start < total {
            var end = start
            while end < total, bytes[end] != UInt8(ascii: "\n"), end - start < lineBufferLength { end += 1 }
            let lineNumber = number
            var next = end
            if end < total, bytes[end] == UInt8(ascii: "\n") {
                next = end + 1
                number += 1
            }
            var length = 4          // bytes of `text` in use
            var count = 1           // words in `argv`
            var wordStart = -1      // start of the word being read, if any
            var quoted = false
            var i = start
            while i < end {
                let b = bytes[i]
                i += 1
                if b == 0 { break }
                if b == UInt8(ascii: "\"") {
                    quoted.toggle()
                    if wordStart < 0 { wordStart = length }
                } else if !quoted, b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") {
                    if wordStart >= 0, length > wordStart {
                        text[length] = 0
                        length += 1
                        argv[count] = text + wordStart
                        count += 1
                    }
                    wordStart = -1
                } else {
                    if wordStart < 0 { wordStart = length }
                    text[length] = CChar(bitPattern: b)
                    length += 1
                }
            }
            if wordStart >= 0, length > wordStart {
                text[length] = 0
                argv[count] = text + wordStart
                count += 1
            }
            argv[count] = nil
            words.count = count
            if count > 1, argv[1]![0] != CChar(UInt8(ascii: "#")) {
                if !body(lineNumber, &words) { return }
            }
            start = next
        }
    }
}

/// Parses and checks one line.
func parseLine(_ words: inout LineWords, _ session: Session) throws(Failure) -> Action {
    guard words.count - 1 <= maximumWords else { throw .parameter("too many arguments") }
    let inv = try parseArguments(Int32(words.count), words.argv, inFile: true, in: session)
    guard let command = inv.command else {
        try validate(inv, session)
        throw .parameter("Cannot use command `unknown' with --load-file")
    }
    if inv.table == .expect {
        // conntrack checks the line's options first, then refuses every
        // expectation command, naming -I expect "-C expect".
        try validate(inv, session)
        let name = command == .create ? "-C expect" : "-\(command.rawValue) expect"
        throw .parameter("Cannot use command `\(name)' with --load-file")
    }
    switch command {
    case .create, .add, .delete, .update, .flush:
        break
    default:
        // The dying and unconfirmed lists are -L to conntrack.
        throw .parameter("Cannot use command `-\(command.rawValue)' with --load-file")
    }
    try validate(inv, session)
    switch command {
    case .create, .add:
        return .create(try createChange(inv, session), add: command == .add)
    case .update:
        return .update(inv, try UpdatePlan(inv, session))
    default:
        return .command(inv)
    }
}

func load(_ inv: Invocation, _ session: Session) throws(Failure) -> ExitCode {
    let console = session.console
    let path = inv.loadFile ?? Array("-".utf8)
    let bytes: [UInt8]
    do {
        bytes = try readFileBytes(path: path)
    } catch {
        throw .parameter("Failed to open file \(String(decoding: path, as: UTF8.self)) for reading")
    }
    // The leading creates go out while the rest of the file is parsed; a
    // bad line found later takes them all back, so that, as with conntrack,
    // a file with a bad line changes nothing. From the first other command
    // on, lines wait until the whole file has been checked.
    let stream = try openStream()
    var streamed: [(line: Int, add: Bool)] = []
    var rest: [(line: Int, action: Action)] = []
    var badLine: (line: Int, failure: Failure)? = nil
    var streamError: Error? = nil
    forEachLine(of: bytes) { number, words in
        let action: Action
        do throws(Failure) {
            action = try parseLine(&words, session)
        } catch {
            badLine = (number, error)
            return false
        }
        if rest.isEmpty, streamError == nil, case .create(let change, let add) = action {
            guard !stream.hasFailed else { return true }
            do {
                try stream.add(change, tolerateExisting: add)
                streamed.append((number, add))
            } catch {
                streamError = error
            }
        } else {
            rest.append((number, action))
        }
        return true
    }
    var failure: CreateStream.Failure? = nil
    do {
        failure = try stream.finish()
    } catch {
        streamError = streamError ?? error
    }
    if let badLine {
        do {
            try stream.rollBack()
        } catch {
            try console.error(operationFailed(error, .create))
        }
        console.errorContext = "line \(badLine.line): "
        throw badLine.failure
    }
    if let streamError {
        try console.error(operationFailed(streamError, .create))
        return .failure
    }
    if let failure {
        return try report(failure, streamed, console)
    }
    // The rest, in order; creates still in batches.
    console.inLoadFile = true
    var i = 0
    while i < rest.count {
        console.errorContext = "line \(rest[i].line): "
        var code: ExitCode? = nil
        switch rest[i].action {
        case .command(let lineInvocation): code = try run(lineInvocation, session)
        case .update(let lineInvocation, let plan): code = try update(lineInvocation, session, plan: plan)
        case .create: break
        }
        if let code {
            if code != .ok { return code }
            i += 1
            continue
        }
        let creates = try openStream()
        var lines: [(line: Int, add: Bool)] = []
        while i < rest.count, case .create(let change, let add) = rest[i].action {
            do {
                try creates.add(change, tolerateExisting: add)
            } catch {
                try console.error(operationFailed(error, .create))
                return .failure
            }
            lines.append((rest[i].line, add))
            i += 1
        }
        let failed: CreateStream.Failure?
        do {
            failed = try creates.finish()
        } catch {
            try console.error(operationFailed(error, .create))
            return .failure
        }
        if let failed { return try report(failed, lines, console) }
    }
    return .ok
}

/// Reports the create that failed, with its line, as -I (or -A) would.
private func report(_ failure: CreateStream.Failure, _ lines: [(line: Int, add: Bool)],
                    _ console: Console) throws(Failure) -> ExitCode {
    let line = lines[failure.index]
    console.errorContext = "line \(line.line): "
    try console.error(operationFailed(failure.error, line.add ? .add : .create))
    return .failure
}

private func openStream() throws(Failure) -> CreateStream {
    do {
        return try CreateStream()
    } catch {
        throw .other("Can't open handler: \(error)")
    }
}
