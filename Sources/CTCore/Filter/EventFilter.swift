/// A classic BPF socket filter for the event socket, compiled from a
/// selector: events that cannot match are dropped by the kernel before
/// they are queued, so they neither wake ctl nor fill its buffer.
///
/// The filter only ever refuses an event when the selector's own check
/// would refuse it too: each test reads one attribute and refuses on a
/// value that differs; an attribute that is missing skips the test (the
/// userspace check, which runs on every event that gets through, decides
/// then). Tested: family, protocol, ports, IPv4 addresses under their
/// masks and the mark under its mask. Everything else is left to userspace.
package enum EventFilter {
    /// The program for `selector`, or nil when it would test nothing.
    package static func program(for selector: Selector) -> [FilterInstruction]? {
        var a = Assembler()
        // Messages of other subsystems are let through untouched.
        a.loadByte(at: subsystemOffset)
        a.jumpUnlessEqual(1, to: .accept)
        var tests = 0
        if let family = selector.family {
            a.loadByte(at: 16)   // nfgenmsg.nfgen_family
            a.jumpUnlessEqual(UInt32(family.rawValue), to: .reject)
            tests += 1
        }
        func value(_ path: [UInt16], _ size: Assembler.Size, equals expected: UInt32, mask: UInt32? = nil) {
            let skip = a.newLabel()
            a.find(path, orJumpTo: skip)
            a.loadPayload(size)
            if let mask { a.and(mask) }
            a.jumpUnlessEqual(expected, to: .reject)
            a.place(skip)
            tests += 1
        }
        let protoPath: (UInt16) -> [UInt16] = { [CTA.tupleOrig, CTA.Tuple.proto, $0] }
        if let proto = selector.proto {
            value(protoPath(CTA.Proto.num), .byte, equals: UInt32(proto))
        }
        let ports: [(UInt16?, UInt16, UInt16)] = [
            (selector.origSrcPort, CTA.tupleOrig, CTA.Proto.srcPort),
            (selector.origDstPort, CTA.tupleOrig, CTA.Proto.dstPort),
            (selector.replySrcPort, CTA.tupleReply, CTA.Proto.srcPort),
            (selector.replyDstPort, CTA.tupleReply, CTA.Proto.dstPort),
        ]
        for case let (port?, tuple, attribute) in ports {
            value([tuple, CTA.Tuple.proto, attribute], .half, equals: UInt32(port))
        }
        let addresses: [(AddressMatch?, UInt16, UInt16)] = [
            (selector.origSrc, CTA.tupleOrig, CTA.IP.v4Src),
            (selector.origDst, CTA.tupleOrig, CTA.IP.v4Dst),
            (selector.replySrc, CTA.tupleReply, CTA.IP.v4Src),
            (selector.replyDst, CTA.tupleReply, CTA.IP.v4Dst),
        ]
        for case let (match?, tuple, attribute) in addresses {
            // An IPv4 selector refuses IPv6 entries, which have no IPv4
            // attribute: userspace sees to those.
            guard case .v4(let address) = match.address, case .v4(let mask) = match.mask else { continue }
            value([tuple, CTA.Tuple.ip, attribute], .word, equals: address & mask, mask: mask)
        }
        if let mark = selector.mark {
            value([CTA.mark], .word, equals: mark & selector.markMask, mask: selector.markMask)
        }
        guard tests > 0 else { return nil }
        a.jump(to: .accept)
        return a.assemble()
    }

    /// Offset of the subsystem byte of nlmsghdr.nlmsg_type (its high byte),
    /// which is in host byte order.
    static var subsystemOffset: UInt32 { UInt16(1).littleEndian == 1 ? 5 : 4 }
}

/// A small classic-BPF assembler with forward jumps to labels and two
/// exits, accept (the whole message) and reject.
struct Assembler {
    enum Size { case byte, half, word }
    enum Target: Equatable {
        case accept, reject
        case label(Int)
    }

    // Instruction classes, sizes, modes and operations (linux/bpf_common.h).
    static let ld: UInt16 = 0x00, ldx: UInt16 = 0x01, alu: UInt16 = 0x04, jmp: UInt16 = 0x05
    static let ret: UInt16 = 0x06, misc: UInt16 = 0x07
    static let w: UInt16 = 0x00, h: UInt16 = 0x08, b: UInt16 = 0x10
    static let imm: UInt16 = 0x00, abs: UInt16 = 0x20, ind: UInt16 = 0x40
    static let and: UInt16 = 0x50, ja: UInt16 = 0x00, jeq: UInt16 = 0x10, k: UInt16 = 0x00, tax: UInt16 = 0x00
    /// SKF_AD_OFF + SKF_AD_NLATTR / SKF_AD_NLATTR_NEST: A = offset of the
    /// attribute of type X found in the attributes from offset A (in the
    /// nest at offset A), or 0.
    static let nlattr = UInt32(bitPattern: -0x1000 + 12)
    static let nlattrNest = UInt32(bitPattern: -0x1000 + 16)
    /// Where a ctnetlink message's attributes start: nlmsghdr + nfgenmsg.
    static let attributesOffset: UInt32 = 20

    private var code: [(FilterInstruction, Target?)] = []
    private var labels: [Int: Int] = [:]
    private var nextLabel = 0

    mutating func newLabel() -> Target {
        nextLabel += 1
        return .label(nextLabel)
    }

    mutating func place(_ label: Target) {
        guard case .label(let n) = label else { return }
        labels[n] = code.count
    }

    private mutating func emit(_ code: UInt16, k: UInt32 = 0, jump: Target? = nil) {
        self.code.append((FilterInstruction(code: code, k: k), jump))
    }

    mutating func loadByte(at offset: UInt32) { emit(Self.ld | Self.b | Self.abs, k: offset) }

    /// A = the payload of the attribute at offset X.
    mutating func loadPayload(_ size: Size) {
        let s = size == .byte ? Self.b : size == .half ? Self.h : Self.w
        emit(Self.ld | s | Self.ind, k: 4)
    }

    mutating func and(_ mask: UInt32) { emit(Self.alu | Self.and | Self.k, k: mask) }

    /// Jumps to `target` when A != value, else falls through.
    mutating func jumpUnlessEqual(_ value: UInt32, to target: Target) {
        emit(Self.jmp | Self.jeq | Self.k, k: value, jump: target)
    }

    mutating func jump(to target: Target) { emit(Self.jmp | Self.ja, jump: target) }

    /// X = the offset of the attribute at `path` (top-level type first,
    /// then the types nested in it); jumps to `missing` when one is absent.
    mutating func find(_ path: [UInt16], orJumpTo missing: Target) {
        emit(Self.ld | Self.imm, k: Self.attributesOffset)
        for (depth, type) in path.enumerated() {
            emit(Self.ldx | Self.imm, k: UInt32(type))
            emit(Self.ld | Self.w | Self.abs, k: depth == 0 ? Self.nlattr : Self.nlattrNest)
            // jeq #0: the attribute is missing.
            emit(Self.jmp | Self.jeq | Self.k, k: 0)
            ifZero.append((code.count - 1, missing))
        }
        emit(Self.misc | Self.tax)
    }
    /// `jeq #0` instructions of `find` and where they jump when A is 0.
    private var ifZero: [(Int, Target)] = []

    /// The instructions with every jump resolved, followed by the two
    /// exits: accept (return the whole length) and reject (return 0).
    func assemble() -> [FilterInstruction] {
        let acceptAt = code.count, rejectAt = code.count + 1
        func address(_ target: Target) -> Int {
            switch target {
            case .accept: return acceptAt
            case .reject: return rejectAt
            case .label(let n): return labels[n] ?? acceptAt
            }
        }
        var out = code.map(\.0)
        for (i, entry) in code.enumerated() {
            guard let target = entry.1 else { continue }
            let offset = address(target) - i - 1
            precondition(offset >= 0 && offset < 256, "filter jump out of range")
            if out[i].code == Self.jmp | Self.ja {
                out[i].k = UInt32(offset)
            } else {
                // jeq: true falls through, false jumps.
                out[i].jumpFalse = UInt8(offset)
            }
        }
        for (i, target) in ifZero {
            // jeq #0: true (absent) jumps, false falls through.
            let offset = address(target) - i - 1
            precondition(offset >= 0 && offset < 256, "filter jump out of range")
            out[i].jumpTrue = UInt8(offset)
        }
        out.append(FilterInstruction(code: Self.ret | Self.k, k: 0xffff_ffff))
        out.append(FilterInstruction(code: Self.ret | Self.k, k: 0))
        return out
    }
}
