import CTCore
import Glibc

/// ctl's version, printed by -V and in the prefix of its messages.
let version = "0.1.0"
/// The prefix conntrack puts before its messages has this place in ctl's.
let messagePrefix = "ctl v\(version): "

/// Exit codes, as conntrack uses them.
enum ExitCode: Int32 {
    case ok = 0
    /// OTHER_PROBLEM: kernel or system failure.
    case failure = 1
    /// PARAMETER_PROBLEM: bad arguments.
    case parameter = 2
}

/// A failure that ends the program with a message and an exit code.
struct Failure: Error {
    var message: String
    var code: ExitCode
    /// Parameter errors add conntrack's "Try ... -h" hint line.
    var hint: Bool

    static func parameter(_ message: String) -> Failure { Failure(message: message, code: .parameter, hint: true) }
    static func other(_ message: String) -> Failure { Failure(message: message, code: .failure, hint: false) }
}

/// Standard output and standard error, buffered; stdout is flushed before
/// anything goes to stderr so the two stay in order on a shared terminal.
enum Console {
    nonisolated(unsafe) static let out = OutputBuffer(fd: 1)
    nonisolated(unsafe) static var err = OutputBuffer(fd: 2, capacity: 4096)

    /// Set while -R runs a line of its file: "line N: ", put before errors.
    nonisolated(unsafe) static var errorContext = ""
    /// Set while -R runs its file: commands print no summary lines.
    nonisolated(unsafe) static var inLoadFile = false

    /// An error line: the message with the -R line it belongs to, if any.
    static func error(_ text: String) {
        message(errorContext + text)
    }

    /// A command's closing summary ("N flow entries have been ..."), which
    /// -R leaves out for the commands of its file.
    static func summary(_ text: String) {
        if !inLoadFile { message(text) }
    }

    /// Writes one line "ctl vX: message" to stderr.
    static func message(_ text: String) {
        flushOut()
        err.append(messagePrefix)
        err.append(text)
        err.append(UInt8(ascii: "\n"))
        try? err.flush()
    }

    /// Writes a raw line to stderr (no prefix).
    static func raw(_ text: String) {
        flushOut()
        err.append(text)
        err.append(UInt8(ascii: "\n"))
        try? err.flush()
    }

    /// Flushes stdout; a reader that went away ends the program quietly,
    /// any other write failure with a message and exit code 1.
    static func flushOut() {
        do {
            try out.flush()
        } catch {
            handle(error)
        }
    }

    static func handle(_ error: OutputError) -> Never {
        switch error {
        case .brokenPipe:
            exit(ExitCode.ok.rawValue)
        case .failed(let errno):
            err.append(messagePrefix)
            err.append("write error: \(errno)\n")
            try? err.flush()
            exit(ExitCode.failure.rawValue)
        }
    }

    /// Messages go nowhere from now on (for the argument fuzzer, whose
    /// inputs make the parser warn).
    static func discardMessages() {
        err = OutputBuffer(fd: -1, capacity: 4096)
    }

    static func fail(_ failure: Failure) -> Never {
        error(failure.message)
        if failure.hint { raw("Try `ctl -h' or 'ctl --help' for more information.") }
        exit(failure.code.rawValue)
    }
}

/// conntrack's wording for kernel errors of a command on a table
/// ("Operation failed: ..."); conntrack keys it by its command bits, which
/// differ between the conntrack and the expectation table.
func describe(_ error: Errno, command: Command, table: Table = .conntrack) -> String {
    let expect = table == .expect
    switch error.rawValue {
    case EPERM: return "sorry, you must be root or get CAP_NET_ADMIN capability to do this"
    case ENOENT where expect && command == .create: return "master conntrack not found"
    // EINVAL is "invalid parameters" for the commands conntrack numbers
    // below 0x10000: -A and -C/-S expect are not among them.
    case EINVAL where expect ? command != .count && command != .stats : command != .add:
        return "invalid parameters"
    case EEXIST where !expect && command == .create: return "Such conntrack exists, try -U to update"
    case EOPNOTSUPP where !expect && command == .list: return "function not implemented"
    case ENOENT where !expect && (command == .get || command == .delete || command == .create):
        return "such conntrack doesn't exist"
    default: return error.description
    }
}
