import XCTest
@testable import CTCore

/// Shared values of the fake-kernel tests.
enum FakeFixtures {
    /// Recorded ctnetlink entries (nfgenmsg + attributes) of several protocols.
    static func entries() throws -> [[UInt8]] {
        try ["tcp-0.bin", "udp-0.bin", "icmp-0.bin", "tcp6-zone-0.bin", "traffic-0.bin", "traffic-1.bin"]
            .map(Fixtures.bytes)
    }

    static let a1: UInt32 = 0x0a00_0001   // 10.0.0.1
    static let a2: UInt32 = 0x0a00_0002   // 10.0.0.2

    /// 10.0.0.1:sport -> 10.0.0.2:dport over TCP.
    static func tcpTuple(sport: UInt16 = 1234, dport: UInt16 = 80) -> Tuple {
        Tuple(source: .v4(a1), destination: .v4(a2), protocol: .tcp, sourcePort: sport, destinationPort: dport)
    }

    /// The same tuple as CTA_TUPLE_ORIG bytes, built by hand.
    static func tcpTupleBytes(sport: UInt16 = 1234, dport: UInt16 = 80) -> [UInt8] {
        Bytes.tuple(K.CTA_TUPLE_ORIG, src: a1, dst: a2, proto: 6, sport: sport, dport: dport)
    }

    /// Its reverse as CTA_TUPLE_REPLY bytes: what a create without a reply
    /// tuple sends (the kernel refuses a create without one).
    static func tcpReplyBytes(sport: UInt16 = 1234, dport: UInt16 = 80) -> [UInt8] {
        Bytes.tuple(K.CTA_TUPLE_REPLY, src: a2, dst: a1, proto: 6, sport: dport, dport: sport)
    }
}

/// The netlink layer (`NetlinkSocket`) against a scripted kernel: sequence
/// and port checks, error replies, dump ends, batches, never-send rules.
final class NetlinkSocketFakeTests: XCTestCase {
    /// A dump request of the whole conntrack table.
    let dumpAll = NetlinkRequest(subsystem: 1, message: 1, flags: NetlinkFlags.dump, family: 0)

    /// A DELETE naming one entry by its original tuple (built by the
    /// library's encoder; the bytes are checked elsewhere).
    func delete(sport: UInt16) -> NetlinkRequest {
        var flow = Flow()
        flow.family = .ipv4
        flow.orig = FakeFixtures.tcpTuple(sport: sport)
        return CTSession.deleteRequest(for: flow)!
    }

    /// Runs `body` once with dumps read on the calling thread and once with
    /// the second reading thread (`ReadAhead`), as the real socket allows.
    func bothReadModes(_ body: (Bool) throws -> Void) rethrows {
        for readAhead in [false, true] { try body(readAhead) }
    }

    func testDumpRequestBytesAndEveryEntryOfTheAnswer() throws {
        let entries = try FakeFixtures.entries()
        try bothReadModes { readAhead in
            let kernel = FakeKernel(readAhead: readAhead) { d in Reply.dump(d.messages[0], entries) }
            let socket = NetlinkSocket(transport: kernel.openSocket())
            var payloads: [[UInt8]] = []
            let outcome = try socket.perform(dumpAll) { payloads.append($0.payload.bytes) }
            XCTAssertEqual(payloads, entries)
            XCTAssertFalse(outcome.interrupted)
            // nlmsghdr {20, CT_GET, REQUEST|DUMP, 1000, 0} + nfgenmsg {AF_UNSPEC, v0, 0}
            XCTAssertEqual(kernel.datagrams.map(\.bytes), [[20, 0, 0, 0, 0x01, 0x01, 0x01, 0x03,
                                                             0xe8, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]])
            XCTAssertEqual(kernel.starved, 0)
        }
    }

    func testWrongSequenceNumberIsEPROTO() throws {
        let entries = try FakeFixtures.entries()
        try bothReadModes { readAhead in
            // The second entry answers another request.
            let kernel = FakeKernel(readAhead: readAhead) { d in
                let m = d.messages[0]
                return [.datagram(Reply.entry(entries[0], to: m) + Reply.entry(entries[1], to: m, seq: m.sequence &+ 1)),
                        .datagram(Reply.done(m))]
            }
            let socket = NetlinkSocket(transport: kernel.openSocket())
            var seen = 0
            XCTAssertThrowsError(try socket.perform(dumpAll) { _ in seen += 1 }) {
                XCTAssertEqual($0 as? Errno, .protocolError)
            }
            XCTAssertEqual(seen, 1)
        }
        // A get (no dump) whose answer has an older sequence number.
        let kernel = FakeKernel { d in [.datagram(Reply.ack(d.messages[0], seq: d.messages[0].sequence &- 1))] }
        let socket = NetlinkSocket(transport: kernel.openSocket())
        let get = NetlinkRequest(subsystem: 1, message: 1, flags: NetlinkFlags.ack, family: 2)
        XCTAssertThrowsError(try socket.perform(get) { _ in }) { XCTAssertEqual($0 as? Errno, .protocolError) }
    }

    func testWrongPortIDIsESRCH() throws {
        let entries = try FakeFixtures.entries()
        try bothReadModes { readAhead in
            let kernel = FakeKernel(readAhead: readAhead) { d in
                let m = d.messages[0]
                return [.datagram(Reply.entry(entries[0], to: m, port: m.socket + 1) + Reply.done(m))]
            }
            let socket = NetlinkSocket(transport: kernel.openSocket())
            var seen = 0
            XCTAssertThrowsError(try socket.perform(dumpAll) { _ in seen += 1 }) {
                XCTAssertEqual($0 as? Errno, .noSuchProcess)
            }
            XCTAssertEqual(seen, 0)
        }
    }

    /// libmnl's checks let sequence 0 and port 0 through (kernel-originated
    /// messages carry them).
    func testSequenceZeroAndPortZeroPass() throws {
        let entries = try FakeFixtures.entries()
        let kernel = FakeKernel { d in
            let m = d.messages[0]
            return [.datagram(Reply.entry(entries[0], to: m, seq: 0) + Reply.entry(entries[1], to: m, port: 0)
                              + Reply.done(m))]
        }
        var seen = 0
        try NetlinkSocket(transport: kernel.openSocket()).perform(dumpAll) { _ in seen += 1 }
        XCTAssertEqual(seen, 2)
    }

    func testInterruptedDumpIsReportedAndDeliversEveryEntry() throws {
        let entries = try FakeFixtures.entries()
        try bothReadModes { readAhead in
            let kernel = FakeKernel(readAhead: readAhead) { d in
                // Only the second datagram's entries carry NLM_F_DUMP_INTR.
                let m = d.messages[0]
                return [.datagram(Reply.entry(entries[0], to: m)),
                        .datagram(Reply.entry(entries[1], to: m, flags: K.NLM_F_MULTI | K.NLM_F_DUMP_INTR) + Reply.done(m))]
            }
            var seen = 0
            let outcome = try NetlinkSocket(transport: kernel.openSocket()).perform(dumpAll) { _ in seen += 1 }
            XCTAssertTrue(outcome.interrupted)
            XCTAssertEqual(seen, 2)
        }
    }

    func testDumpEndingWithAnErrorThrowsIt() throws {
        let entries = try FakeFixtures.entries()
        try bothReadModes { readAhead in
            // NLMSG_DONE carrying -EINTR, then an NLMSG_ERROR ending a dump.
            let endings: [@Sendable (FakeKernel.Message) -> [UInt8]] = [{ m in Reply.done(m, error: -EINTR) },
                                                                         { m in Reply.ack(m, error: -EINTR) }]
            for ending in endings {
                let kernel = FakeKernel(readAhead: readAhead) { d in
                    [.datagram(Reply.entry(entries[0], to: d.messages[0])), .datagram(ending(d.messages[0]))]
                }
                var seen = 0
                XCTAssertThrowsError(try NetlinkSocket(transport: kernel.openSocket()).perform(dumpAll) { _ in seen += 1 }) {
                    XCTAssertEqual($0 as? Errno, .interrupted)
                }
                XCTAssertEqual(seen, 1)
            }
        }
    }

    func testReceiveErrorAndOverrunInADumpAreENOBUFS() throws {
        let entries = try FakeFixtures.entries()
        try bothReadModes { readAhead in
            let answers: [@Sendable (FakeKernel.Message) -> [FakeKernel.Answer]] = [
                { m in [.datagram(Reply.entry(entries[0], to: m)), .error(.noBufferSpace)] },
                { m in [.datagram(Reply.entry(entries[0], to: m)), .datagram(Reply.overrun(m))] },
            ]
            for answer in answers {
                let kernel = FakeKernel(readAhead: readAhead) { d in answer(d.messages[0]) }
                var seen = 0
                XCTAssertThrowsError(try NetlinkSocket(transport: kernel.openSocket()).perform(dumpAll) { _ in seen += 1 }) {
                    XCTAssertEqual($0 as? Errno, .noBufferSpace)
                }
                XCTAssertEqual(seen, 1)
            }
        }
    }

    /// An error thrown by the callback ends the request only after the
    /// rest of the answer was read: the socket stays usable.
    func testCallbackErrorDrainsTheAnswer() throws {
        struct Stop: Error {}
        let entries = try FakeFixtures.entries()
        try bothReadModes { readAhead in
            let kernel = FakeKernel(readAhead: readAhead) { d in Reply.dump(d.messages[0], entries, perDatagram: 1) }
            let socket = NetlinkSocket(transport: kernel.openSocket())
            XCTAssertThrowsError(try socket.perform(dumpAll) { _ in throw Stop() }) { XCTAssertTrue($0 is Stop) }
            var seen = 0
            try socket.perform(dumpAll) { _ in seen += 1 }
            XCTAssertEqual(seen, entries.count)
            XCTAssertEqual(kernel.starved, 0)
        }
    }

    // MARK: Batches

    func testBatchMapsErrorsToTheirRequestsAndAsksOneAck() throws {
        let kernel = FakeKernel { d in Reply.batch(d, errors: [1: ENOENT, 2: EPERM]) }
        let socket = NetlinkSocket(transport: kernel.openSocket())
        let failures = try socket.performBatch((1...4).map { delete(sport: $0) })
        XCTAssertEqual(failures, [1: .noEntry, 2: .notPermitted])
        // One datagram; consecutive sequence numbers; NLM_F_ACK on the last only.
        XCTAssertEqual(kernel.datagrams.count, 1)
        let sent = kernel.messages
        XCTAssertEqual(sent.map(\.sequence), [1000, 1001, 1002, 1003])
        XCTAssertEqual(sent.map(\.flags), [1, 1, 1, 5])
        XCTAssertEqual(sent.map(\.type), [K.CT_DELETE, K.CT_DELETE, K.CT_DELETE, K.CT_DELETE])
        for (i, m) in sent.enumerated() {
            XCTAssertEqual(Array(m.payload.dropFirst(4)), FakeFixtures.tcpTupleBytes(sport: UInt16(i + 1)))
        }
        // The next request goes on from there.
        _ = try socket.performBatch([delete(sport: 9)])
        XCTAssertEqual(kernel.messages.last?.sequence, 1004)
    }

    func testBatchWhoseLastRequestFails() throws {
        let kernel = FakeKernel { d in Reply.batch(d, errors: [2: EEXIST]) }
        let failures = try NetlinkSocket(transport: kernel.openSocket()).performBatch((1...3).map { delete(sport: $0) })
        XCTAssertEqual(failures, [2: .exists])
        XCTAssertEqual(kernel.starved, 0)
    }

    /// All answers in one datagram work as well as one per datagram.
    func testBatchAnswersPackedInOneDatagram() throws {
        let kernel = FakeKernel { d in
            let bytes = Reply.batch(d, errors: [0: ENOENT]).flatMap { a -> [UInt8] in
                if case .datagram(let b) = a { return b } else { return [] }
            }
            return [.datagram(bytes)]
        }
        let failures = try NetlinkSocket(transport: kernel.openSocket()).performBatch((1...3).map { delete(sport: $0) })
        XCTAssertEqual(failures, [0: .noEntry])
    }

    /// Sequence numbers wrap around within a batch and across requests.
    func testSequenceNumbersWrapAround() throws {
        let kernel = FakeKernel(initialSequence: UInt32.max - 1) { d in Reply.batch(d, errors: [2: ENOENT]) }
        let socket = NetlinkSocket(transport: kernel.openSocket())
        XCTAssertEqual(try socket.performBatch((1...4).map { delete(sport: $0) }), [2: .noEntry])
        XCTAssertEqual(kernel.messages.map(\.sequence), [UInt32.max - 1, UInt32.max, 0, 1])
        XCTAssertEqual(try socket.performBatch([delete(sport: 5)]), [:])
        XCTAssertEqual(kernel.messages.last?.sequence, 2)
    }

    func testBatchReplyOfAnotherRequestIsEPROTOAndOfAnotherPortESRCH() throws {
        let wrongSequence = FakeKernel { d in
            [.datagram(Reply.ack(d.messages[0], error: -ENOENT, seq: d.messages.last!.sequence &+ 1))]
        }
        XCTAssertThrowsError(try NetlinkSocket(transport: wrongSequence.openSocket()).performBatch([delete(sport: 1), delete(sport: 2)])) {
            XCTAssertEqual($0 as? Errno, .protocolError)
        }
        let older = FakeKernel { d in [.datagram(Reply.ack(d.messages[0], seq: d.messages[0].sequence &- 1))] }
        XCTAssertThrowsError(try NetlinkSocket(transport: older.openSocket()).performBatch([delete(sport: 1)])) {
            XCTAssertEqual($0 as? Errno, .protocolError)
        }
        let wrongPort = FakeKernel { d in [.datagram(Reply.ack(d.messages[1], port: d.port &+ 7))] }
        XCTAssertThrowsError(try NetlinkSocket(transport: wrongPort.openSocket()).performBatch([delete(sport: 1), delete(sport: 2)])) {
            XCTAssertEqual($0 as? Errno, .noSuchProcess)
        }
    }

    func testBatchOverrunIsENOBUFS() throws {
        let kernel = FakeKernel { d in [.datagram(Reply.overrun(d.messages[0]))] }
        XCTAssertThrowsError(try NetlinkSocket(transport: kernel.openSocket()).performBatch([delete(sport: 1)])) {
            XCTAssertEqual($0 as? Errno, .noBufferSpace)
        }
    }

    /// NLMSG_DONE carrying an error is that request's error, not nothing.
    func testBatchDoneWithAnErrorIsThatRequestsFailure() throws {
        let kernel = FakeKernel { d in
            [.datagram(Reply.done(d.messages[0], error: -EINVAL)), .datagram(Reply.ack(d.messages[1]))]
        }
        let failures = try NetlinkSocket(transport: kernel.openSocket()).performBatch([delete(sport: 1), delete(sport: 2)])
        XCTAssertEqual(failures, [0: Errno(EINVAL)])
    }

    /// A dump last in a batch gets no acknowledgement: its NLMSG_DONE ends
    /// the answer.
    func testBatchEndingWithADumpEndsAtItsDone() throws {
        let entries = try FakeFixtures.entries()
        let kernel = FakeKernel { d in
            Reply.batch(FakeKernel.Datagram(port: d.port, bytes: [], messages: [d.messages[0]]), errors: [0: ENOENT])
                + Reply.dump(d.messages[1], entries)
        }
        var got: [Int] = []
        let failures = try NetlinkSocket(transport: kernel.openSocket()).performBatch([delete(sport: 1), dumpAll]) { i, _ in
            got.append(i)
        }
        XCTAssertEqual(failures, [0: .noEntry])
        XCTAssertEqual(got, Array(repeating: 1, count: entries.count))
        XCTAssertEqual(kernel.starved, 0)
    }

    /// Data replies go to their request's index (get in a batch).
    func testBatchDataGoesToItsRequest() throws {
        let entries = try FakeFixtures.entries()
        let kernel = FakeKernel { d in Reply.batch(d, errors: [0: ENOENT], data: [0: entries[0], 1: entries[1]]) }
        let get = NetlinkRequest(subsystem: 1, message: 1, flags: 0, family: 2)
        var got: [Int: [UInt8]] = [:]
        let failures = try NetlinkSocket(transport: kernel.openSocket()).performBatch([get, get]) { i, m in
            got[i] = m.payload.bytes
        }
        XCTAssertEqual(failures, [0: .noEntry])
        XCTAssertEqual(got, [1: entries[1]])
    }

    // MARK: Never send

    /// Requests that must never reach a kernel are refused before anything
    /// is sent, alone or anywhere in a batch.
    func testNeverSendRules() throws {
        let kernel = FakeKernel { d in Reply.batch(d) }
        let socket = NetlinkSocket(transport: kernel.openSocket())
        let deleteByIDOnly = NetlinkRequest(subsystem: 1, message: 2, flags: NetlinkFlags.ack, family: 2,
                                            attributes: [.u32(K.CTA_ID, 1234)])
        let flushWithMark = NetlinkRequest(subsystem: 1, message: 2, flags: NetlinkFlags.ack, family: 0,
                                           attributes: [.u32(K.CTA_MARK, 1), .u32(K.CTA_MARK_MASK, 1)])
        let flushWithZone = NetlinkRequest(subsystem: 1, message: 2, flags: NetlinkFlags.ack, family: 0,
                                           attributes: [.u16(K.CTA_ZONE, 3)])
        let familyFlushV0 = NetlinkRequest(subsystem: 1, message: 2, flags: NetlinkFlags.ack, family: 2, version: 0)
        let familyFlushV0Inet6 = NetlinkRequest(subsystem: 1, message: 2, flags: NetlinkFlags.ack, family: 10)
        for request in [deleteByIDOnly, flushWithMark, flushWithZone, familyFlushV0, familyFlushV0Inet6] {
            XCTAssertNotNil(request.refusal)
            XCTAssertThrowsError(try socket.perform(request) { _ in }) { XCTAssertTrue($0 is RefusedRequest, "\($0)") }
            XCTAssertThrowsError(try socket.performBatch([delete(sport: 1), request, delete(sport: 2)])) {
                XCTAssertTrue($0 is RefusedRequest, "\($0)")
            }
        }
        XCTAssertEqual(kernel.datagrams.count, 0, "a refused request reached the transport")
        // What may go: a flush of everything (version 0), a family flush
        // with version 1, a delete with a tuple (and an id).
        var deleteWithID = delete(sport: 1)
        deleteWithID.attributes.append(.u32(K.CTA_ID, 1234))
        deleteWithID.flags = NetlinkFlags.ack
        let allowed = [
            NetlinkRequest(subsystem: 1, message: 2, flags: NetlinkFlags.ack, family: 0),
            NetlinkRequest(subsystem: 1, message: 2, flags: NetlinkFlags.ack, family: 2, version: 1),
            deleteWithID,
        ]
        for request in allowed {
            XCTAssertNil(request.refusal)
            try socket.perform(request) { _ in }
        }
        XCTAssertEqual(kernel.datagrams.count, 3)
        // The refused ones did not use up sequence numbers either.
        XCTAssertEqual(kernel.messages.map(\.sequence), [1000, 1001, 1002])
    }
}
