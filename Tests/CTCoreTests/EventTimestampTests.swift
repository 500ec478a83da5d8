import XCTest
@testable import CTCore

/// CTA_TIMESTAMP_EVENT (Linux 6.14 and later, with
/// net.netfilter.nf_conntrack_timestamp=1): the event messages in
/// Fixtures/events were captured from a 6.18 kernel (a NEW and a DESTROY
/// event with timestamping on, a NEW event with it off).
final class EventTimestampTests: XCTestCase {
    func testEventsCarryTheKernelsEventTimestamp() throws {
        let new = try Fixtures.flow("events/new-timestamp.bin")
        XCTAssertEqual(new.eventTimestamp, 1_796_578_300_408_696_237)
        XCTAssertEqual(new.orig?.dstPort, 80)
        let destroy = try Fixtures.flow("events/destroy-timestamp.bin")
        XCTAssertEqual(destroy.eventTimestamp, 1_796_578_300_439_691_865)
        // the destroy event's stop time comes just before the event itself
        let stop = try XCTUnwrap(destroy.timestampStop)
        XCTAssertLessThanOrEqual(stop, destroy.eventTimestamp!)
        XCTAssertLessThan(destroy.eventTimestamp! - stop, 1_000_000_000)
    }

    func testNoEventTimestampWithTimestampingOff() throws {
        let new = try Fixtures.flow("events/new-no-timestamp.bin")
        XCTAssertNil(new.eventTimestamp)
        XCTAssertNil(new.timestampStart)
        XCTAssertEqual(new.orig?.srcPort, 1234)
    }

    func testShortEventTimestampIsMalformed() {
        // nfgenmsg (AF_INET, version 0, res_id 0), then CTA_TIMESTAMP_EVENT
        // with 4 bytes instead of 8.
        let bytes: [UInt8] = [2, 0, 0, 0, 8, 0, 27, 0, 1, 2, 3, 4]
        XCTAssertThrowsError(try ByteView.with(bytes) { try Decoder.flow($0) })
        let good: [UInt8] = [2, 0, 0, 0, 12, 0, 27, 0, 0, 0, 0, 0, 0, 0, 1, 2]
        XCTAssertEqual(try ByteView.with(good) { try Decoder.flow($0) }.eventTimestamp, 0x102)
    }
}
