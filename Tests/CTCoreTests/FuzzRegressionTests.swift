import XCTest
@testable import CTCore

/// Replays the fuzzing regression corpus (Fixtures/fuzz-regressions: inputs
/// that once crashed or hung ctl-fuzz-decoder, and hand-made malformed
/// ones from scripts/fuzz-corpus.py) through the fuzzer's own path.
final class FuzzRegressionTests: XCTestCase {
    func testRegressionCorpusDecodesAndFormats() throws {
        let directory = Fixtures.directory.appendingPathComponent("fuzz-regressions")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        XCTAssertGreaterThan(names.count, 10)
        for name in names {
            let bytes = try Fixtures.bytes("fuzz-regressions/" + name)
            let start = ContinuousClock.now
            _ = FuzzEntry.decodeAll(bytes)
            XCTAssertLessThan(ContinuousClock.now - start, .seconds(5), name)
        }
    }

    /// Every kernel-captured fixture, and every prefix of one, goes through
    /// without a trap.
    func testFixturePrefixes() throws {
        let names = try Fixtures.messageNames()
        XCTAssertGreaterThan(names.count, 10)
        for name in names {
            let bytes = try Fixtures.bytes(name)
            for n in 0...bytes.count { _ = FuzzEntry.decodeAll(Array(bytes.prefix(n))) }
            XCTAssertGreaterThan(FuzzEntry.decodeAll(bytes), 0, name)
        }
    }
}
