import XCTest
@testable import CTCore

/// The public handle (`Conntrack`) and the create stream against a scripted
/// kernel: request bytes derived by hand from the kernel headers, replies
/// from recorded kernel messages, and what the caller gets back.
final class ConntrackFakeKernelTests: XCTestCase {
    /// Every feature this library knows (a 6.18 kernel).
    let everything = KernelCapabilities.forKernel(KernelVersion(6, 18))

    /// A kernel that answers dumps with `entries` and batches with
    /// `errors` (by index in the datagram) and no data.
    func kernel(entries: [[UInt8]] = [], errors: [Int: Int32] = [:], readAhead: Bool = false) -> FakeKernel {
        FakeKernel(readAhead: readAhead) { d in
            d.messages[0].isDump ? Reply.dump(d.messages[0], entries) : Reply.batch(d, errors: errors)
        }
    }

    func handle(_ kernel: FakeKernel, _ capabilities: KernelCapabilities? = nil) -> Conntrack {
        Conntrack(sockets: kernel.sockets, capabilities: capabilities ?? everything)
    }

    func key(sport: UInt16 = 1234, zone: UInt16? = nil, id: UInt32? = nil) throws -> FlowKey {
        try FlowKey(tuple: FakeFixtures.tcpTuple(sport: sport), zone: zone, id: id)
    }

    let tuple = FakeFixtures.tcpTupleBytes

    // MARK: Dumps

    func testForEachFlowDeliversTheKernelsEntries() throws {
        let entries = try FakeFixtures.entries()
        for readAhead in [false, true] {
            let k = kernel(entries: entries, readAhead: readAhead)
            var flows: [Flow] = []
            let summary = try handle(k).forEachFlow { flows.append($0); return .proceed }
            XCTAssertEqual(summary, DumpSummary())
            XCTAssertEqual(flows.count, entries.count)
            XCTAssertEqual(flows.first, try Fixtures.flow("tcp-0.bin"))
            XCTAssertEqual(k.datagrams.map(\.bytes), [Bytes.request(K.CT_GET, flags: K.NLM_F_DUMP, seq: 1000, family: 0)])
        }
    }

    func testStoppedDumpReadsTheRestAndReusesTheSocket() throws {
        let entries = try FakeFixtures.entries()
        let k = kernel(entries: entries)
        let conntrack = handle(k)
        var seen = 0
        let summary = try conntrack.forEachFlow { _ in seen += 1; return .stop }
        XCTAssertTrue(summary.stopped)
        XCTAssertEqual(seen, 1)
        XCTAssertEqual(try conntrack.allFlows().count, entries.count)
        XCTAssertEqual(k.opened, 1)
        XCTAssertEqual(k.messages.map(\.sequence), [1000, 1001])
    }

    /// A dump starts on the caller's thread; after `readAheadAfter`
    /// datagrams the rest is read on a second thread, and every entry still
    /// arrives once, in order. A dump that ends sooner never starts one.
    func testDumpIsReadAheadOnlyPastTheThreshold() throws {
        let entries = try FakeFixtures.entries()
        XCTAssertGreaterThan(entries.count, 4)
        for after in [0, 2, entries.count + 1] {
            let k = FakeKernel(readAheadAfter: after) { d in Reply.dump(d.messages[0], entries, perDatagram: 1) }
            var seen: [Flow] = []
            try handle(k).forEachFlow { seen.append($0); return .proceed }
            XCTAssertEqual(seen, try entries.map { try ByteView.with($0, Decoder.flow) }, "after \(after)")
            let threads = k.receivingThreads
            XCTAssertEqual(threads.count, entries.count)
            let me = pthread_self()
            let onCaller = threads.prefix { pthread_equal($0, me) != 0 }.count
            XCTAssertEqual(onCaller, min(after, entries.count), "after \(after)")
            XCTAssertTrue(threads.dropFirst(onCaller).allSatisfy { pthread_equal($0, me) == 0 }, "after \(after)")
        }
    }

    func testInterruptedDumpIsInTheSummary() throws {
        let entries = try FakeFixtures.entries()
        let k = FakeKernel { d in Reply.dump(d.messages[0], entries, flags: K.NLM_F_MULTI | K.NLM_F_DUMP_INTR) }
        var seen = 0
        let summary = try handle(k).forEachFlow { _ in seen += 1; return .proceed }
        XCTAssertTrue(summary.interrupted)
        XCTAssertEqual(seen, entries.count)
    }

    func testAsyncFlowsThrowDumpInterruptedAfterTheEntries() async throws {
        let entries = try FakeFixtures.entries()
        for readAhead in [false, true] {
            let k = FakeKernel(readAhead: readAhead) { d in
                // The last datagram only is flagged.
                var answers = Reply.dump(d.messages[0], Array(entries.dropLast()))
                answers.insert(.datagram(Reply.entry(entries.last!, to: d.messages[0],
                                                     flags: K.NLM_F_MULTI | K.NLM_F_DUMP_INTR)), at: answers.count - 1)
                return answers
            }
            let conntrack = handle(k)
            var seen = 0
            do {
                for try await _ in conntrack.flows(failOnInterrupt: true) { seen += 1 }
                XCTFail("no error")
            } catch {
                XCTAssertEqual(error, ConntrackError(.dump, .dumpInterrupted))
            }
            XCTAssertEqual(seen, entries.count)
            // Without failOnInterrupt the same answer ends normally.
            seen = 0
            for try await _ in conntrack.flows() { seen += 1 }
            XCTAssertEqual(seen, entries.count)
        }
    }

    func testMalformedEntryIsSkippedAndTheOthersDelivered() throws {
        var entries = try FakeFixtures.entries()
        // Cut inside CTA_TUPLE_ORIG's payload: the decoder cannot read it.
        entries.insert(Array(entries[0][0..<10]), at: 2)
        for readAhead in [false, true] {
            let k = kernel(entries: entries, readAhead: readAhead)
            var flows: [Flow] = []
            let summary = try handle(k).forEachFlow { flows.append($0); return .proceed }
            XCTAssertEqual(flows.count, entries.count - 1)
            XCTAssertEqual(summary.skipped.count, 1)
            XCTAssertFalse(summary.interrupted)
        }
    }

    func testReceiveErrorENOBUFSEndsTheDumpWithThatErrno() async throws {
        let entries = try FakeFixtures.entries()
        for readAhead in [false, true] {
            let k = FakeKernel(readAhead: readAhead) { d in
                [.datagram(Reply.entry(entries[0], to: d.messages[0])), .error(.noBufferSpace)]
            }
            let conntrack = handle(k)
            var seen = 0
            XCTAssertThrowsError(try conntrack.forEachFlow { _ in seen += 1; return .proceed }) { error in
                XCTAssertEqual(error as? ConntrackError, ConntrackError(.dump, .system(.noBufferSpace)))
                XCTAssertEqual((error as? ConntrackError)?.errno, .noBufferSpace)
            }
            XCTAssertEqual(seen, 1)
            do {
                for try await _ in conntrack.flows() {}
                XCTFail("no error")
            } catch {
                XCTAssertEqual(error.errno, .noBufferSpace)
            }
        }
    }

    /// An answer that fails the checks is an error of the operation, and
    /// the socket that got it is not used again.
    func testWrongSequenceOrPortFailsTheOperationAndDropsTheSocket() throws {
        let entries = try FakeFixtures.entries()
        for (wrong, errno) in [(true, Errno.protocolError), (false, Errno.noSuchProcess)] {
            let calls = CallCounter()
            let k = FakeKernel { d in
                let m = d.messages[0]
                if calls.increment() == 1 {
                    return [.datagram(wrong ? Reply.entry(entries[0], to: m, seq: m.sequence &+ 100)
                                            : Reply.entry(entries[0], to: m, port: m.socket &+ 1)),
                            .datagram(Reply.done(m))]
                }
                return Reply.dump(m, entries)
            }
            let conntrack = handle(k)
            XCTAssertThrowsError(try conntrack.allFlows()) {
                XCTAssertEqual($0 as? ConntrackError, ConntrackError(.dump, .system(errno)))
            }
            XCTAssertEqual(try conntrack.allFlows().count, entries.count)
            XCTAssertEqual(k.opened, 2)
            XCTAssertEqual(Set(k.datagrams.map(\.port)).count, 2)
        }
    }

    // MARK: Filtered dumps

    /// Each dump filter goes to the kernel exactly when the capabilities
    /// have it, with the attributes written out from nfnetlink_conntrack.h.
    func testZeroingDumpIsGetCtrZero() throws {
        let entries = try FakeFixtures.entries()
        let k = kernel(entries: entries)
        var seen = 0
        try handle(k).forEachFlow(zeroingCounters: true) { _ in seen += 1; return .proceed }
        XCTAssertEqual(seen, entries.count)
        // IPCTNL_MSG_CT_GET_CTRZERO (3)
        XCTAssertEqual(k.datagrams.map(\.bytes), [Bytes.request(0x103, flags: K.NLM_F_DUMP, seq: 1000, family: 0)])
    }

    func testFilteredDumpRequestBytesFollowTheCapabilities() throws {
        var filter = FlowFilter()
        filter.family = .ipv4
        filter.mark = 0x2a
        filter.markMask = 0xff
        filter.status = [.assured]
        filter.statusMask = [.assured, .seenReply]
        filter.zone = 7
        filter.origSrc = AddressMatch(.v4(FakeFixtures.a1))
        filter.ipProtocol = .tcp
        filter.origDstPort = 80

        let mark = Bytes.attr(K.CTA_MARK, Bytes.be32(0x2a)) + Bytes.attr(K.CTA_MARK_MASK, Bytes.be32(0xff))
        let status = Bytes.attr(K.CTA_STATUS, Bytes.be32(4)) + Bytes.attr(K.CTA_STATUS_MASK, Bytes.be32(6))
        let zone = Bytes.attr(K.CTA_ZONE, Bytes.be16(7))
        // CTA_TUPLE_ORIG { CTA_TUPLE_IP { V4_SRC }, CTA_TUPLE_PROTO { NUM, DST_PORT } }
        // and CTA_FILTER { ORIG_FLAGS, REPLY_FLAGS } (host order). The flag
        // bits are the kernel's CTA_FILTER_F_* (nf_conntrack_netlink.c):
        // IP_SRC 1 << 0, PROTO_NUM 1 << 3, PROTO_DST_PORT 1 << 5.
        let tupleFilter = Bytes.nest(K.CTA_TUPLE_ORIG,
                                     Bytes.nest(K.CTA_TUPLE_IP, Bytes.attr(K.CTA_IP_V4_SRC, Bytes.be32(FakeFixtures.a1))),
                                     Bytes.nest(K.CTA_TUPLE_PROTO, Bytes.attr(K.CTA_PROTO_NUM, [6]),
                                                Bytes.attr(K.CTA_PROTO_DST_PORT, Bytes.be16(80))))
            + Bytes.nest(K.CTA_FILTER, Bytes.attr(K.CTA_FILTER_ORIG_FLAGS, Bytes.le32(0x29)),
                         Bytes.attr(K.CTA_FILTER_REPLY_FLAGS, Bytes.le32(0)))

        let cases: [(String, KernelCapabilities, UInt8, [UInt8])] = [
            ("all", everything, 2, mark + status + zone + tupleFilter),
            ("no mark", everything.removing([.markDumpFilter]), 2, status + zone + tupleFilter),
            ("no status", everything.removing([.statusDumpFilter]), 2, mark + zone + tupleFilter),
            ("no zone", everything.removing([.zoneDumpFilter]), 2, mark + status + tupleFilter),
            ("no tuple", everything.removing([.tupleDumpFilter]), 2, mark + status + zone),
            ("6.7", .forKernel(KernelVersion(6, 7)), 2, mark + status + tupleFilter),
            ("5.15", .forKernel(KernelVersion(5, 15)), 2, mark + status),
            ("4.0", .forKernel(KernelVersion(4, 0)), 2, mark),
            ("none", everything.removing(KernelFeature.allCases), 0, []),
        ]
        // One kernel and handle for all: a reused socket must send the same
        // bytes as a fresh one.
        let k = kernel()
        let conntrack = handle(k)
        for (i, (name, capabilities, family, attributes)) in cases.enumerated() {
            let c = Conntrack(sockets: conntrack.sockets, capabilities: capabilities)
            XCTAssertEqual(try c.allFlows(matching: filter), [], name)
            XCTAssertEqual(k.datagrams.last?.bytes,
                           Bytes.request(K.CT_GET, flags: K.NLM_F_DUMP, seq: 1000, family: family, attributes), name)
            XCTAssertEqual(k.datagrams.count, i + 1, name)
        }
        // Through one handle, sequence numbers go on.
        _ = try conntrack.allFlows(matching: filter)
        _ = try conntrack.allFlows(matching: filter)
        XCTAssertEqual(k.datagrams.suffix(2).map { $0.messages[0].sequence }, [1000, 1001])
        XCTAssertEqual(k.datagrams.suffix(2).map { Array($0.bytes[16...]) },
                       [[2, 0, 0, 0] + mark + status + zone + tupleFilter, [2, 0, 0, 0] + mark + status + zone + tupleFilter])
        // A short request after a long one on the same socket: its
        // attribute padding is zeros, not the earlier request's bytes.
        var zoneOnly = FlowFilter()
        zoneOnly.family = .ipv4
        zoneOnly.zone = 7
        _ = try conntrack.allFlows(matching: zoneOnly)
        XCTAssertEqual(k.datagrams.last?.bytes, Bytes.request(K.CT_GET, flags: K.NLM_F_DUMP, seq: 1002, family: 2, zone))
        XCTAssertEqual(Set(k.datagrams.suffix(3).map(\.port)).count, 1)
    }

    /// The zone goes to the kernel only when it is not 0 (the kernel
    /// ignores zone 0 on a dump); the tuple filter only for IPv4.
    func testZoneZeroAndIPv6AreNotHandedToTheKernel() throws {
        let k = kernel()
        let conntrack = handle(k)
        var filter = FlowFilter()
        filter.family = .ipv4
        filter.zone = 0
        _ = try conntrack.allFlows(matching: filter)
        XCTAssertEqual(k.datagrams.last?.bytes, Bytes.request(K.CT_GET, flags: K.NLM_F_DUMP, seq: 1000, family: 2))

        filter = FlowFilter()
        filter.family = .ipv6
        filter.ipProtocol = .tcp
        filter.origDstPort = 443
        _ = try conntrack.allFlows(matching: filter)
        XCTAssertEqual(k.datagrams.last?.bytes, Bytes.request(K.CT_GET, flags: K.NLM_F_DUMP, seq: 1001, family: 10))
        XCTAssertEqual(filter.kernelFilteredClauses(on: everything), [.family])
    }

    /// Without a family, a filter the tuple filter can apply dumps IPv4
    /// with it and IPv6 without.
    func testTupleFilterWithoutFamilyDumpsEachFamily() throws {
        let entries = try FakeFixtures.entries()
        let k = kernel(entries: entries)
        var filter = FlowFilter()
        filter.ipProtocol = .udp
        let flows = try handle(k).allFlows(matching: filter)
        // Both answers hold every entry; each dump selects its family's UDP ones.
        let udp = try entries.map { try ByteView.with($0, Decoder.flow) }.filter { $0.orig?.proto == 17 }
        XCTAssertEqual(flows, udp)
        let proto = Bytes.nest(K.CTA_TUPLE_ORIG, Bytes.nest(K.CTA_TUPLE_PROTO, Bytes.attr(K.CTA_PROTO_NUM, [17])))
            + Bytes.nest(K.CTA_FILTER, Bytes.attr(K.CTA_FILTER_ORIG_FLAGS, Bytes.le32(0x8)),
                         Bytes.attr(K.CTA_FILTER_REPLY_FLAGS, Bytes.le32(0)))
        XCTAssertEqual(k.datagrams.map(\.bytes), [
            Bytes.request(K.CT_GET, flags: K.NLM_F_DUMP, seq: 1000, family: 2, proto),
            Bytes.request(K.CT_GET, flags: K.NLM_F_DUMP, seq: 1001, family: 10),
        ])
    }

    // MARK: Writes by key

    func testGetRequestBytesAndAnswer() throws {
        let entry = try Fixtures.bytes("tcp-0.bin")
        let k = FakeKernel { d in Reply.batch(d, data: [0: entry]) }
        let conntrack = handle(k)
        XCTAssertEqual(try conntrack.get(try key()), try Fixtures.flow("tcp-0.bin"))
        XCTAssertEqual(try conntrack.get(try key(zone: 3)), try Fixtures.flow("tcp-0.bin"))
        XCTAssertEqual(k.datagrams.map(\.bytes), [
            Bytes.request(K.CT_GET, flags: K.NLM_F_ACK, seq: 1000, family: 2, tuple(1234, 80)),
            Bytes.request(K.CT_GET, flags: K.NLM_F_ACK, seq: 1001, family: 2, tuple(1234, 80),
                          Bytes.attr(K.CTA_ZONE, Bytes.be16(3))),
        ])
        // A literal copy of the first, against the byte builder itself.
        XCTAssertEqual(k.datagrams[0].bytes, [
            0x48, 0, 0, 0, 0x01, 0x01, 0x05, 0x00, 0xe8, 0x03, 0, 0, 0, 0, 0, 0,      // nlmsghdr
            0x02, 0x00, 0x00, 0x00,                                                 // nfgenmsg AF_INET
            0x34, 0x00, 0x01, 0x80,                                                 // CTA_TUPLE_ORIG
            0x14, 0x00, 0x01, 0x80,                                                 //  CTA_TUPLE_IP
            0x08, 0x00, 0x01, 0x00, 10, 0, 0, 1,                                    //   CTA_IP_V4_SRC
            0x08, 0x00, 0x02, 0x00, 10, 0, 0, 2,                                    //   CTA_IP_V4_DST
            0x1c, 0x00, 0x02, 0x80,                                                 //  CTA_TUPLE_PROTO
            0x05, 0x00, 0x01, 0x00, 6, 0, 0, 0,                                     //   CTA_PROTO_NUM
            0x06, 0x00, 0x02, 0x00, 0x04, 0xd2, 0, 0,                               //   CTA_PROTO_SRC_PORT
            0x06, 0x00, 0x03, 0x00, 0x00, 0x50, 0, 0,                               //   CTA_PROTO_DST_PORT
        ])
        // ENOENT is no entry, not an error.
        let empty = FakeKernel { d in Reply.batch(d, errors: [0: ENOENT]) }
        XCTAssertNil(try handle(empty).get(try key()))
        let denied = FakeKernel { d in Reply.batch(d, errors: [0: EPERM]) }
        XCTAssertThrowsError(try handle(denied).get(try key())) {
            XCTAssertEqual($0 as? ConntrackError, ConntrackError(.get, .system(.notPermitted)))
        }
    }

    func testCreateRequestBytes() throws {
        let k = kernel()
        var flow = Flow()
        flow.family = .ipv4
        flow.orig = FakeFixtures.tcpTuple()
        flow.timeout = 120
        flow.mark = 5
        flow.zone = 9
        try handle(k).create(flow)
        XCTAssertEqual(k.datagrams.map(\.bytes), [
            Bytes.request(K.CT_NEW, flags: K.NLM_F_CREATE | K.NLM_F_EXCL | K.NLM_F_ACK, seq: 1000, family: 2,
                          tuple(1234, 80), FakeFixtures.tcpReplyBytes(sport: 1234, dport: 80),
                          Bytes.attr(K.CTA_ZONE, Bytes.be16(9)),
                          Bytes.attr(K.CTA_TIMEOUT, Bytes.be32(120)), Bytes.attr(K.CTA_MARK, Bytes.be32(5))),
        ])
        let exists = kernel(errors: [0: EEXIST])
        XCTAssertThrowsError(try handle(exists).create(flow)) {
            XCTAssertEqual($0 as? ConntrackError, ConntrackError(.create, .system(.exists)))
        }
    }

    func testUpdateRequestBytesAndTheEntryReadBack() throws {
        let entry = try Fixtures.bytes("tcp-0.bin")
        let k = FakeKernel { d in Reply.batch(d, data: [1: entry]) }
        var update = FlowUpdate()
        update.timeout = 30
        update.mark = 0x10
        update.markMask = 0xf0
        let after = try handle(k).update(try key(zone: 4, id: 77), update)
        XCTAssertEqual(after, try Fixtures.flow("tcp-0.bin"))
        let zone = Bytes.attr(K.CTA_ZONE, Bytes.be16(4))
        // The update (no CTA_ID: the key's id names the entry, it is no
        // value to set) and a get of the same entry, acknowledged, in one datagram.
        XCTAssertEqual(k.datagrams.map(\.bytes), [
            Bytes.request(K.CT_NEW, flags: 0, seq: 1000, family: 2, tuple(1234, 80), zone,
                          Bytes.attr(K.CTA_TIMEOUT, Bytes.be32(30)), Bytes.attr(K.CTA_MARK, Bytes.be32(0x10)),
                          Bytes.attr(K.CTA_MARK_MASK, Bytes.be32(0xf0)))
            + Bytes.request(K.CT_GET, flags: K.NLM_F_ACK, seq: 1001, family: 2, tuple(1234, 80), zone),
        ])
        let gone = FakeKernel { d in Reply.batch(d, errors: [0: ENOENT, 1: ENOENT]) }
        XCTAssertNil(try handle(gone).update(try key(), update))
    }

    func testDeleteListRequestBytesAndResults() throws {
        let k = kernel(errors: [1: ENOENT, 2: EPERM])
        let keys = [try key(sport: 1), try key(sport: 2, zone: 5), try key(sport: 3, id: 0xdead_beef)]
        XCTAssertEqual(try handle(k).delete(keys), [.done, .notFound, .failed(.notPermitted)])
        XCTAssertEqual(k.datagrams.map(\.bytes), [
            Bytes.request(K.CT_DELETE, flags: 0, seq: 1000, family: 2, tuple(1, 80))
            + Bytes.request(K.CT_DELETE, flags: 0, seq: 1001, family: 2, tuple(2, 80), Bytes.attr(K.CTA_ZONE, Bytes.be16(5)))
            + Bytes.request(K.CT_DELETE, flags: K.NLM_F_ACK, seq: 1002, family: 2, tuple(3, 80),
                            Bytes.attr(K.CTA_ID, Bytes.be32(0xdead_beef))),
        ])
        // An overrun of the socket is an error of the whole call.
        let overrun = FakeKernel { d in [.datagram(Reply.overrun(d.messages[0]))] }
        XCTAssertThrowsError(try handle(overrun).delete(keys)) {
            XCTAssertEqual($0 as? ConntrackError, ConntrackError(.delete, .system(.noBufferSpace)))
        }
        // One key: the same, alone.
        let one = kernel(errors: [0: ENOENT])
        XCTAssertEqual(try handle(one).delete(try key()), .notFound)
        XCTAssertEqual(one.datagrams.map(\.bytes), [Bytes.request(K.CT_DELETE, flags: K.NLM_F_ACK, seq: 1000, family: 2, tuple(1234, 80))])
    }

    /// A batch of more than 512 writes goes out in several datagrams, the
    /// results still in order.
    func testLongDeleteListIsSplitIntoBatches() throws {
        let k = kernel(errors: [0: ENOENT])
        let keys = try (0..<1030).map { try key(sport: UInt16($0 + 1)) }
        let results = try handle(k).delete(keys)
        XCTAssertEqual(results.count, 1030)
        XCTAssertEqual(k.datagrams.map(\.messages.count), [512, 512, 6])
        XCTAssertEqual(results.enumerated().filter { $0.element == .notFound }.map(\.offset), [0, 512, 1024])
        XCTAssertEqual(k.messages.map(\.sequence), (0..<1030).map { 1000 + UInt32($0) })
        XCTAssertEqual(k.messages.filter(\.wantsAck).map(\.sequence), [1511, 2023, 2029])
    }

    /// A batch in which every request fails gets an error reply for each:
    /// more than the default receive buffer holds (measured on this
    /// kernel: from about 280 in one batch). The socket must hold them all.
    func testDeleteListWhoseKeysAreAllGone() throws {
        let k = FakeKernel { d in Reply.batch(d, errors: Dictionary(uniqueKeysWithValues: d.messages.indices.map { ($0, ENOENT) })) }
        let keys = try (0..<1100).map { try key(sport: UInt16($0 + 1)) }
        let conntrack = handle(k)
        XCTAssertEqual(try conntrack.delete(keys), Array(repeating: .notFound, count: keys.count))
        let creates = (1...600).map { FlowWrite.create(createFlow(sport: UInt16($0))) }
        let exists = FakeKernel { d in Reply.batch(d, errors: Dictionary(uniqueKeysWithValues: d.messages.indices.map { ($0, EEXIST) })) }
        XCTAssertEqual(try handle(exists).apply(creates, rollback: true), Array(repeating: .failed(.exists), count: 600))
    }

    func testDeleteAllMatchingDeletesWhatTheDumpFoundByTupleZoneAndID() throws {
        let entries = try FakeFixtures.entries()
        let flows = try entries.map { try ByteView.with($0, Decoder.flow) }
        // Batches: the first IPv4 TCP entry vanished meanwhile.
        let k = FakeKernel { d in
            d.messages[0].isDump ? Reply.dump(d.messages[0], entries) : Reply.batch(d, errors: [0: ENOENT])
        }
        var filter = FlowFilter()
        filter.family = .ipv4
        var deleted: [Flow] = []
        let summary = try handle(k, everything.removing([.tupleDumpFilter])).deleteAll(matching: filter) { deleted.append($0); return .proceed }
        let ipv4 = flows.filter { $0.family == .ipv4 }
        XCTAssertEqual(summary.deleted, ipv4.count - 1)
        XCTAssertEqual(deleted, Array(ipv4.dropFirst()))
        // A dump on one socket, the deletes on another.
        XCTAssertEqual(k.datagrams.count, 2)
        XCTAssertNotEqual(k.datagrams[0].port, k.datagrams[1].port)
        XCTAssertEqual(k.datagrams[0].bytes, Bytes.request(K.CT_GET, flags: K.NLM_F_DUMP, seq: 1000, family: 2))
        // Each delete names its entry by tuple, zone and id.
        let tcp = flows[0]
        XCTAssertEqual(k.datagrams[1].messages[0].bytes,
                       Bytes.request(K.CT_DELETE, flags: 0, seq: 1000, family: 2, tuple(1234, 80),
                                     Bytes.attr(K.CTA_ID, Bytes.be32(tcp.id!))))
        XCTAssertEqual(k.datagrams[1].messages.count, ipv4.count)
        XCTAssertEqual(k.datagrams[1].messages.map(\.type), Array(repeating: K.CT_DELETE, count: ipv4.count))
    }

    /// A delete the kernel refuses (other than ENOENT) ends a delete by
    /// filter with that error.
    func testDeleteAllReportsAnInterruptedDump() throws {
        let entries = try FakeFixtures.entries()
        for flags in [K.NLM_F_MULTI | K.NLM_F_DUMP_INTR, K.NLM_F_MULTI] {
            let k = FakeKernel { d in
                d.messages[0].isDump ? Reply.dump(d.messages[0], entries, flags: flags) : Reply.batch(d)
            }
            let summary = try handle(k).deleteAll(matching: FlowFilter())
            XCTAssertEqual(summary.deleted, entries.count)
            XCTAssertEqual(summary.interrupted, flags & K.NLM_F_DUMP_INTR != 0)
        }
    }

    func testDeleteAllMatchingStopsAtARefusedDelete() throws {
        let entries = try FakeFixtures.entries()
        let k = FakeKernel { d in
            d.messages[0].isDump ? Reply.dump(d.messages[0], entries) : Reply.batch(d, errors: [1: EPERM])
        }
        var deleted = 0
        XCTAssertThrowsError(try handle(k).deleteAll(matching: FlowFilter()) { _ in deleted += 1; return .proceed }) {
            XCTAssertEqual($0 as? ConntrackError, ConntrackError(.delete, .system(.notPermitted)))
        }
        XCTAssertEqual(deleted, 1)
    }

    func testDeleteAllMatchingAnyIsOneDump() throws {
        let entries = try FakeFixtures.entries()
        let k = kernel(entries: entries)
        var udp = FlowFilter(), icmp = FlowFilter()
        udp.ipProtocol = .udp
        icmp.ipProtocol = .icmp
        var protocols: [UInt8] = []
        let summary = try handle(k).deleteAll(matchingAny: [udp, icmp]) { protocols.append($0.orig!.proto!); return .proceed }
        XCTAssertEqual(summary.deleted, protocols.count)
        XCTAssertTrue(protocols.allSatisfy { $0 == 17 || $0 == 1 })
        XCTAssertTrue(protocols.contains(17) && protocols.contains(1))
        XCTAssertEqual(k.messages.filter(\.isDump).count, 1)
        XCTAssertEqual(k.messages.filter(\.isDump)[0].bytes, Bytes.request(K.CT_GET, flags: K.NLM_F_DUMP, seq: 1000, family: 0))
    }

    // MARK: apply and rollback

    func createFlow(sport: UInt16, id: UInt32? = nil) -> Flow {
        var flow = Flow()
        flow.family = .ipv4
        flow.orig = FakeFixtures.tcpTuple(sport: sport)
        flow.timeout = 60
        flow.id = id
        return flow
    }

    /// A create as `apply` sends it, with the reply tuple it derives; the
    /// engine's CreateStream sends the change as it is given (`reply: false`).
    func createBytes(sport: UInt16, seq: UInt32, last: Bool, reply: Bool = true) -> [UInt8] {
        let tuples = tuple(sport, 80) + (reply ? FakeFixtures.tcpReplyBytes(sport: sport, dport: 80) : [])
        return Bytes.request(K.CT_NEW, flags: K.NLM_F_CREATE | K.NLM_F_EXCL | (last ? K.NLM_F_ACK : 0), seq: seq,
                             family: 2, tuples, Bytes.attr(K.CTA_TIMEOUT, Bytes.be32(60)))
    }

    func deleteBytes(sport: UInt16, seq: UInt32, last: Bool) -> [UInt8] {
        Bytes.request(K.CT_DELETE, flags: last ? K.NLM_F_ACK : 0, seq: seq, family: 2, tuple(sport, 80))
    }

    func testApplyWithRollbackDeletesTheCreatesOfAFailedBatch() throws {
        // The third create fails; the delete of a key succeeds.
        let k = FakeKernel { d in Reply.batch(d, errors: d.messages[0].type == K.CT_NEW ? [2: EEXIST] : [:]) }
        // Flows copied from a dump carry the old entry's id: the created
        // entry has another, so the undo must not name it.
        let writes: [FlowWrite] = [.create(createFlow(sport: 1, id: 41)), .create(createFlow(sport: 2)),
                                   .create(createFlow(sport: 3)), .delete(try key(sport: 9))]
        let results = try handle(k).apply(writes, rollback: true)
        XCTAssertEqual(results, [.done, .done, .failed(.exists), .done])
        XCTAssertEqual(k.datagrams.map(\.bytes), [
            createBytes(sport: 1, seq: 1000, last: false) + createBytes(sport: 2, seq: 1001, last: false)
            + createBytes(sport: 3, seq: 1002, last: false) + deleteBytes(sport: 9, seq: 1003, last: true),
            deleteBytes(sport: 1, seq: 1004, last: false) + deleteBytes(sport: 2, seq: 1005, last: true),
        ])
        // Without rollback, or without a failure, nothing is taken back.
        let k2 = FakeKernel { d in Reply.batch(d, errors: [2: EEXIST]) }
        _ = try handle(k2).apply(Array(writes.prefix(3)))
        XCTAssertEqual(k2.datagrams.count, 1)
        let k3 = kernel()
        XCTAssertEqual(try handle(k3).apply(Array(writes.prefix(2)), rollback: true), [.done, .done])
        XCTAssertEqual(k3.datagrams.count, 1)
        // The error names the operation: creates only, deletes only, or a mix.
        let overrun = FakeKernel { d in [.datagram(Reply.overrun(d.messages[0]))] }
        for (batch, operation) in [(Array(writes.prefix(3)), ConntrackError.Operation.create),
                                   (Array(writes.suffix(1)), .delete), (writes, .update)] {
            XCTAssertThrowsError(try handle(overrun).apply(batch)) {
                XCTAssertEqual($0 as? ConntrackError, ConntrackError(operation, .system(.noBufferSpace)))
            }
        }
    }

    /// A delete of an entry gone already is no failure: it does not roll
    /// the batch back. An update of a missing entry is one.
    func testApplyRollsBackOnAMissingUpdateButNotOnAMissingDelete() throws {
        let writes: [FlowWrite] = [.create(createFlow(sport: 1)), .delete(try key(sport: 9))]
        let k = FakeKernel { d in Reply.batch(d, errors: [1: ENOENT]) }
        XCTAssertEqual(try handle(k).apply(writes, rollback: true), [.done, .notFound])
        XCTAssertEqual(k.datagrams.count, 1)
        let updates: [FlowWrite] = [.create(createFlow(sport: 1)), .update(try key(sport: 9), FlowUpdate())]
        let k2 = FakeKernel { d in Reply.batch(d, errors: [1: ENOENT]) }
        XCTAssertEqual(try handle(k2).apply(updates, rollback: true), [.done, .notFound])
        XCTAssertEqual(k2.datagrams.count, 2)
        XCTAssertEqual(k2.datagrams.last?.bytes, deleteBytes(sport: 1, seq: 1002, last: true))
    }

    func testApplyRefusesACreateWithoutATupleAndSendsNothing() throws {
        let k = kernel()
        XCTAssertThrowsError(try handle(k).apply([.create(createFlow(sport: 1)), .create(Flow())])) {
            guard case .invalidArgument = ($0 as? ConntrackError)?.reason else { return XCTFail("\($0)") }
        }
        XCTAssertEqual(k.datagrams.count, 0)
    }

    /// A create stream whose third create fails: the creates sent after it
    /// in its batch are deleted at once, later batches are not sent, and
    /// `rollBack` deletes the two made before it, newest first.
    func testCreateStreamRollback() throws {
        let k = FakeKernel { d in Reply.batch(d, errors: d.messages[0].type == K.CT_NEW ? [2: EEXIST] : [:]) }
        let stream = try CreateStream(sockets: k.sockets)
        for sport in UInt16(1)...5 {
            try stream.add(EntryChange(entry: createFlow(sport: sport)), tolerateExisting: false)
        }
        let failure = try XCTUnwrap(try stream.finish())
        XCTAssertEqual(failure.index, 2)
        XCTAssertEqual(failure.error, .exists)
        try stream.rollBack()
        XCTAssertEqual(k.datagrams.map(\.bytes), [
            (1...5).flatMap { createBytes(sport: UInt16($0), seq: 999 + UInt32($0), last: $0 == 5, reply: false) },
            deleteBytes(sport: 4, seq: 1005, last: false) + deleteBytes(sport: 5, seq: 1006, last: true),
            deleteBytes(sport: 2, seq: 1007, last: false) + deleteBytes(sport: 1, seq: 1008, last: true),
        ])
        XCTAssertEqual(k.opened, 1)
    }

    /// When deleting the creates sent after the failure fails too, the
    /// creates made before it are still rolled back.
    func testCreateStreamRollsBackEvenWhenTheImmediateDeletesFail() throws {
        let calls = CallCounter()
        let k = FakeKernel { d in
            switch calls.increment() {
            case 1: return Reply.batch(d, errors: [2: EEXIST])     // the creates
            case 2: return [.error(.noBufferSpace)]                // deleting 4 and 5
            default: return Reply.batch(d)                         // the rollback
            }
        }
        let stream = try CreateStream(sockets: k.sockets)
        for sport in UInt16(1)...5 {
            try stream.add(EntryChange(entry: createFlow(sport: sport)), tolerateExisting: false)
        }
        XCTAssertThrowsError(try stream.finish()) { XCTAssertEqual($0 as? Errno, .noBufferSpace) }
        try stream.rollBack()
        XCTAssertEqual(k.datagrams.count, 3)
        XCTAssertEqual(k.datagrams.last?.bytes,
                       deleteBytes(sport: 2, seq: 1007, last: false) + deleteBytes(sport: 1, seq: 1008, last: true))
    }

    /// An entry that existed (EEXIST tolerated, -A) is not the stream's:
    /// neither a failure nor rolled back. A batch after the failed one is
    /// never sent.
    func testCreateStreamLeavesExistingEntriesAndStopsAtTheFirstFailure() throws {
        let k = FakeKernel { d in
            Reply.batch(d, errors: d.messages[0].type == K.CT_NEW ? [0: EEXIST, 3: ENOMEM] : [:])
        }
        let stream = try CreateStream(sockets: k.sockets)
        let count = 600   // more than one batch
        for sport in 1...count {
            try stream.add(EntryChange(entry: createFlow(sport: UInt16(sport))), tolerateExisting: true)
        }
        let failure = try XCTUnwrap(try stream.finish())
        XCTAssertEqual(failure.index, 3)
        XCTAssertEqual(failure.error, Errno(ENOMEM))
        let creates = k.datagrams.filter { $0.messages[0].type == K.CT_NEW }
        XCTAssertEqual(creates.count, 1, "a batch went out after the failure")
        let perBatch = creates[0].messages.count
        XCTAssertLessThan(perBatch, count)
        // The creates after the failure in its batch were deleted at once.
        let undo = k.datagrams.filter { $0.messages[0].type == K.CT_DELETE }
        XCTAssertEqual(undo.count, 1)
        XCTAssertEqual(undo[0].messages.map(\.bytes), (5...perBatch).map { deleteBytes(sport: UInt16($0), seq: UInt32(999 + perBatch + $0 - 4), last: $0 == perBatch) })
        try stream.rollBack()
        // Only entry 2 (index 1) and 3 (index 2) were made before the failure.
        XCTAssertEqual(k.datagrams.last?.bytes,
                       deleteBytes(sport: 3, seq: UInt32(1000 + perBatch + perBatch - 4), last: false)
                       + deleteBytes(sport: 2, seq: UInt32(1001 + perBatch + perBatch - 4), last: true))
    }

    // MARK: Flush

    func testFlushRequestBytes() throws {
        let k = kernel()
        let conntrack = handle(k)
        try conntrack.flush()
        try conntrack.flush(family: .ipv4)
        try conntrack.flush(family: .ipv6)
        XCTAssertEqual(k.datagrams.map(\.bytes), [
            Bytes.request(K.CT_DELETE, flags: K.NLM_F_ACK, seq: 1000, family: 0, version: 0),
            Bytes.request(K.CT_DELETE, flags: K.NLM_F_ACK, seq: 1001, family: 2, version: 1),
            Bytes.request(K.CT_DELETE, flags: K.NLM_F_ACK, seq: 1002, family: 10, version: 1),
        ])
    }

    func testFamilyFlushWithoutTheFeatureIsUnsupportedAndSendsNothing() throws {
        let k = kernel()
        let old = handle(k, .forKernel(KernelVersion(4, 19)))
        XCTAssertThrowsError(try old.flush(family: .ipv4)) {
            XCTAssertEqual($0 as? ConntrackError,
                           ConntrackError(.flush, .unsupported(.familyFlush, kernel: KernelVersion(4, 19))))
        }
        XCTAssertEqual(k.datagrams.count, 0)
        XCTAssertEqual(k.opened, 0)
        // Family 0 would be a flush of every family: refused everywhere.
        XCTAssertThrowsError(try handle(k).flush(family: .other(0))) {
            guard case .invalidArgument = ($0 as? ConntrackError)?.reason else { return XCTFail("\($0)") }
        }
        XCTAssertEqual(k.opened, 0)
        // A flush of everything is still fine there.
        try old.flush()
        XCTAssertEqual(k.datagrams.map(\.bytes), [Bytes.request(K.CT_DELETE, flags: K.NLM_F_ACK, seq: 1000, family: 0)])
    }

    func testFlowKeyCannotBeWithoutATuple() {
        XCTAssertThrowsError(try FlowKey(tuple: Tuple()))
        var half = Tuple()
        half.src = .v4(1)
        half.ipProtocol = .tcp
        XCTAssertThrowsError(try FlowKey(tuple: half))
        XCTAssertThrowsError(try FlowKey(tuple: Tuple(source: .v4(1), destination: .v6(0, 1), protocol: .udp)))
    }
}

/// Counts calls of a script across threads (the scripts are @Sendable).
final class CallCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func increment() -> Int { lock.withLock { n += 1; return n } }
}
