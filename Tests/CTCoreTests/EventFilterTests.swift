import XCTest
@testable import CTCore

/// The event socket filter, run on the kernel's own messages (the decoder
/// fixtures) by a classic-BPF interpreter that follows the kernel's rules
/// for the instructions the compiler emits.
final class EventFilterTests: XCTestCase {
    /// A whole netlink message around a fixture payload (nfgenmsg + attributes).
    func message(_ payload: [UInt8], type: UInt16 = 0x0100, flags: UInt16 = 0x0600) -> [UInt8] {
        var m: [UInt8] = []
        func le32(_ v: UInt32) { m += withUnsafeBytes(of: v.littleEndian, Array.init) }
        func le16(_ v: UInt16) { m += withUnsafeBytes(of: v.littleEndian, Array.init) }
        le32(UInt32(16 + payload.count)); le16(type); le16(flags); le32(0); le32(1234)
        return m + payload
    }

    /// Runs `program` on `packet` as the kernel does and returns its verdict
    /// (0 = drop).
    func run(_ program: [FilterInstruction], on packet: [UInt8]) -> UInt32 {
        var a: UInt32 = 0, x: UInt32 = 0, pc = 0
        let len = packet.count
        func load(_ offset: Int, _ size: Int) -> UInt32? {
            guard offset >= 0, offset + size <= len else { return nil }
            return packet[offset..<(offset + size)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        }
        func attrLen(_ at: Int) -> Int { Int(packet[at]) | Int(packet[at + 1]) << 8 }
        func attrType(_ at: Int) -> UInt32 { UInt32(Int(packet[at + 2]) | Int(packet[at + 3]) << 8) & 0x3fff }
        /// nla_find over [start, start + count).
        func find(_ start: Int, _ count: Int, _ type: UInt32) -> UInt32 {
            var at = start, rest = count
            while rest >= 4, attrLen(at) >= 4, attrLen(at) <= rest {
                if attrType(at) == type { return UInt32(at) }
                let step = (attrLen(at) + 3) & ~3
                at += step
                rest -= step
            }
            return 0
        }
        while pc < program.count {
            let i = program[pc]
            pc += 1
            switch i.code {
            case 0x00: a = i.k                                            // ld #k
            case 0x01: x = i.k                                            // ldx #k
            case 0x30:                                                    // ldb [k]
                guard let v = load(Int(i.k), 1) else { return 0 }
                a = v
            case 0x20 where i.k == Assembler.nlattr:                      // ld #nla
                a = Int(a) > len - 4 ? 0 : find(Int(a), len - Int(a), x)
            case 0x20 where i.k == Assembler.nlattrNest:                  // ld #nlan
                if Int(a) > len - 4 || attrLen(Int(a)) > len - Int(a) { a = 0 } else {
                    a = find(Int(a) + 4, attrLen(Int(a)) - 4, x)
                }
            case 0x50, 0x48, 0x40:                                        // ld{b,h,} [x + k]
                let size = i.code == 0x50 ? 1 : i.code == 0x48 ? 2 : 4
                guard let v = load(Int(x) + Int(i.k), size) else { return 0 }
                a = v
            case 0x54: a &= i.k                                           // and #k
            case 0x05: pc += Int(i.k)                                     // ja
            case 0x15: pc += a == i.k ? Int(i.jumpTrue) : Int(i.jumpFalse) // jeq #k
            case 0x07: x = a                                              // tax
            case 0x06: return i.k                                         // ret #k
            default:
                XCTFail("unexpected instruction \(i)")
                return 0
            }
        }
        XCTFail("program ran off its end")
        return 0
    }

    /// Selectors built from a flow's own fields: each matches the flow.
    func matchingSelectors(_ flow: Flow) -> [Selector] {
        var result: [Selector] = []
        var s = Selector()
        s.family = flow.family; result.append(s)
        if let p = flow.orig?.proto { s = Selector(); s.proto = p; result.append(s) }
        if let port = flow.orig?.srcPort, IPProto.hasPorts(flow.orig?.proto ?? 0) {
            s = Selector(); s.proto = flow.orig?.proto; s.origSrcPort = port
            s.origDstPort = flow.orig?.dstPort; s.replySrcPort = flow.reply?.srcPort; s.replyDstPort = flow.reply?.dstPort
            result.append(s)
        }
        if case .v4(let addr)? = flow.orig?.src {
            s = Selector()
            s.origSrc = AddressMatch(address: .v4(addr & 0xffff_ff00), mask: .v4(0xffff_ff00))
            s.origDst = flow.orig?.dst.map { AddressMatch(address: $0, mask: AddressMatch.mask(for: $0)) }
            s.replySrc = flow.reply?.src.map { AddressMatch(address: $0, mask: AddressMatch.mask(for: $0)) }
            s.replyDst = flow.reply?.dst.map { AddressMatch(address: $0, mask: AddressMatch.mask(for: $0)) }
            result.append(s)
        }
        if let mark = flow.mark {
            s = Selector(); s.mark = mark & 0xf0; s.markMask = 0xf0; result.append(s)
        }
        return result
    }

    func testEveryMatchingEventGetsThrough() throws {
        for name in try Fixtures.messageNames() {
            let payload = try Fixtures.bytes(name)
            let flow = try Fixtures.flow(name)
            for selector in matchingSelectors(flow) {
                XCTAssertTrue(selector.matches(flow), "\(name): \(selector)")
                let program = try XCTUnwrap(EventFilter.program(for: selector))
                XCTAssertNotEqual(run(program, on: message(payload)), 0, "\(name): \(selector)")
                // DESTROY messages have the same layout.
                XCTAssertNotEqual(run(program, on: message(payload, type: 0x0102, flags: 0)), 0, name)
            }
        }
    }

    func testEventsThatCannotMatchAreDropped() throws {
        var checked = 0
        for name in try Fixtures.messageNames() {
            let payload = message(try Fixtures.bytes(name))
            let flow = try Fixtures.flow(name)
            for var selector in matchingSelectors(flow) {
                // Spoil one tested field at a time.
                if selector.proto != nil, selector.origSrcPort == nil { selector.proto = selector.proto! &+ 1 }
                else if let p = selector.origDstPort { selector.origDstPort = p &+ 1 }
                else if let m = selector.origSrc, case .v4(let a) = m.address { selector.origSrc!.address = .v4(a ^ 0x100) }
                else if let mark = selector.mark { selector.mark = mark ^ 0x10 }
                else if let f = selector.family { selector.family = f == .ipv4 ? .ipv6 : .ipv4 }
                XCTAssertFalse(selector.matches(flow), "\(name): \(selector)")
                let program = try XCTUnwrap(EventFilter.program(for: selector))
                XCTAssertEqual(run(program, on: payload), 0, "\(name): \(selector)")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 20)
    }

    func testMissingAttributesAreLeftToUserspace() throws {
        // An event without CTA_MARK (a zero mark) passes the kernel filter;
        // the selector then refuses it.
        let payload = try Fixtures.bytes("udp-0.bin")
        var stripped: [UInt8] = Array(payload[0..<4])
        try ByteView.with(Array(payload[4...])) { view in
            try view.forEachAttribute { attribute in
                guard attribute.type != CTA.mark else { return }
                let body = attribute.value.bytes
                let len = UInt16(4 + body.count)
                let type = attribute.type | (attribute.isNested ? 0x8000 : 0)
                stripped += withUnsafeBytes(of: len.littleEndian, Array.init) + withUnsafeBytes(of: type.littleEndian, Array.init) + body
                stripped += [UInt8](repeating: 0, count: (4 - body.count % 4) % 4)
            }
        }
        var selector = Selector()
        selector.mark = 0
        let program = try XCTUnwrap(EventFilter.program(for: selector))
        XCTAssertNotEqual(run(program, on: message(stripped)), 0)
        let flow = try ByteView.with(stripped) { try Decoder.flow($0) }
        XCTAssertNil(flow.mark)
        XCTAssertFalse(selector.matches(flow))
    }

    func testOtherSubsystemsPassAndEmptySelectorsNeedNoFilter() throws {
        XCTAssertNil(EventFilter.program(for: Selector()))
        var selector = Selector()
        selector.proto = 99
        let program = try XCTUnwrap(EventFilter.program(for: selector))
        // An expectation event (subsystem 2) is not judged here.
        XCTAssertNotEqual(run(program, on: message(try Fixtures.bytes("tcp-0.bin"), type: 0x0200)), 0)
        XCTAssertEqual(run(program, on: message(try Fixtures.bytes("tcp-0.bin"))), 0)
    }

    func testForEachMessageRefusesBrokenDatagrams() throws {
        let good = message(try Fixtures.bytes("tcp-0.bin"))
        var seen = 0
        try ByteView.with(good + good) { try EventSocket.forEachMessage(in: $0) { _ in seen += 1 } }
        XCTAssertEqual(seen, 2)
        for broken in [Array(good[0..<10]), Array(good.dropLast(3)), [0x08, 0, 0, 0] + Array(good[4...])] {
            XCTAssertThrowsError(try ByteView.with(broken) { try EventSocket.forEachMessage(in: $0) { _ in } })
        }
    }
}
