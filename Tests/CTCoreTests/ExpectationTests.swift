import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
@testable import CTCore

/// The expectation decoder and formatter on messages captured from the
/// kernel (`make fixtures`: ftp over IPv4, IPv6 and DNAT, sip with flags,
/// tftp), against what conntrack 1.4.7 printed for the same expectations;
/// and on broken input.
final class ExpectationTests: XCTestCase {
    static let directory = Fixtures.directory.appendingPathComponent("expect")

    func messages() throws -> [(String, [UInt8])] {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path)
            .filter { $0.hasSuffix(".bin") }.sorted()
        XCTAssertEqual(names.count, 6, "the fixture set holds six expectations")
        return try names.map { ($0, [UInt8](try Data(contentsOf: Self.directory.appendingPathComponent($0)))) }
    }

    func decode(_ bytes: [UInt8]) throws -> Expectation {
        try ByteView.with(bytes) { try Decoder.expectation($0) }
    }

    /// A line without its timeout (the first field, or `<timeout>` in XML),
    /// and the timeout: the two dumps were made moments apart.
    func split(_ line: String) -> (String, Int) {
        if let open = line.range(of: "<timeout>"), let close = line.range(of: "</timeout>") {
            return (String(line[..<open.upperBound]) + "T" + String(line[close.lowerBound...]),
                    Int(line[open.upperBound..<close.lowerBound]) ?? -1)
        }
        let space = line.firstIndex(of: " ")!
        return ("T" + line[space...], Int(line[..<space]) ?? -1)
    }

    func assertSameLines(_ ours: [String], _ theirs: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(ours.count, theirs.count, file: file, line: line)
        var expected = theirs.map(split)
        for mine in ours.map(split) {
            guard let i = expected.firstIndex(where: { $0.0 == mine.0 }) else {
                XCTFail("not printed by conntrack: \(mine.0)\nconntrack:\n\(theirs.joined(separator: "\n"))", file: file, line: line)
                continue
            }
            XCTAssertLessThanOrEqual(abs(expected[i].1 - mine.1), 5, mine.0, file: file, line: line)
            expected.remove(at: i)
        }
    }

    func testTextMatchesConntrack() throws {
        let out = OutputBuffer(fd: -1)
        for (_, bytes) in try messages() {
            ExpectFormatter(options: []).write(try decode(bytes), to: out)
        }
        let ours = String(decoding: out.pending, as: UTF8.self).split(separator: "\n").map(String.init)
        let theirs = try Fixtures.text("expect/expect.default.txt").split(separator: "\n").map(String.init)
        assertSameLines(ours, theirs)
        // The fixture covers what it claims to.
        for needle in ["PERMANENT,INACTIVE class=0 helper=sip", "PERMANENT class=0 helper=sip", "helper=tftp",
                       "src=::1 dst=::1", "src=10.99.0.1 dst=10.99.0.1"] {
            XCTAssertTrue(theirs.contains { $0.contains(needle) }, needle)
        }
    }

    func testXMLMatchesConntrack() throws {
        let out = OutputBuffer(fd: -1)
        for (_, bytes) in try messages() {
            ExpectFormatter(options: [.xml]).writeXML(try decode(bytes), to: out, now: 0)
        }
        let ours = String(decoding: out.pending, as: UTF8.self).split(separator: "\n").map(String.init)
        let theirs = try Fixtures.text("expect/expect.xml.txt").split(separator: "\n").map(String.init)
            .filter { $0.hasPrefix("<flow>") }
        assertSameLines(ours, theirs)
    }

    func testNATAndFunctionAreDecoded() throws {
        let all = try messages().map { try decode($0.1) }
        let natted = try XCTUnwrap(all.first { $0.nat != nil })
        XCTAssertEqual(natted.function, "nat-follow-master")
        XCTAssertEqual(natted.nat?.direction, 0)
        XCTAssertEqual(natted.nat?.tuple?.srcPort, natted.tuple?.dstPort)
        XCTAssertEqual(natted.helper, "ftp")
        XCTAssertEqual(natted.expectClass, 0)
        XCTAssertNotNil(natted.id)
        // Only that one has them.
        XCTAssertEqual(all.filter { $0.nat != nil || $0.function != nil }.count, 1)
    }

    /// What this kernel never sends (a zone, USERSPACE) in ctl's format,
    /// which follows conntrack's library: zone before the flags, flags
    /// joined by commas.
    func testZoneAndEveryFlag() {
        var e = Expectation()
        e.family = Family.ipv4
        var t = Tuple()
        t.src = .v4(0x0a000001); t.dst = .v4(0x0a000002); t.proto = IPProto.gre; t.srcPort = 0x10; t.dstPort = 0xffff
        e.tuple = t
        e.timeout = 5
        e.zone = 7
        e.flags = [.inactive, .userspace]
        e.helper = "pptp"
        let out = OutputBuffer(fd: -1)
        ExpectFormatter(options: []).write(e, event: .destroy, to: out)
        XCTAssertEqual(String(decoding: out.pending, as: UTF8.self),
                       "[DESTROY] 5 proto=47 src=10.0.0.1 dst=10.0.0.2 srckey=0x10 dstkey=0xffff zone=7 INACTIVE,USERSPACE helper=pptp\n")
        out.removeAllPending()
        ExpectFormatter(options: []).writeXML(e, event: .new, to: out, now: 0)
        let xml = String(decoding: out.pending, as: UTF8.self)
        XCTAssertTrue(xml.hasPrefix("<flow type=\"new\">"), xml)
        XCTAssertTrue(xml.hasSuffix("<meta><helper-name>pptp</helper-name><timeout>5</timeout><zone>7</zone><inactive/><userspace/></meta></flow>\n"), xml)
        XCTAssertTrue(xml.contains("<layer4 protonum=\"47\" protoname=\"gre\"><expected><srckey>0x10</srckey><dstkey>0xffff</dstkey></expected>"), xml)
    }

    func testTimestampIsLeftAligned() {
        let out = OutputBuffer(fd: -1)
        ExpectFormatter.writeTimestamp(seconds: 1_700_000_000, microseconds: 42, to: out)
        ExpectFormatter.writeTimestamp(seconds: 7, microseconds: 123_456, to: out)
        XCTAssertEqual(String(decoding: out.pending, as: UTF8.self), "[1700000000.42    ]\t[7       .123456]\t")
    }

    func testHostileHelperNameStaysWellFormed() throws {
        var e = try decode(try messages()[0].1)
        e.helper = "<&\"x>"
        let out = OutputBuffer(fd: -1)
        ExpectFormatter.writeXMLHeader(to: out)
        ExpectFormatter(options: []).writeXML(e, to: out, now: 0)
        ExpectFormatter.writeXMLFooter(to: out)
        let document = Data(out.pending)
        let parser = XMLParser(data: document)
        XCTAssertTrue(parser.parse(), String(decoding: document, as: UTF8.self))
    }

    func testEveryTruncationFailsCleanly() throws {
        for (name, bytes) in try messages() {
            for length in 0..<bytes.count {
                _ = try? decode(Array(bytes[0..<length]))
            }
            XCTAssertThrowsError(try decode(Array(bytes[0..<3])), name)
            // A cut inside the first attribute's payload.
            XCTAssertThrowsError(try decode(Array(bytes[0..<10])), name) { error in
                XCTAssertTrue(error is MalformedMessage, "\(error)")
            }
        }
    }

    func testWrongLengthsAndUnknownAttributes() throws {
        let good = try messages()[0].1
        func attribute(_ type: UInt16, _ payload: [UInt8]) -> [UInt8] {
            let len = UInt16(4 + payload.count)
            var out = [UInt8(len & 0xff), UInt8(len >> 8), UInt8(type & 0xff), UInt8(type >> 8)] + payload
            while out.count % 4 != 0 { out.append(0) }
            return out
        }
        // An unknown attribute is skipped.
        let extended = good + attribute(99, [1, 2, 3, 4, 5])
        XCTAssertEqual(try decode(extended), try decode(good))
        // Wrong sizes for fixed-size attributes are refused.
        for (type, payload) in [(CTAExpect.timeout, [UInt8](repeating: 0, count: 2)),
                                (CTAExpect.id, [UInt8](repeating: 0, count: 8)),
                                (CTAExpect.zone, [UInt8](repeating: 0, count: 4)),
                                (CTAExpect.flags, [UInt8](repeating: 0, count: 1)),
                                (CTAExpect.expectClass, [UInt8](repeating: 0, count: 3))] {
            XCTAssertThrowsError(try decode(good + attribute(type, payload)), "type \(type)")
        }
        // A nest whose inner length runs past it.
        let brokenNest = attribute(CTAExpect.tuple | 0x8000, [0xff, 0x00, 0x01, 0x00])
        XCTAssertThrowsError(try decode(Array(good[0..<4]) + brokenNest))
    }
}
