import CTCore
import Foundation
import XCTest
@testable import CTCommands

/// The parsers in-process: the argument fuzzer's regression corpus, and
/// refusals and parses whose expected messages come from conntrack 1.4.7
/// run on the same words (exit code 2 and the message after the prefix).
final class ArgumentParserTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    /// Every input that ever failed ctl-fuzz-args, and the hand-made nasty
    /// ones (scripts/fuzz-args-corpus.py regressions), through the fuzzer's
    /// own path with its checks: fast path and getopt_long agree, every
    /// refusal has a message, nothing traps or takes long.
    func testRegressionCorpus() throws {
        let directory = Self.fixtures.appendingPathComponent("fuzz-args-regressions")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        XCTAssertGreaterThan(names.count, 20)
        for name in names {
            let bytes = [UInt8](try Data(contentsOf: directory.appendingPathComponent(name)))
            let start = ContinuousClock.now
            let outcomes = FuzzArguments.run(bytes)
            XCTAssertLessThan(ContinuousClock.now - start, .seconds(5), name)
            if name.hasPrefix("argv-") { XCTAssertEqual(outcomes.count, 1, name) }
        }
    }

    private func parse(_ words: [String], inFile: Bool = false) throws(Failure) -> Invocation {
        try parsedCommandLine(words, inFile: inFile)
    }

    private func refusal(_ words: [String]) -> Failure? { commandLineRefusal(words) }

    func testConntrackRefusals() {
        let cases: [([String], String)] = [
            (["-L", "-u", "ASSURED,BOGUS"], "Bad parameter `BOGUS'"),
            (["-D", "-s", "1.2.3.4/33"], "Invalid netmask"),
            (["-L", "--d"], "unknown option `--d'"),
            (["-L", "-x"], "unknown option `-x'"),
            (["-I", "-p", "tcp", "-s", "1.1.1.1"], "You need to supply the `--timeout' option for this command"),
            (["-L", "-D"], "Invalid commands combination"),
            // conntrack's protocol tables, in their order: -U and -E refuse
            // dccp's --role (-U takes sctp's vtags, -E does not), and -I
            // refuses masks and tuples, after the state it needs.
            (["-U", "-p", "dccp", "--state", "OPEN", "--role", "client"], "Illegal option `--role' with this command"),
            (["-U", "-p", "tcp", "--tuple-port-src", "1", "--mask-port-src", "1"], "Illegal option `--mask-port-src' with this command"),
            (["-E", "-p", "sctp", "--orig-vtag", "1"], "Illegal option `--orig-vtag' with this command"),
            (["-E", "-p", "dccp", "--role", "server"], "Illegal option `--role' with this command"),
            (["-L", "-p", "tcp", "--tuple-port-src", "1", "--mask-port-src", "1"], "Illegal option `--mask-port-src' with this command"),
            (["-D", "-p", "sctp", "--reply-vtag", "1", "--tuple-port-dst", "1"], "Illegal option `--tuple-port-dst' with this command"),
            (["-I", "-t", "1", "-s", "1.1.1.1", "-d", "2.2.2.2", "-p", "tcp", "--tuple-port-src", "1"],
             "You need to supply the `--state' option for this command"),
            (["-I", "-t", "1", "-s", "1.1.1.1", "-d", "2.2.2.2", "-p", "tcp", "--state", "ESTABLISHED", "--tuple-port-src", "1"],
             "Illegal option `--tuple-port-src' with this command"),
            (["-I", "-t", "1", "-s", "1.1.1.1", "-d", "2.2.2.2", "-p", "dccp", "--state", "OPEN", "--mask-port-src", "1"],
             "Illegal option `--mask-port-src' with this command"),
            (["-I", "-t", "1", "-s", "1.1.1.1", "-d", "2.2.2.2", "-p", "udp", "--sport", "1", "--tuple-port-dst", "1"],
             "Illegal option `--tuple-port-dst' with this command"),
            (["-I", "-t", "1", "-s", "1.1.1.1", "-d", "2.2.2.2", "-p", "gre", "--tuple-key-src", "1"],
             "Illegal option `--tuple-key-src' with this command"),
            (["-I", "-t", "1", "-s", "1.1.1.1", "-d", "2.2.2.2", "-p", "dccp", "--state", "OPEN", "--sport", "1", "--dport", "2"],
             "You need to supply the `--role' option for this command"),
        ]
        for (words, message) in cases {
            let failure = refusal(words)
            XCTAssertEqual(failure?.message, message, "\(words)")
            XCTAssertEqual(failure?.code, .parameter, "\(words)")
        }
    }

    /// Abbreviated long options and a protocol's options, as getopt_long
    /// and conntrack read them (conntrack lists tcp dport 80 ESTABLISHED).
    func testAbbreviationsAndProtocolOptions() throws {
        let inv = try parse(["-L", "-p", "tcp", "--dp", "80", "--state", "ESTABLISHED", "-o", "extended"])
        XCTAssertEqual(inv.command, .list)
        XCTAssertEqual(inv.selection.selector.proto, 6)
        XCTAssertEqual(inv.selection.selector.origDstPort, 80)
        XCTAssertEqual(inv.selection.selector.state, 3)
        XCTAssertEqual(inv.output, .extended)
        XCTAssertEqual(inv.protoOptions, ["dport", "state"])
    }

    /// -D and -U derive the selector they select with as a value: the
    /// parsed selector (what -U sets the mark and status from) stays as
    /// it was parsed.
    func testCommandSelectorsAreDerived() throws {
        let session = Session(discardMessages: true)
        let delete = try parse(["-D", "-u", "ASSURED", "-u", "SEEN_REPLY", "-m", "3"])
        let parsed = delete.selection.selector
        let deleting = try delete.selector(for: .delete, session)
        XCTAssertEqual(delete.selection.selector, parsed)
        XCTAssertEqual(deleting.statusMask, [.assured, .seenReply])
        XCTAssertEqual(parsed.statusMask, [.assured])
        XCTAssertEqual(try delete.selector(for: .list, session), parsed)

        let update = try parse(["-U", "-p", "tcp", "--sport", "22", "-m", "3", "-t", "5", "--state", "CLOSE"])
        let updating = try update.selector(for: .update, session)
        XCTAssertNil(updating.mark)
        XCTAssertNil(updating.timeout)
        XCTAssertNil(updating.state)
        XCTAssertEqual(updating.origSrcPort, 22)
        XCTAssertEqual(update.selection.selector.mark, 3)
        XCTAssertEqual(update.selection.selector.timeout, 5)
        XCTAssertEqual(try UpdatePlan(update, session).timeout, 5)
    }

    /// conntrack 1.4.7's NAT selection: an IPv6 address counts for its
    /// family only, and with a port only the port is checked.
    func testNATSelectionQuirk() throws {
        let session = Session(discardMessages: true)
        let withPort = try parse(["-L", "-g", "10.0.0.2:8080"]).selector(for: .list, session)
        XCTAssertEqual(withPort.dstNAT, NATMatch(address: nil, port: 8080))
        let v6 = try parse(["-L", "-f", "ipv6", "-n", "::2"]).selector(for: .list, session)
        XCTAssertEqual(v6.srcNAT, NATMatch(address: nil))
        let v4 = try parse(["-L", "-n", "10.0.0.2"]).selector(for: .list, session)
        XCTAssertEqual(v4.srcNAT, NATMatch(address: .v4(0x0a00_0002)))
    }

    /// conntrack 1.4.7's -m before -u, owned by CTCommands: the library's
    /// filter gets the status bits as the mark, and -L's own check wants
    /// the mark -m gave as well; without -u there is no extra check.
    func testMarkBeforeStatusQuirk() throws {
        let list = try parse(["-L", "-m", "42", "-u", "ASSURED"])
        XCTAssertEqual(list.selection.selector.mark, Status.assured.rawValue)
        XCTAssertEqual(list.selection.listMark, 42)
        let check = try XCTUnwrap(list.quirkCheck)
        var flow = Flow()
        flow.status = .assured
        flow.mark = 42
        XCTAssertTrue(check(flow))
        XCTAssertFalse(list.selection.selector.matches(flow))
        flow.mark = Status.assured.rawValue
        XCTAssertFalse(check(flow))
        XCTAssertTrue(list.selection.selector.matches(flow))
        XCTAssertNil(try parse(["-L", "-m", "42"]).quirkCheck)
        XCTAssertNil(try parse(["-L", "-u", "ASSURED", "-m", "42"]).quirkCheck)
    }

    /// One session parses line after line (as -R does) with the same
    /// outcome each time, and a second session parses them alike.
    func testSessionParsesAlikeAgain() throws {
        let lines: [[String]] = [
            ["-L", "-p", "tcp", "--dport", "80"],
            ["-D", "-p", "udp", "--sport", "53", "-o", "xml"],
            ["-L", "-p", "tcp", "--dp", "80"],
        ]
        func outcomes(_ session: Session) throws -> [String] {
            try (lines + lines).map { words in
                let all = ["ctl"] + words
                let argv = cArguments(all)
                defer {
                    for i in 0..<all.count { free(argv[i]) }
                    argv.deallocate()
                }
                return "\(try parseArguments(Int32(all.count), argv, in: session))"
            }
        }
        let first = try outcomes(Session(discardMessages: true))
        XCTAssertEqual(Array(first[0..<3]), Array(first[3...]))
        XCTAssertEqual(first, try outcomes(Session(discardMessages: true)))
    }

    /// The fast path and getopt_long give the same invocation for plain
    /// and not-so-plain command lines.
    func testFastPathMatchesGetopt() {
        let lines: [[String]] = [
            ["-L", "-p", "tcp", "--dport", "80", "-s", "10.0.0.0/8", "-o", "xml"],
            ["-D", "-m", "1/0xff", "--id", "7"],
            ["-I", "-p", "udp", "-s", "1.1.1.1", "-d", "2.2.2.2", "--sport", "1", "--dport", "2", "-t", "5"],
            ["-L", "conntrack", "-n", "-g", "-j", "-z"],
            ["-U", "-m", "5", "--label-del"],
            ["--dump", "--protonum", "tcp", "--orig-port-dst", "22"],
        ]
        for words in lines {
            let fast = FuzzArguments.commandLine(words)
            XCTAssertFalse(fast.hasPrefix("exit"), "\(words): \(fast)")
        }
    }

    /// -R's line splitting: blanks and tabs separate, double quotes group
    /// (a quoted "-p udp" is one word, so -p gets " udp": conntrack says
    /// "` udp' unsupported protocol"), a NUL ends the line, '#' lines are
    /// comments, and more than 253 words is "too many arguments".
    func testLoadFileLines() {
        let text = "-D -p tcp\0 -s 1.1.1.1\n# -F\n\n-F \"-p udp\"\n-D " + String(repeating: "-z ", count: 260) + "\n"
        let outcomes = FuzzArguments.loadFile(Array(text.utf8))
        XCTAssertEqual(outcomes.count, 3, "\(outcomes)")
        XCTAssertTrue(outcomes[0].hasPrefix("line 1: command("), outcomes[0])
        XCTAssertEqual(outcomes[1], "line 4: exit 2: ` udp' unsupported protocol")
        XCTAssertEqual(outcomes[2], "line 5: exit 2: too many arguments")
    }

    /// ctl's own options come out of argv before conntrack's options are
    /// parsed, spelled in full only.
    func testOwnOptionsAreTakenOut() throws {
        let (own, rest) = try takeOwnOptions(["ctl", "-L", "--netns", "web", "-p", "tcp", "--all-netns",
                                               "--group-by=src,dport", "--top", "5"])
        XCTAssertEqual(own, OwnOptions(netns: "web", groupBy: "src,dport", top: "5", allNetns: true))
        XCTAssertEqual(rest, ["ctl", "-L", "-p", "tcp"])
        XCTAssertEqual(try takeOwnOptions(["ctl", "--netns=/proc/1/ns/net", "-L"]).0.netns, "/proc/1/ns/net")
        XCTAssertEqual(try takeOwnOptions(["ctl", "-L"]).0, OwnOptions())
        // Abbreviations and a flag given a value stay for getopt_long to judge.
        XCTAssertEqual(try takeOwnOptions(["ctl", "-L", "--group", "src", "--all-netns=1"]).1,
                       ["ctl", "-L", "--group", "src", "--all-netns=1"])
        XCTAssertThrowsError(try takeOwnOptions(["ctl", "-L", "--netns"]))
        XCTAssertThrowsError(try takeOwnOptions(["ctl", "-L", "--netns="]))
        XCTAssertThrowsError(try takeOwnOptions(["ctl", "-L", "--interval"]))
    }
}
