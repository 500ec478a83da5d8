import CTCore
import Glibc

/// ctl's version, printed by -V and in the prefix of its messages.
let version = "0.2.0"
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

/// A failure that ends the program with a message and an exit code. It
/// travels up to ctlMain, which alone reports it and exits.
struct Failure: Error {
    var message: String
    var code: ExitCode
    /// Parameter errors add conntrack's "Try ... -h" hint line.
    var hint: Bool
    /// How ctlMain reports it.
    var form: Form = .line

    enum Form {
        /// "ctl vX: " and the message (after the -R line it belongs to),
        /// stdout flushed first.
        case line
        /// "ctl vX: " and the message alone, without touching stdout (a
        /// write to stdout failed).
        case bare
        /// Nothing (the reader of stdout went away).
        case silent
    }

    static func parameter(_ message: String) -> Failure { Failure(message: message, code: .parameter, hint: true) }
    static func other(_ message: String) -> Failure { Failure(message: message, code: .failure, hint: false) }

    /// A failed write to stdout: a reader that went away ends the program
    /// quietly, any other write failure with a message and exit code 1.
    static func output(_ error: OutputError) -> Failure {
        switch error {
        case .brokenPipe: Failure(message: "", code: .ok, hint: false, form: .silent)
        case .failed(let errno): Failure(message: "write error: \(errno)", code: .failure, hint: false, form: .bare)
        }
    }
}

/// Standard output and standard error of one run, buffered; stdout is
/// flushed before anything goes to stderr so the two stay in order on a
/// shared terminal.
final class Console {
    let out: OutputBuffer
    private let err: OutputBuffer

    /// Set while -R runs a line of its file: "line N: ", put before errors.
    var errorContext = ""
    /// Set while -R runs its file: commands print no summary lines.
    var inLoadFile = false

    /// `discardMessages`: messages go nowhere (for the argument fuzzer,
    /// whose inputs make the parser warn).
    init(discardMessages: Bool = false) {
        out = OutputBuffer(fd: 1)
        err = OutputBuffer(fd: discardMessages ? -1 : 2, capacity: 4096)
    }

    /// An error line: the message with the -R line it belongs to, if any.
    func error(_ text: String) throws(Failure) {
        try message(errorContext + text)
    }

    /// A command's closing summary ("N flow entries have been ..."), which
    /// -R leaves out for the commands of its file.
    func summary(_ text: String) throws(Failure) {
        if !inLoadFile { try message(text) }
    }

    /// Writes one line "ctl vX: message" to stderr.
    func message(_ text: String) throws(Failure) {
        try flushOut()
        err.append(messagePrefix)
        err.append(text)
        err.append(UInt8(ascii: "\n"))
        try? err.flush()
    }

    /// Writes a raw line to stderr (no prefix).
    func raw(_ text: String) throws(Failure) {
        try flushOut()
        err.append(text)
        err.append(UInt8(ascii: "\n"))
        try? err.flush()
    }

    /// Flushes stdout; a failed write is a Failure (see Failure.output).
    func flushOut() throws(Failure) {
        do throws(OutputError) {
            try out.flush()
        } catch {
            throw .output(error)
        }
    }

    /// Reports a failure as ctl ends with it, and gives its exit code.
    func report(_ failure: Failure) -> ExitCode {
        switch failure.form {
        case .silent:
            return failure.code
        case .bare:
            err.append(messagePrefix)
            err.append(failure.message)
            err.append(UInt8(ascii: "\n"))
            try? err.flush()
            return failure.code
        case .line:
            do throws(Failure) {
                try error(failure.message)
                if failure.hint { try raw("Try `ctl -h' or 'ctl --help' for more information.") }
                return failure.code
            } catch {
                // stdout could not be flushed first.
                return report(error)
            }
        }
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
