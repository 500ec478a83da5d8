import XCTest
@testable import CTCore

/// conntrack's selection rules on synthetic entries, and what may be handed
/// to the kernel as a dump filter.
final class SelectorTests: XCTestCase {
    func tcp(_ src: UInt32, _ dst: UInt32, _ sport: UInt16, _ dport: UInt16) -> Flow {
        var flow = Flow()
        flow.family = Family.ipv4
        var o = Tuple(); o.src = .v4(src); o.dst = .v4(dst); o.proto = IPProto.tcp; o.srcPort = sport; o.dstPort = dport
        var r = Tuple(); r.src = .v4(dst); r.dst = .v4(src); r.proto = IPProto.tcp; r.srcPort = dport; r.dstPort = sport
        flow.orig = o; flow.reply = r
        flow.status = [.confirmed, .seenReply, .assured]
        flow.mark = 0
        return flow
    }

    func testAddressesWithPrefixAndMask() {
        let flow = tcp(0x0a00_0105, 0x0a00_0201, 1000, 80)
        var sel = Selector()
        sel.origSrc = AddressMatch(address: .v4(0x0a00_0000), mask: AddressMatch.mask(for: .v4(0), prefix: 16))
        XCTAssertTrue(sel.matches(flow))
        sel.origSrc = AddressMatch(address: .v4(0x0a00_0000), mask: AddressMatch.mask(for: .v4(0), prefix: 24))
        XCTAssertFalse(sel.matches(flow))
        // Non-contiguous masks work bit by bit.
        sel.origSrc = AddressMatch(address: .v4(0x0aff_01ff), mask: .v4(0xff00_ff00))
        XCTAssertTrue(sel.matches(flow))
        // The other family never matches.
        sel.origSrc = AddressMatch(address: .v6(0, 1), mask: AddressMatch.mask(for: .v6(0, 0), prefix: 0))
        XCTAssertFalse(sel.matches(flow))
        XCTAssertEqual(AddressMatch.mask(for: .v6(0, 0), prefix: 64), .v6(.max, 0))
        XCTAssertEqual(AddressMatch.mask(for: .v6(0, 0), prefix: 65), .v6(.max, 1 << 63))
        XCTAssertEqual(AddressMatch.mask(for: .v4(0), prefix: 0), .v4(0))
    }

    func testPortsMarkStatusZone() {
        var flow = tcp(1, 2, 1000, 80)
        flow.mark = 0x2a
        flow.zone = 7
        var sel = Selector()
        sel.proto = IPProto.tcp
        sel.origDstPort = 80
        sel.replySrcPort = 80
        XCTAssertTrue(sel.matches(flow))
        sel.replyDstPort = 1001
        XCTAssertFalse(sel.matches(flow))

        sel = Selector()
        sel.mark = 0x2a
        XCTAssertTrue(sel.matches(flow))
        // The value is not masked: (mark & mask) == value.
        sel.mark = 0x2a; sel.markMask = 0x0f
        XCTAssertFalse(sel.matches(flow))
        sel.mark = 0x0a
        XCTAssertTrue(sel.matches(flow))

        sel = Selector()
        sel.mark = Status.assured.rawValue
        XCTAssertFalse(sel.matches(flow))
        flow.mark = Status.assured.rawValue
        XCTAssertTrue(sel.matches(flow))
        flow.mark = 0x2a

        sel = Selector()
        sel.status = [.assured, .seenReply]; sel.statusMask = [.assured, .seenReply]
        XCTAssertTrue(sel.matches(flow))
        // -u ASSURED -u SEEN_REPLY for -L: mask of the first, value of all.
        sel.statusMask = [.assured]
        XCTAssertFalse(sel.matches(flow))

        sel = Selector()
        sel.zone = 7
        XCTAssertTrue(sel.matches(flow))
        sel.zone = 0
        XCTAssertFalse(sel.matches(flow))
        sel = Selector(); sel.origZone = 0
        XCTAssertTrue(sel.matches(flow), "an entry zone is not a direction zone")
    }

    func testNATByStatusAddressAndRawPorts() {
        // 10.0.0.1:1000 -> 10.9.9.9:80, DNAT to 10.0.0.2:8080.
        var flow = tcp(0x0a00_0001, 0x0a09_0909, 1000, 80)
        flow.reply?.src = .v4(0x0a00_0002)
        flow.reply?.srcPort = 8080
        flow.status = [.confirmed, .seenReply, .srcNatDone, .dstNatDone]
        var sel = Selector()
        sel.dstNAT = NATMatch(address: nil)
        XCTAssertTrue(sel.matches(flow))
        sel.dstNAT = NATMatch(address: .v4(0x0a00_0002))
        XCTAssertTrue(sel.matches(flow))
        sel.dstNAT = NATMatch(address: .v4(0x0a00_0002), port: 8080)
        XCTAssertTrue(sel.matches(flow))
        sel.dstNAT = NATMatch(address: .v4(0x0a00_0002), port: 8081)
        XCTAssertFalse(sel.matches(flow))
        // Address and port must both match (ctl's -g keeps conntrack's
        // port-only check itself).
        sel.dstNAT = NATMatch(address: .v4(0x0a00_0003), port: 8080)
        XCTAssertFalse(sel.matches(flow))
        sel.dstNAT = NATMatch(address: .v6(0, 2))
        XCTAssertFalse(sel.matches(flow), "an IPv6 address is compared too")
        sel = Selector(); sel.srcNAT = NATMatch(address: nil)
        XCTAssertFalse(sel.matches(flow), "source untouched")
        sel = Selector(); sel.anyNAT = NATMatch(address: nil)
        XCTAssertTrue(sel.matches(flow))
        // Without the NAT_DONE bits, different tuples do not count.
        flow.status = [.confirmed, .seenReply]
        sel = Selector(); sel.dstNAT = NATMatch(address: nil)
        XCTAssertFalse(sel.matches(flow))

        // An ICMP echo with the NAT_DONE bits counts as both (id vs type/code).
        var echo = Flow()
        echo.family = Family.ipv4
        var o = Tuple(); o.src = .v4(1); o.dst = .v4(2); o.proto = IPProto.icmp; o.icmpType = 8; o.icmpCode = 0; o.icmpID = 77
        var r = Tuple(); r.src = .v4(2); r.dst = .v4(1); r.proto = IPProto.icmp; r.icmpType = 0; r.icmpCode = 0; r.icmpID = 77
        echo.orig = o; echo.reply = r
        echo.status = [.confirmed, .srcNatDone, .dstNatDone]
        sel = Selector(); sel.srcNAT = NATMatch(address: nil)
        XCTAssertTrue(sel.matches(echo))
        sel = Selector(); sel.dstNAT = NATMatch(address: nil)
        XCTAssertTrue(sel.matches(echo))
    }

    func testLabelsAndGenericEntries() {
        var flow = tcp(1, 2, 3, 4)
        var labels = Labels(); labels.words = (1 << 3 | 1 << 5, 0)
        flow.labels = labels
        var sel = Selector()
        sel.labels = [3, 5]
        XCTAssertTrue(sel.matches(flow))
        sel.labels = [3, 6]
        XCTAssertFalse(sel.matches(flow))
        // An entry without ports (a generically tracked protocol) never
        // matches a port selector.
        var generic = Flow()
        var t = Tuple(); t.proto = IPProto.dccp; t.src = .v4(1); t.dst = .v4(2)
        generic.orig = t; generic.family = .ipv4
        sel = Selector(); sel.origSrcPort = 0
        XCTAssertFalse(sel.matches(generic))
    }

    func attributeTypes(_ attrs: [RequestAttribute]) -> [UInt16] {
        attrs.map { a -> UInt16 in
            switch a {
            case .u8(let t, _), .u16(let t, _), .u32(let t, _), .u32Host(let t, _), .u64(let t, _),
                 .bytes(let t, _), .string(let t, _), .nested(let t, _):
                return t
            }
        }
    }

    func testOnlyExactSelectorsGoToTheKernel() {
        let all = KernelFilterSupport.forKernel(KernelVersion(6, 18))
        var sel = Selector()
        sel.family = .ipv4
        sel.origSrc = AddressMatch(address: .v4(0x0a00_0000), mask: AddressMatch.mask(for: .v4(0), prefix: 8))
        XCTAssertEqual(attributeTypes(sel.dumpAttributes(all)), [], "a CIDR is not exact")
        sel.origSrc = AddressMatch(address: .v4(0x0a00_0001), mask: AddressMatch.mask(for: .v4(0)))
        XCTAssertEqual(attributeTypes(sel.dumpAttributes(all)), [CTA.tupleOrig, CTA.filter])
        // IPv6 never goes to the tuple filter (it drops matching entries).
        sel = Selector()
        sel.family = .ipv6
        sel.origSrc = AddressMatch(address: .v6(0, 1), mask: AddressMatch.mask(for: .v6(0, 1)))
        sel.proto = IPProto.tcp
        sel.origDstPort = 80
        XCTAssertEqual(attributeTypes(sel.dumpAttributes(all)), [])
        // Non-echo ICMP types are refused by the kernel: not sent.
        sel = Selector(); sel.family = .ipv4; sel.proto = IPProto.icmp; sel.icmpType = 3
        guard case .nested(_, let members)? = sel.dumpAttributes(all).first,
              case .nested(_, let proto)? = members.last else { return XCTFail("no tuple") }
        XCTAssertEqual(attributeTypes(proto), [CTA.Proto.num])
        // Mark and status, each behind its own kernel version.
        sel = Selector(); sel.mark = 1; sel.status = [.assured]; sel.statusMask = [.assured]
        XCTAssertEqual(attributeTypes(sel.dumpAttributes(all)), [CTA.mark, CTA.markMask, CTA.status, CTA.statusMask])
        XCTAssertEqual(attributeTypes(sel.dumpAttributes(.forKernel(KernelVersion(5, 4)))), [CTA.mark, CTA.markMask])
        XCTAssertEqual(attributeTypes(sel.dumpAttributes(.none)), [])
        XCTAssertFalse(KernelFilterSupport.forKernel(KernelVersion(5, 10)).tupleFilter)
    }
}
