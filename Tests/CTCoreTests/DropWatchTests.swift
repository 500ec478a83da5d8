import XCTest
@testable import CTCore

/// When the event socket reports a loss: once per overrun the kernel
/// reported (ENOBUFS), and once for drops it counted but never reported.
final class DropWatchTests: XCTestCase {
    func testNoDropsNoReport() {
        var watch = DropWatch(drops: 7)
        XCTAssertFalse(watch.unreported(drops: 7))
        XCTAssertFalse(watch.unreported(drops: 7))
        XCTAssertFalse(watch.overrunSeen)
    }

    /// The drops of an overrun that ENOBUFS reported are not reported again,
    /// however many the kernel counted until the queue was empty.
    func testReportedOverrunIsNotReportedAgain() {
        var watch = DropWatch(drops: 0)
        watch.reportedOverrun()
        XCTAssertTrue(watch.overrunSeen)
        XCTAssertFalse(watch.unreported(drops: 350))
        XCTAssertFalse(watch.unreported(drops: 350))
    }

    /// Drops counted with no ENOBUFS (the race with the read that empties
    /// the queue) are reported, once.
    func testSilentDropsAreReportedOnce() {
        var watch = DropWatch(drops: 0)
        watch.reportedOverrun()
        XCTAssertFalse(watch.unreported(drops: 10))
        XCTAssertTrue(watch.unreported(drops: 11))
        XCTAssertFalse(watch.unreported(drops: 11))
        XCTAssertTrue(watch.unreported(drops: 12))
    }

    /// Silent drops on a socket that never reported an overrun start the
    /// periodic checks too; the counter may wrap.
    func testSilentDropsFirstAndWrap() {
        var watch = DropWatch(drops: .max)
        XCTAssertTrue(watch.unreported(drops: 0))
        XCTAssertTrue(watch.overrunSeen)
        XCTAssertFalse(watch.unreported(drops: 0))
    }
}
