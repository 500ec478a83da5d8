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
        entry.family = Family.ipv4.rawValue
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
}
