import XCTest
@testable import CTCore

/// Create and update requests: what goes to the kernel, decoded back with
/// the same decoder that reads the kernel's messages.
func encodedAttributes(_ attributes: [RequestAttribute]) throws -> [UInt8] {
    try NetlinkSocket.encode(attributes)
}

final class EncoderTests: XCTestCase {
    /// Serialises attributes the way the socket does (libmnl) and reads
    /// them back as a Flow, through an nfgenmsg-prefixed payload.
    func roundTrip(_ attributes: [RequestAttribute]) throws -> Flow {
        var payload: [UInt8] = [2, 0, 0, 0]   // nfgenmsg: AF_INET
        payload += try encodedAttributes(attributes)
        return try payload.withUnsafeBytes { try Decoder.flow(ByteView($0)) }
    }

    func testCreateRequestCarriesEveryField() throws {
        var entry = Flow()
        entry.family = Family.ipv4
        var orig = Tuple()
        orig.src = .v4(0x0a00_0001); orig.dst = .v4(0x0a00_0002)
        orig.proto = IPProto.tcp; orig.srcPort = 1234; orig.dstPort = 80; orig.zone = 7
        entry.orig = orig
        var reply = Tuple()
        reply.src = .v4(0x0a00_0002); reply.dst = .v4(0x0a00_0001)
        reply.proto = IPProto.tcp; reply.srcPort = 80; reply.dstPort = 1234
        entry.reply = reply
        entry.status = [.seenReply, .assured, .confirmed]
        entry.timeout = 300
        entry.mark = 0xdead_beef
        var tcp = TCPInfo()
        tcp.state = 3
        tcp.flagsOriginal = TCPFlags(flags: 0x0a, mask: 0x0a)
        entry.protoInfo = .tcp(tcp)
        entry.labels = Labels(words: (1 << 5, 1 << 63), byteCount: 16)
        let flow = try roundTrip(Encode.changeAttributes(EntryChange(entry: entry)))
        XCTAssertEqual(flow.orig, orig)
        XCTAssertEqual(flow.reply, reply)
        XCTAssertEqual(flow.status, entry.status)
        XCTAssertEqual(flow.timeout, 300)
        XCTAssertEqual(flow.mark, 0xdead_beef)
        XCTAssertEqual(flow.protoInfo, entry.protoInfo)
        XCTAssertEqual(flow.labels, entry.labels)
    }

    func testSCTPVtagsGoInHostOrderAsConntrackSendsThem() throws {
        var sctp = SCTPInfo()
        sctp.state = 4; sctp.vtagOriginal = 1234; sctp.vtagReply = 7
        let bytes = try encodedAttributes([Encode.protoInfo(.sctp(sctp))!])
        // CTA_PROTOINFO { CTA_PROTOINFO_SCTP { STATE, VTAG_ORIGINAL, VTAG_REPLY } }:
        // the original vtag's value starts 4 + 4 + 8 + 4 bytes in.
        XCTAssertEqual(Array(bytes[20..<24]), [0xd2, 0x04, 0, 0])
    }

    func testLabelBytesAreTheKernelBitmap() {
        XCTAssertEqual(Encode.labelBytes(Labels(words: (1 | 1 << 9, 0), byteCount: 4)), [1, 2, 0, 0])
        XCTAssertEqual(Encode.labelBytes(Labels(words: (0, 1 << 63), byteCount: 16)),
                       [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80])
    }

    func testNATRangeHasOneAddressAndPort() throws {
        let nat = try XCTUnwrap(Encode.natAttribute(CTA.natSrc, NATMatch(address: .v4(0x0505_0505), port: 99)))
        guard case .nested(CTA.natSrc, let members) = nat else { return XCTFail("not a nest") }
        XCTAssertEqual(members.count, 2)
        XCTAssertNil(Encode.natAttribute(CTA.natSrc, NATMatch(address: nil)))
    }

    /// Nests written in one piece (AttributeBytes) come out as libmnl
    /// writes the same attributes as a tree.
    func testAttributeBytesAreLaidOutAsLibmnlLaysOutTheTree() throws {
        var t = Tuple()
        t.src = .v6(0x2001_0db8_0000_0000, 1); t.dst = .v4(0x0a00_0002)
        t.proto = IPProto.icmpv6; t.icmpID = 9; t.icmpType = 128; t.icmpCode = 0
        func write<S: AttributeSink>(_ sink: inout S) {
            sink.nest(CTA.Tuple.ip) { Encode.writeAddresses(t, into: &$0) }
            Encode.writeProtocolFields(t, into: &sink)
            sink.put(.u8(1, 7))
            sink.put(.u16(2, 0x1234))
            sink.put(.u32(3, 0xdead_beef))
            sink.put(.u32Host(4, 0x0102_0304))
            sink.put(.u64(5, 0x0102_0304_0506_0708))
            sink.put(.bytes(6, [1, 2, 3]))
            sink.put(.string(7, "abcde"))
            sink.put(.nested(8, [.u8(1, 1), .nested(2, []), .bytes(3, [])]))
            sink.nest(9) { _ in }
            sink.address(.v6(1, 2), v4: 1, v6: 2)
            sink.address(.v4(0x0102_0304), v4: 1, v6: 2)
        }
        var list = AttributeList()
        write(&list)
        var bytes = AttributeBytes(capacity: 0)
        write(&bytes)
        XCTAssertEqual(try encodedAttributes([bytes.nest(CTA.tupleOrig)]),
                       try encodedAttributes([.nested(CTA.tupleOrig, list.items)]))
    }

    /// A tuple and TCP state as libmnl lays out the trees conntrack's
    /// requests are made of.
    func testTupleAndProtoInfoBytes() throws {
        var t = Tuple()
        t.src = .v4(0x0a00_0001); t.dst = .v4(0x0a00_0002)
        t.proto = IPProto.tcp; t.srcPort = 1234; t.dstPort = 80; t.zone = 7
        let tree: RequestAttribute = .nested(CTA.tupleOrig, [
            .nested(CTA.Tuple.ip, [.u32(CTA.IP.v4Src, 0x0a00_0001), .u32(CTA.IP.v4Dst, 0x0a00_0002)]),
            .nested(CTA.Tuple.proto, [.u8(CTA.Proto.num, IPProto.tcp), .u16(CTA.Proto.srcPort, 1234),
                                      .u16(CTA.Proto.dstPort, 80)]),
            .u16(CTA.Tuple.zone, 7),
        ])
        XCTAssertEqual(try encodedAttributes([Encode.tuple(CTA.tupleOrig, t)]), try encodedAttributes([tree]))
        var tcp = TCPInfo()
        tcp.state = 3
        tcp.flagsOriginal = TCPFlags(flags: 0x0a, mask: 0x0e)
        tcp.flagsReply = TCPFlags(flags: 0x0e, mask: 0x0a)
        let info: RequestAttribute = .nested(CTA.protoinfo, [.nested(CTA.ProtoInfo.tcp, [
            .u8(CTA.TCP.state, 3), .bytes(CTA.TCP.flagsOriginal, [0x0a, 0x0e]), .bytes(CTA.TCP.flagsReply, [0x0e, 0x0a]),
        ])])
        XCTAssertEqual(try encodedAttributes([Encode.protoInfo(.tcp(tcp))!]), try encodedAttributes([info]))
        XCTAssertNil(Encode.protoInfo(.dccp(DCCPInfo())))
    }
}
