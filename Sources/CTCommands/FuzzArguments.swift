import CTCore
import Glibc

/// For fuzzing only (the `ctl-fuzz-args` libFuzzer target and the
/// regression test that replays its corpus): runs arbitrary bytes through
/// everything that reads a command line or a -R file, up to the point
/// where ctl would open its socket. Not used by `ctl`.
///
/// An input's first byte chooses what the rest is: even, a command line
/// whose words are separated by NUL bytes; odd, the text of a -R file.
///
/// Beyond "no crash, no hang", every input is held to these, and a
/// violation stops the fuzzer (`preconditionFailure`):
/// - every refusal carries a message, so ctl never exits 1 or 2 silently;
/// - the fast path and getopt_long parse every argv alike: the same
///   invocation, or the same refusal (the fast path is meant to be only a
///   shortcut to getopt's result);
/// - parsing leaves no state behind: the same words parse alike again.
///
/// Each input gets a Session of its own, as each run of ctl does; its
/// warnings and messages go nowhere (the parser warns on some inputs, and
/// the fuzzer's own report shares stderr).
public enum FuzzArguments {
    /// Runs one fuzz input; returns a summary of what it parsed to (for
    /// the replay tool and the tests).
    @discardableResult
    public static func run(_ bytes: [UInt8]) -> [String] {
        guard let mode = bytes.first else { return [] }
        let rest = Array(bytes.dropFirst())
        if mode & 1 == 0 {
            return [commandLine(words(rest))]
        }
        return loadFile(rest)
    }

    /// The NUL-separated words of `bytes`; decoded as UTF-8 with
    /// replacement, as CommandLine.arguments does.
    static func words(_ bytes: [UInt8]) -> [String] {
        guard !bytes.isEmpty else { return [] }
        return bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    }

    /// One command line (without the program name), parsed as ctl's main
    /// parses it: ctl's own options taken out, conntrack's options, the checks, and
    /// what the command builds before it opens a socket.
    public static func commandLine(_ arguments: [String]) -> String {
        let session = Session(discardMessages: true)
        let own: OwnOptions
        let words: [String]
        do throws(Failure) {
            (own, words) = try takeOwnOptions(["ctl"] + arguments)
        } catch {
            return refused(error)
        }
        let argv = cArguments(words)
        defer {
            for i in 0..<words.count { free(argv[i]) }
            argv.deallocate()
        }
        return parsedAlike(Int32(words.count), argv, inFile: false, own: own, session)
    }

    /// A -R file: every line parsed and checked (ctl stops at the first
    /// bad one; the fuzzer goes on, to reach the later lines).
    public static func loadFile(_ bytes: [UInt8]) -> [String] {
        let session = Session(discardMessages: true)
        var results: [String] = []
        forEachLine(of: bytes) { number, lineWords in
            // The line's words through both paths (on copies of the argv
            // pointers: getopt_long reorders the array it is given) ...
            _ = parsedAlike(Int32(lineWords.count), lineWords.argv, inFile: true, session)
            // ... and the line's own parse, as -R runs it.
            let outcome: String
            do throws(Failure) {
                outcome = "\(try parseLine(&lineWords, session))"
            } catch {
                outcome = refused(error)
            }
            results.append("line \(number): \(outcome)")
            return true
        }
        return results
    }

    /// Parses argv three times in one session, fast path, getopt_long,
    /// fast path again, each on a fresh copy of the pointer array; they
    /// must agree.
    private static func parsedAlike(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>,
                                    inFile: Bool, own: OwnOptions = OwnOptions(),
                                    _ session: Session) -> String {
        let first = parsed(argc, argv, inFile: inFile, fast: true, own: own, session)
        let slow = parsed(argc, argv, inFile: inFile, fast: false, own: own, session)
        let again = parsed(argc, argv, inFile: inFile, fast: true, own: own, session)
        guard first == slow else {
            preconditionFailure("fast path and getopt_long differ:\n  fast:  \(first)\n  getopt: \(slow)")
        }
        guard first == again else {
            preconditionFailure("the same words parsed differently the second time:\n  \(first)\n  \(again)")
        }
        return first
    }

    private static func parsed(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>,
                               inFile: Bool, fast: Bool, own: OwnOptions, _ session: Session) -> String {
        let copy = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: Int(argc) + 1)
        defer { copy.deallocate() }
        copy.update(from: argv, count: Int(argc))
        copy[Int(argc)] = nil
        session.parser.useFastPath = fast
        defer { session.parser.useFastPath = true }
        var inv: Invocation
        do throws(Failure) {
            inv = try parseArguments(argc, copy, inFile: inFile, in: session)
            inv.own = own
        } catch {
            return refused(error)
        }
        do throws(Failure) {
            try validate(inv, session)
            return "\(inv) => \(try prepared(inv, session))"
        } catch {
            return "\(inv) => \(refused(error))"
        }
    }

    /// What the command makes of a valid invocation before it opens a
    /// socket: the entry -I/-A create, -U's plan, the selector with label
    /// bits and the kernel filter it sends, -E's socket filter.
    private static func prepared(_ inv: Invocation, _ session: Session) throws(Failure) -> String {
        guard inv.table == .conntrack else { return "expect or list" }
        switch inv.command {
        case .create?, .add?:
            return "\(try createChange(inv, session))"
        case .update?:
            let plan = try UpdatePlan(inv, session)
            let selector = try inv.selector(for: .update, session)
            return "\(plan.change(for: Flow()).map { "\($0)" } ?? "no change") \(kernelRequest(selector))"
        case .list?, .delete?, .get?, .count?, .event?:
            let selector = try inv.selector(for: inv.command!, session)
            let program = EventFilter.program(for: selector).map { "\($0.count) instructions" } ?? "no program"
            return "\(kernelRequest(selector)) \(program)"
        default:
            return "\(inv.command.map { $0.rawValue } ?? "none")"
        }
    }

    /// The dump request's attributes with every kernel filter and with
    /// none, counted.
    private static func kernelRequest(_ selector: Selector) -> String {
        let all = selector.dumpAttributes(KernelFilterSupport(mark: true, status: true, tupleFilter: true))
        let none = selector.dumpAttributes(.none)
        return "\(all.count)/\(none.count) attributes"
    }

    /// A refusal, which must say why.
    private static func refused(_ failure: Failure) -> String {
        guard !failure.message.isEmpty else {
            preconditionFailure("exit \(failure.code.rawValue) without a message")
        }
        return "exit \(failure.code.rawValue): \(failure.message)"
    }
}
