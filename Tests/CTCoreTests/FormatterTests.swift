import Glibc
import XCTest
@testable import CTCore

final class FormatterTests: XCTestCase {
    func text(_ body: (OutputBuffer) -> Void) -> String {
        let out = OutputBuffer(fd: -1)
        body(out)
        return String(decoding: out.pending, as: UTF8.self)
    }

    /// glibc's own inet_ntop, the reference for address text.
    func ntop(_ hi: UInt64, _ lo: UInt64) -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 {
            bytes[i] = UInt8(truncatingIfNeeded: hi >> UInt64(56 - 8 * i))
            bytes[8 + i] = UInt8(truncatingIfNeeded: lo >> UInt64(56 - 8 * i))
        }
        var buffer = [CChar](repeating: 0, count: 64)
        XCTAssertNotNil(inet_ntop(AF_INET6, bytes, &buffer, 64))
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func testIPv6MatchesInetNtop() {
        var generator = SystemRandomNumberGenerator()
        var samples: [(UInt64, UInt64)] = [
            (0, 0), (0, 1), (0, 0xffff_0102_0304), (0, 0x0102_0304), (0, 0x1_0000_0001),
            (0xfe80_0000_0000_0000, 1), (0x2001_0db8_0000_0000, 0x0001_0000_0000_0001),
            (0x2001_0db8_0000_0001, 0), (0x0000_0000_0000_ffff, 0), (0xffff_ffff_ffff_ffff, UInt64.max),
            (0, 0x0000_fffe_0102_0304), (0, 0x0001_ffff_0102_0304),
        ]
        // Random addresses with random zero groups, to exercise "::".
        for _ in 0..<5000 {
            var hi = UInt64.random(in: 0...UInt64.max, using: &generator)
            var lo = UInt64.random(in: 0...UInt64.max, using: &generator)
            let mask = UInt8.random(in: 0...255, using: &generator)
            for bit in 0..<8 where mask & (1 << bit) != 0 {
                if bit < 4 { hi &= ~(UInt64(0xffff) << UInt64(48 - 16 * bit)) } else { lo &= ~(UInt64(0xffff) << UInt64(48 - 16 * (bit - 4))) }
            }
            samples.append((hi, lo))
        }
        for (hi, lo) in samples {
            XCTAssertEqual(text { $0.append(address: .v6(hi, lo)) }, ntop(hi, lo))
        }
    }

    func testIPv4AndNumbers() {
        XCTAssertEqual(text { $0.append(address: .v4(0)) }, "0.0.0.0")
        XCTAssertEqual(text { $0.append(address: .v4(0xffff_ffff)) }, "255.255.255.255")
        XCTAssertEqual(text { $0.append(address: .v4(0x0a00_0102)) }, "10.0.1.2")
        XCTAssertEqual(text { $0.append(decimal: UInt64.max) }, "18446744073709551615")
        XCTAssertEqual(text { $0.append(decimal: UInt64(0)) }, "0")
        XCTAssertEqual(text { $0.append(decimal: -42) }, "-42")
        XCTAssertEqual(text { $0.append(hex: 0) }, "0")
        XCTAssertEqual(text { $0.append(hex: 0xffff) }, "ffff")
        XCTAssertEqual(text { $0.append(hex: 0x1a0) }, "1a0")
        for v: UInt64 in [1, 9, 10, 99, 100, 4294967295, 1_000_000_007] {
            XCTAssertEqual(text { $0.append(decimal: v) }, String(v))
        }
    }

    /// A flow built from values, to pin what conntrack prints for
    /// attributes a test kernel cannot produce (offload flags, huge
    /// counters, secctx, helper).
    func testEveryFieldInConntrackOrder() {
        var flow = Flow()
        flow.family = .ipv4
        var orig = Tuple()
        orig.src = .v4(0x0a00_0001); orig.dst = .v4(0x0a00_0002); orig.proto = 6; orig.srcPort = 1; orig.dstPort = 2; orig.zone = 3
        var reply = Tuple()
        reply.src = .v4(0x0a00_0002); reply.dst = .v4(0x0a00_0001); reply.proto = 6; reply.srcPort = 2; reply.dstPort = 1; reply.zone = 4
        flow.orig = orig; flow.reply = reply
        flow.status = [.confirmed, .assured, .offload]
        var tcp = TCPInfo(); tcp.state = 9
        flow.protoInfo = .tcp(tcp)
        flow.timeout = UInt32.max
        flow.mark = UInt32.max
        flow.secmark = 5
        flow.secctx = "system_u:object_r:x_t"
        flow.zone = 6
        flow.helper = "ftp"
        flow.use = 2
        flow.id = UInt32.max
        flow.countersOrig = Counters(packets: UInt64.max, bytes: UInt64.max)
        flow.countersReply = Counters(packets: 0, bytes: 0)
        flow.timestampStart = 1_000_000_000 * 100
        flow.timestampStop = 1_000_000_000 * 160
        var labels = Labels(); labels.words = (1 << 2 | 1 << 5, 1 << 63)
        flow.labels = labels
        let map = LabelMap(names: [2: "two", 127: "top"])
        let line = format(flow, [.extended, .id, .labels], labels: map)
        XCTAssertEqual(line, "ipv4     2 tcp      6 4294967295 SYN_SENT2 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 zone-orig=3 packets=18446744073709551615 bytes=18446744073709551615 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 zone-reply=4 packets=0 bytes=0 [OFFLOAD] [ASSURED] mark=4294967295 secmark=5 secctx=system_u:object_r:x_t zone=6 delta-time=60 helper=ftp use=2 id=4294967295 labels=two,top\n")
        flow.status = [.seenReply, .offload, .hwOffload]
        XCTAssertTrue(format(flow, []).contains(" [HW_OFFLOAD] mark="))
        XCTAssertFalse(format(flow, []).contains("[UNREPLIED]"))
        // Labels set, none of them named: conntrack prints a bare "labels".
        XCTAssertTrue(format(flow, [.labels], labels: LabelMap(names: [1: "one"])).hasSuffix(" use=2 labels\n"))
        // Without -o labels or -o id, neither is printed.
        XCTAssertFalse(format(flow, [], labels: nil).contains("labels="))
        XCTAssertFalse(format(flow, []).contains(" id="))
    }

    func testStateNames() {
        XCTAssertEqual(Names.state(.tcp({ var t = TCPInfo(); t.state = 3; return t }())).map { "\($0)" }, "ESTABLISHED")
        XCTAssertEqual(Names.state(.sctp({ var s = SCTPInfo(); s.state = 7; return s }())).map { "\($0)" }, "SHUTDOWN_ACK_SENT")
        XCTAssertEqual(Names.state(.dccp({ var d = DCCPInfo(); d.state = 9; return d }())).map { "\($0)" }, "INVALID")
        XCTAssertEqual(Names.state(.tcp({ var t = TCPInfo(); t.state = 200; return t }())).map { "\($0)" }, "UNKNOWN")
        XCTAssertNil(Names.state(.tcp(TCPInfo())))
    }

    /// A tracked DCCP entry (kernels before 6.16 have the tracker) saves
    /// its role after its state, as conntrack's -o save does and -I needs.
    func testDCCPSaveCarriesTheRole() {
        var flow = Flow()
        flow.family = .ipv4
        var orig = Tuple()
        orig.src = .v4(0x0a00_0001); orig.dst = .v4(0x0a00_0002); orig.proto = IPProto.dccp; orig.srcPort = 11; orig.dstPort = 12
        var reply = Tuple()
        reply.src = .v4(0x0a00_0002); reply.dst = .v4(0x0a00_0001); reply.proto = IPProto.dccp; reply.srcPort = 12; reply.dstPort = 11
        flow.orig = orig; flow.reply = reply
        flow.timeout = 300
        var dccp = DCCPInfo(); dccp.state = 4; dccp.role = 0; dccp.handshakeSeq = 7
        flow.protoInfo = .dccp(dccp)
        let base = "-A -t 300 -u UNSET -s 10.0.0.1 -d 10.0.0.2 -r 10.0.0.2 -q 10.0.0.1 -p dccp --sport 11 --dport 12 --reply-port-src 12 --reply-port-dst 11"
        XCTAssertEqual(saveLine(flow), base + " --state OPEN --role client")
        dccp.state = 1; dccp.role = 1
        flow.protoInfo = .dccp(dccp)
        XCTAssertEqual(saveLine(flow), base + " --state REQUEST --role server")
        dccp.role = nil
        flow.protoInfo = .dccp(dccp)
        XCTAssertEqual(saveLine(flow), base + " --state REQUEST")
    }

    func testCPUStatsLine() {
        let stats = CPUStats(cpu: 1, values: [(2, 0), (4, 5), (8, UInt32.max), (99, 1)])
        XCTAssertEqual(text { TextFormatter.write(CPUStatistics(stats), to: $0) }, "cpu=1   \tfound=0 invalid=5 insert=4294967295 \n")
        XCTAssertEqual(text { TextFormatter.write(CPUStatistics(CPUStats(cpu: 12345, values: [])), to: $0) }, "cpu=12345\t\n")
    }

    func testLabelMapParsing() {
        let map = LabelMap(parsing: "# comment\n 0 zero\n3\tthree extra\nfoo bar\n128 toolarge\n3 again\n\n127 last\n")
        XCTAssertEqual(map.names, [0: "zero", 3: "three", 127: "last"])
        XCTAssertEqual(LabelMap.parse("0x64 hundred\r\n010 eight\n5 has#hash\n")?.names, [100: "hundred", 8: "eight"])
        XCTAssertNil(LabelMap.parse("1 one\n2 bad=name\n"))
        XCTAssertNil(LabelMap.parse("1 a,b\n"))
        XCTAssertNil(LabelMap.parse("# nothing\n\n"))
        // A name given to several bits stands for the lowest of them.
        let twice = LabelMap(parsing: "90 dup\n7 dup\n64 dup\n1 one\n")
        XCTAssertEqual(twice.bit(named: "dup"), 7)
        XCTAssertEqual(twice.bit(named: "one"), 1)
        XCTAssertNil(twice.bit(named: "none"))
        XCTAssertEqual(Errno(0).description, "Success")
    }

    func testKernelVersionParsing() {
        XCTAssertEqual(KernelVersion(release: "6.18.44-fc-v657"), KernelVersion(6, 18))
        XCTAssertEqual(KernelVersion(release: "5.8.0"), KernelVersion(5, 8))
        XCTAssertTrue(KernelVersion(release: "5.4.0-100-generic") < KernelVersion(5, 8))
        XCTAssertEqual(KernelVersion(release: "garbage"), KernelVersion(0, 0))
    }
}
