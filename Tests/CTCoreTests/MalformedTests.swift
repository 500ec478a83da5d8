import XCTest
@testable import CTCore

/// Short, truncated, wrongly sized and unknown input: an error for that
/// message or a clean skip, never a crash.
final class MalformedTests: XCTestCase {
    /// Appends one attribute (header + payload, padded) to `bytes`.
    func attribute(_ type: UInt16, _ payload: [UInt8], nested: Bool = false) -> [UInt8] {
        let len = UInt16(4 + payload.count)
        let t = nested ? type | 0x8000 : type
        var out = [UInt8(len & 0xff), UInt8(len >> 8), UInt8(t & 0xff), UInt8(t >> 8)] + payload
        while out.count % 4 != 0 { out.append(0) }
        return out
    }

    func decode(_ bytes: [UInt8]) throws -> Flow {
        try ByteView.with(bytes) { try Decoder.flow($0) }
    }

    func testEveryTruncationIsAnErrorOrAPrefix() throws {
        for name in try Fixtures.messageNames() {
            let bytes = try Fixtures.bytes(name)
            for length in 0..<bytes.count {
                // Must not crash; a cut inside an attribute is an error.
                _ = try? decode(Array(bytes[0..<length]))
            }
            XCTAssertThrowsError(try decode(Array(bytes[0..<3])), name)
        }
    }

    func testCutInsideAnAttributeIsMalformed() throws {
        let bytes = try Fixtures.bytes("tcp-0.bin")
        // 4-byte nfgenmsg, then CTA_TUPLE_ORIG's header; cut in its payload.
        XCTAssertThrowsError(try decode(Array(bytes[0..<10]))) { error in
            XCTAssertTrue(error is MalformedMessage, "\(error)")
        }
    }

    func testUnknownAttributesAreSkipped() throws {
        let bytes = try Fixtures.bytes("tcp-0.bin")
        let original = try decode(bytes)
        let extended = bytes + attribute(60, [1, 2, 3, 4, 5]) + attribute(61, attribute(1, [9, 9]), nested: true)
        XCTAssertEqual(try decode(extended), original)
        // Unknown nested members inside a known nest are skipped too.
        let tuple = attribute(CTA.Tuple.ip, attribute(CTA.IP.v4Src, [1, 2, 3, 4]) + attribute(30, [0]), nested: true)
            + attribute(CTA.Tuple.proto, attribute(CTA.Proto.num, [17]) + attribute(CTA.Proto.srcPort, [0, 53]), nested: true)
            + attribute(9, [0, 0, 0, 0])
        let message = [2, 0, 0, 0] + attribute(CTA.tupleOrig, tuple, nested: true)
        let flow = try decode(message)
        XCTAssertEqual(flow.orig?.src, .v4(0x0102_0304))
        XCTAssertEqual(flow.orig?.srcPort, 53)
        XCTAssertEqual(flow.orig?.proto, 17)
    }

    func testWrongLengthsAreMalformed() {
        let header: [UInt8] = [2, 0, 0, 0]
        let cases: [(String, [UInt8])] = [
            ("u32 with 5 bytes", header + attribute(CTA.mark, [0, 0, 0, 0, 1])),
            ("u32 with 2 bytes", header + attribute(CTA.status, [0, 1])),
            ("u16 zone with 4 bytes", header + attribute(CTA.zone, [0, 0, 0, 1])),
            ("v6 address with 4 bytes", header + attribute(CTA.tupleOrig, attribute(CTA.Tuple.ip, attribute(CTA.IP.v6Src, [1, 2, 3, 4]), nested: true), nested: true)),
            ("u8 proto with 2 bytes", header + attribute(CTA.tupleOrig, attribute(CTA.Tuple.proto, attribute(CTA.Proto.num, [6, 0]), nested: true), nested: true)),
            ("u64 counter with 4 bytes", header + attribute(CTA.countersOrig, attribute(CTA.Counters.packets, [0, 0, 0, 1]) + attribute(CTA.Counters.bytes, [0, 0, 0, 0, 0, 0, 0, 1]), nested: true)),
            ("counters without bytes", header + attribute(CTA.countersOrig, attribute(CTA.Counters.packets, [0, 0, 0, 0, 0, 0, 0, 1]), nested: true)),
            ("labels of 3 bytes", header + attribute(CTA.labels, [1, 2, 3])),
            ("labels of 20 bytes", header + attribute(CTA.labels, [UInt8](repeating: 1, count: 20))),
            ("attribute length below its header", header + [2, 0, 1, 0]),
            ("attribute length past the end", header + [40, 0, 8, 0, 0, 0, 0, 0]),
            ("dangling header bytes", header + [8, 0]),
            ("short nfgenmsg", [2, 0]),
            ("empty", []),
        ]
        for (what, bytes) in cases {
            XCTAssertThrowsError(try decode(bytes), what) { error in
                XCTAssertTrue(error is MalformedMessage, "\(what): \(error)")
            }
        }
    }

    func testRandomBytesNeverCrash() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let count = Int.random(in: 0..<96, using: &generator)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Plausible attribute headers make the decoder go deeper.
            if count >= 8 { bytes[4] = UInt8(count - 4); bytes[5] = 0; bytes[7] = 0x80 }
            if let flow = try? decode(bytes) {
                _ = format(flow, [.extended, .id, .ktimestamp, .labels], labels: LabelMap(names: [1: "x"]))
            }
        }
    }

    func testMessageWithOnlyHeaderDecodesEmpty() throws {
        let flow = try decode([10, 0, 0, 0])
        XCTAssertEqual(flow.family, .ipv6)
        XCTAssertNil(flow.orig)
        XCTAssertEqual(format(flow, []), "unknown  0\n")
    }
}
