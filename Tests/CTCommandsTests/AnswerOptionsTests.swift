import CTCore
import Glibc
import XCTest
@testable import CTCommands

/// ctl's additions to -C and -S (selectors on -C, -o json and -o metrics,
/// --interval) as the parser and the checks take them, in-process.
final class AnswerOptionsTests: XCTestCase {
    private func parse(_ words: [String]) throws(Failure) -> Invocation { try parsedCommandLine(words) }
    private func refusal(_ words: [String]) -> Failure? { commandLineRefusal(words) }

    func testCountTakesSelectorsAndTheNewFormats() throws {
        XCTAssertFalse(try parse(["-C"]).countSelects)
        XCTAssertFalse(try parse(["-C", "-o", "json"]).countSelects)
        XCTAssertFalse(try parse(["-C", "-o", "metrics"]).countSelects)
        let udp = try parse(["-C", "-p", "udp", "--dport", "53"])
        XCTAssertTrue(udp.countSelects)
        XCTAssertEqual(udp.selection.selector.origDstPort, 53)
        for words in [["-C", "-s", "10.0.0.0/8"], ["-C", "-m", "1"], ["-C", "-u", "ASSURED"], ["-C", "-w", "3"],
                      ["-C", "-f", "ipv6"], ["-C", "-p", "tcp", "--state", "ESTABLISHED", "-o", "json"],
                      ["-C", "-d", "10.0.0.1", "-o", "metrics"]] {
            XCTAssertTrue(try parse(words).countSelects, "\(words)")
        }
        XCTAssertEqual(try parse(["-S", "-o", "json"]).answerFormat, .json)
        XCTAssertEqual(try parse(["-S", "-o", "metrics"]).answerFormat, .metrics)
        XCTAssertEqual(try parse(["-C", "-o", "m"]).answerFormat, .metrics)
    }

    func testRefusals() {
        let cases: [([String], String)] = [
            // conntrack's refusals that stay.
            (["-C", "-z"], "Illegal option `--zero' with this command"),
            (["-C", "-o", "id"], "Illegal option `--output' with this command"),
            (["-C", "-o", "json,id"], "Illegal option `--output' with this command"),
            (["-C", "-t", "5"], "Illegal option `--timeout' with this command"),
            (["-S", "-p", "tcp"], "Illegal option `--protonum' with this command"),
            (["-S", "-f", "ipv4"], "Illegal option `--family' with this command"),
            (["-S", "-o", "id"], "Illegal option `--output' with this command"),
            // ctl's own.
            (["-L", "-o", "metrics"], "-o metrics: this command has no metrics (-S, -C and --group-by have)"),
            (["-D", "-o", "metrics"], "-o metrics: this command has no metrics (-S, -C and --group-by have)"),
            (["-E", "-o", "metrics"], "-o metrics: this command has no metrics (-S, -C and --group-by have)"),
            (["-C", "expect", "-o", "metrics"], "-o metrics: this command has no metrics (-S, -C and --group-by have)"),
            (["-C", "-o", "metrics,id"], "-o metrics does not combine with other output formats"),
            (["-C", "--interval", "0"], "--interval `0': the interval must be above 0 and at most 86400 seconds"),
            (["-S", "--interval", "-1"], "--interval `-1': the interval must be above 0 and at most 86400 seconds"),
            (["-S", "--interval=abc"], "--interval `abc': not a number of seconds"),
            (["-S", "--interval", "nan"], "--interval `nan': not a number of seconds"),
            (["-S", "--interval", "inf"], "--interval `inf': not a number of seconds"),
            (["-S", "--interval", " 1"], "--interval ` 1': not a number of seconds"),
            (["-L", "--interval", "1"], "--interval: only -S, -C and --group-by repeat their answer"),
            (["-S", "--interval", "1", "-o", "metrics"],
             "--interval does not combine with -o metrics (a file is one scrape)"),
        ]
        for (words, message) in cases {
            let failure = refusal(words)
            XCTAssertEqual(failure?.message, message, "\(words)")
            XCTAssertEqual(failure?.code, .parameter, "\(words)")
        }
        XCTAssertNil(refusal(["-S", "--interval", "0.5"]))
        XCTAssertNil(refusal(["-C", "-p", "udp", "--interval", "2"]))
        XCTAssertNil(refusal(["-S", "-o", "json", "--interval", "2"]))
        XCTAssertNil(refusal(["-C", "-o", "json", "--interval", "2"]))
    }

    func testLiveViewPieces() {
        XCTAssertEqual(LiveView.timestampLine(0), "1970-01-01T00:00:00Z")
        XCTAssertEqual(LiveView.timestampLine(1_796_579_790), "2026-12-06T17:56:30Z")
        XCTAssertEqual(formatFixed(0.0015, decimals: 2), "0.00")
        XCTAssertEqual(formatFixed(12.345, decimals: 1), "12.3")
        XCTAssertEqual(formatFixed(99.999, decimals: 2), "100.00")
        XCTAssertEqual(TableFill(entries: 50, limit: 200).description, "entries 50 of 200 (25.00% full)")
        XCTAssertEqual(TableFill(entries: 5, limit: nil).description, "entries 5")
    }
}

/// -S --interval's block: totals, rates, and the flag on a rising
/// insert_failed, drop or early_drop (and only on those).
final class StatsRateLinesTests: XCTestCase {
    func testFirstBlockHasNoRatesThenRatesAndFlags() {
        let first = statsRateLines([("found", 10), ("drop", 0)], previous: [:], elapsed: nil)
        XCTAssertEqual(first.count, 3)
        XCTAssertTrue(first[1].hasPrefix("found") && first[1].hasSuffix(" -"), first[1])
        let next = statsRateLines([("found", 30), ("drop", 4), ("early_drop", 0), ("insert_failed", 1)],
                                  previous: ["found": 10, "drop": 0, "early_drop": 0, "insert_failed": 1],
                                  elapsed: 2)
        XCTAssertEqual(next[1].split(separator: " "), ["found", "30", "10.0"])
        XCTAssertEqual(next[2].split(separator: " "), ["drop", "4", "2.0", "RISING"])
        XCTAssertFalse(next[3].contains("RISING"), next[3])
        XCTAssertFalse(next[4].contains("RISING"), next[4])
        // found rising is no alarm.
        XCTAssertFalse(next[1].contains("RISING"))
    }
}

/// -E -o timestamp's time: the kernel's event timestamp when there is one.
final class EventTimeTests: XCTestCase {
    func testKernelEventTimestampWins() {
        var flow = Flow()
        flow.eventTimestamp = 1_796_578_300_439_691_865
        let t = eventTime(flow)
        XCTAssertEqual(t.seconds, 1_796_578_300)
        XCTAssertEqual(t.microseconds, 439_691)
    }

    func testWallClockWithout() {
        let before = wallClock().seconds
        let t = eventTime(Flow())
        XCTAssertGreaterThanOrEqual(t.seconds, before)
        XCTAssertLessThanOrEqual(t.seconds, wallClock().seconds)
    }
}
