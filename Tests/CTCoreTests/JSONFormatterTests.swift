import Foundation
import Glibc
import XCTest
@testable import CTCore

/// `flow` as -o json prints it.
func json(_ flow: Flow, _ options: OutputOptions = [], header: JSONFormatter.Header? = nil,
          labels: LabelMap? = nil, now: Int = 0) -> String {
    let out = OutputBuffer(fd: -1)
    JSONFormatter(options: options, labelMap: labels).write(flow, header: header, to: out, now: now)
    return String(decoding: out.pending, as: UTF8.self)
}

/// `e` as -o json prints it.
func json(_ e: Expectation, header: JSONFormatter.Header? = nil) -> String {
    let out = OutputBuffer(fd: -1)
    JSONFormatter(options: []).write(e, header: header, to: out)
    return String(decoding: out.pending, as: UTF8.self)
}

/// The schema of -o json, checked on parsed objects: the type of every
/// key, no key outside it, and the order of the keys in the text.
enum JSONSchema {
    static let flowKeys = ["event", "time", "portid", "progname", "family", "protocol", "original", "reply", "state",
                           "timeout", "status", "mark", "secmark", "secctx", "zone", "use", "id", "helper", "labels",
                           "label_bits", "timestamp", "delta_time"]
    static let expectKeys = ["event", "time", "family", "protocol", "expected", "mask", "master", "timeout", "id",
                             "helper", "zone", "flags", "class", "nat", "function"]
    static let tupleKeys = ["src", "dst", "sport", "dport", "type", "code", "id", "srckey", "dstkey", "zone", "counters"]
    static let statusNames = ["EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED", "SRC_NAT", "DST_NAT", "SEQ_ADJUST",
                              "SRC_NAT_DONE", "DST_NAT_DONE", "DYING", "FIXED_TIMEOUT", "TEMPLATE", "UNTRACKED",
                              "HELPER", "OFFLOAD", "HW_OFFLOAD"]

    struct Violation: Error, CustomStringConvertible { var description: String }

    static func fail(_ text: String) -> Violation { Violation(description: text) }

    /// An integer value (no fraction, no string, no boolean).
    static func int(_ value: Any?, _ path: String, max: UInt64 = UInt64(Int64.max)) throws -> UInt64 {
        guard let n = value as? NSNumber, !(value is String) else { throw fail("\(path): not a number: \(String(describing: value))") }
        guard let v = Int64(exactly: n.int64Value), n.stringValue == String(v), v >= 0, UInt64(v) <= max else {
            throw fail("\(path): not an integer in range: \(n)")
        }
        return UInt64(v)
    }

    static func string(_ value: Any?, _ path: String) throws -> String {
        guard let s = value as? String else { throw fail("\(path): not a string: \(String(describing: value))") }
        return s
    }

    static func object(_ value: Any?, _ path: String, allowed: [String]) throws -> [String: Any] {
        guard let o = value as? [String: Any] else { throw fail("\(path): not an object") }
        for key in o.keys where !allowed.contains(key) { throw fail("\(path): unknown key \(key)") }
        return o
    }

    static func strings(_ value: Any?, _ path: String) throws -> [String] {
        guard let a = value as? [Any] else { throw fail("\(path): not an array") }
        return try a.enumerated().map { try string($0.element, "\(path)[\($0.offset)]") }
    }

    static func tuple(_ value: Any?, _ path: String, directional: Bool) throws {
        let t = try object(value, path, allowed: directional ? tupleKeys : tupleKeys.filter { $0 != "zone" && $0 != "counters" })
        for key in ["src", "dst"] where t[key] != nil { _ = try string(t[key], "\(path).\(key)") }
        for key in ["sport", "dport", "srckey", "dstkey", "zone"] where t[key] != nil {
            _ = try int(t[key], "\(path).\(key)", max: 65535)
        }
        for key in ["type", "code"] where t[key] != nil { _ = try int(t[key], "\(path).\(key)", max: 255) }
        if t["id"] != nil { _ = try int(t["id"], "\(path).id", max: 65535) }
        if t["sport"] != nil || t["dport"] != nil, t["type"] != nil || t["srckey"] != nil {
            throw fail("\(path): fields of two protocols")
        }
        if let c = t["counters"] {
            let counters = try object(c, "\(path).counters", allowed: ["packets", "bytes"])
            guard counters.count == 2 else { throw fail("\(path).counters: incomplete") }
            _ = try int(counters["packets"], "\(path).counters.packets")
            _ = try int(counters["bytes"], "\(path).counters.bytes")
        }
    }

    static func common(_ o: [String: Any]) throws {
        guard let family = o["family"] as? String, ["ipv4", "ipv6", "unknown"].contains(family) else {
            throw fail("family missing or wrong")
        }
        if let e = o["event"] {
            guard let s = e as? String, ["new", "update", "destroy"].contains(s) else { throw fail("event: \(e)") }
        }
        if let t = o["time"] {
            guard t is NSNumber, !(t is String) else { throw fail("time: not a number") }
        }
        if let p = o["protocol"] {
            let proto = try object(p, "protocol", allowed: ["name", "number"])
            guard proto.count == 2 else { throw fail("protocol: incomplete") }
            _ = try string(proto["name"], "protocol.name")
            _ = try int(proto["number"], "protocol.number", max: 255)
        }
    }

    /// Checks a connection entry's object; returns it.
    @discardableResult
    static func flow(_ line: String) throws -> [String: Any] {
        let o = try parse(line, allowed: flowKeys)
        try common(o)
        for key in ["original", "reply"] where o[key] != nil { try tuple(o[key], key, directional: true) }
        if o["state"] != nil { _ = try string(o["state"], "state") }
        for key in ["timeout", "mark", "secmark", "use", "id"] where o[key] != nil {
            _ = try int(o[key], key, max: UInt64(UInt32.max))
        }
        for key in ["zone"] where o[key] != nil { _ = try int(o[key], key, max: 65535) }
        if o["portid"] != nil { _ = try int(o["portid"], "portid", max: UInt64(UInt32.max)) }
        for key in ["secctx", "helper", "progname"] where o[key] != nil { _ = try string(o[key], key) }
        if o["progname"] != nil, o["portid"] == nil { throw fail("progname without portid") }
        if o["status"] != nil {
            for name in try strings(o["status"], "status") where !statusNames.contains(name) && !name.hasPrefix("BIT_") {
                throw fail("status: unknown name \(name)")
            }
        }
        if o["labels"] != nil {
            _ = try strings(o["labels"], "labels")
            if o["label_bits"] == nil { throw fail("labels without label_bits") }
        }
        if let bits = o["label_bits"] {
            guard let a = bits as? [Any] else { throw fail("label_bits: not an array") }
            var previous = -1
            for (i, b) in a.enumerated() {
                let bit = Int(try int(b, "label_bits[\(i)]", max: 127))
                if bit <= previous { throw fail("label_bits: not ascending") }
                previous = bit
            }
        }
        if let ts = o["timestamp"] {
            let t = try object(ts, "timestamp", allowed: ["start", "stop"])
            if t.isEmpty { throw fail("timestamp: empty") }
            for (k, v) in t { _ = try int(v, "timestamp.\(k)") }
        }
        if o["delta_time"] != nil { _ = try int(o["delta_time"], "delta_time") }
        return o
    }

    /// Checks an expectation's object; returns it.
    @discardableResult
    static func expectation(_ line: String) throws -> [String: Any] {
        let o = try parse(line, allowed: expectKeys)
        try common(o)
        for key in ["expected", "mask", "master"] where o[key] != nil { try tuple(o[key], key, directional: false) }
        for key in ["timeout", "id", "class"] where o[key] != nil { _ = try int(o[key], key, max: UInt64(UInt32.max)) }
        if o["zone"] != nil { _ = try int(o["zone"], "zone", max: 65535) }
        for key in ["helper", "function"] where o[key] != nil { _ = try string(o[key], key) }
        if o["flags"] != nil {
            for name in try strings(o["flags"], "flags")
            where !["PERMANENT", "INACTIVE", "USERSPACE"].contains(name) && !name.hasPrefix("BIT_") {
                throw fail("flags: unknown name \(name)")
            }
        }
        if let n = o["nat"] {
            let nat = try object(n, "nat", allowed: ["direction", "tuple"])
            if nat["direction"] != nil { _ = try int(nat["direction"], "nat.direction", max: UInt64(UInt32.max)) }
            if nat["tuple"] != nil { try tuple(nat["tuple"], "nat.tuple", directional: false) }
        }
        return o
    }

    /// One NDJSON line: a single object ending in a newline, no raw control
    /// characters, top-level keys from `allowed` in its order.
    static func parse(_ line: String, allowed: [String]) throws -> [String: Any] {
        guard line.hasSuffix("}\n"), line.hasPrefix("{") else { throw fail("not one object per line: \(line)") }
        let body = line.dropLast()
        if body.contains("\n") { throw fail("more than one line") }
        if body.unicodeScalars.contains(where: { $0.value < 0x20 }) { throw fail("raw control character") }
        let value = try JSONSerialization.jsonObject(with: Data(body.utf8))
        guard let o = value as? [String: Any] else { throw fail("not an object") }
        let keys = topLevelKeys(String(body))
        guard keys.count == o.count else { throw fail("duplicate keys: \(keys)") }
        var position = -1
        for key in keys {
            guard let i = allowed.firstIndex(of: key) else { throw fail("unknown key \(key)") }
            guard i > position else { throw fail("key \(key) out of order in \(keys)") }
            position = i
        }
        return o
    }

    /// The keys of the outermost object, in the order of the text.
    static func topLevelKeys(_ text: String) -> [String] {
        var keys: [String] = []
        var depth = 0
        var inString = false, escaped = false
        var current = ""
        var lastString = ""
        for c in text {
            if inString {
                if escaped { escaped = false; current.append(c); continue }
                if c == "\\" { escaped = true; current.append(c); continue }
                if c == "\"" { inString = false; lastString = current; continue }
                current.append(c)
                continue
            }
            switch c {
            case "\"": inString = true; current = ""
            case "{", "[": depth += 1
            case "}", "]": depth -= 1
            case ":" where depth == 1: keys.append(lastString)
            default: break
            }
        }
        return keys
    }
}

/// The key=value words of a text line, split by direction: the original
/// tuple's (and its counters), the reply's, and the entry's own.
struct TextFields {
    var original: [String: String] = [:]
    var reply: [String: String] = [:]
    var entry: [String: String] = [:]

    init(_ line: String) {
        var direction = -1
        var own = false
        for word in line.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            guard let eq = word.firstIndex(of: "=") else { continue }
            let key = String(word[..<eq]), value = String(word[word.index(after: eq)...])
            if key == "src", !own { direction += 1 }
            if ["mark", "secmark", "secctx", "zone", "delta-time", "helper", "use", "labels"].contains(key) { own = true }
            if key == "zone-orig" { original["zone"] = value; continue }
            if key == "zone-reply" { reply["zone"] = value; continue }
            if own || direction < 0 {
                entry[key] = value
            } else if direction == 0 {
                original[key] = value
            } else {
                reply[key] = value
            }
        }
    }
}

final class JSONFormatterTests: XCTestCase {
    /// A tuple's JSON object against the decoded tuple: each field there
    /// exactly when the attribute is.
    func check(_ object: Any?, _ t: Tuple?, counters: Counters?, proto: UInt8, path: String) throws {
        guard let t else { XCTAssertNil(object, path); return }
        let o = try XCTUnwrap(object as? [String: Any], path)
        func address(_ a: IPAddress?) -> String? {
            guard let a else { return nil }
            let out = OutputBuffer(fd: -1)
            out.append(address: a)
            return String(decoding: out.pending, as: UTF8.self)
        }
        XCTAssertEqual(o["src"] as? String, address(t.src), path)
        XCTAssertEqual(o["dst"] as? String, address(t.dst), path)
        func number(_ key: String, _ value: UInt64?) {
            XCTAssertEqual((o[key] as? NSNumber)?.uint64Value, value, "\(path).\(key)")
            XCTAssertEqual(o[key] == nil, value == nil, "\(path).\(key)")
        }
        let p = t.proto ?? proto
        if IPProto.hasPorts(p) {
            number("sport", t.srcPort.map(UInt64.init)); number("dport", t.dstPort.map(UInt64.init))
        } else if p == IPProto.gre {
            number("srckey", t.srcPort.map(UInt64.init)); number("dstkey", t.dstPort.map(UInt64.init))
        } else if p == IPProto.icmp || p == IPProto.icmpv6 {
            number("type", t.icmpType.map(UInt64.init)); number("code", t.icmpCode.map(UInt64.init))
            number("id", t.icmpID.map(UInt64.init))
        }
        let c = o["counters"] as? [String: Any]
        XCTAssertEqual(c == nil, counters == nil, path)
        XCTAssertEqual((c?["packets"] as? NSNumber)?.uint64Value, counters?.packets, path)
        XCTAssertEqual((c?["bytes"] as? NSNumber)?.uint64Value, counters?.bytes, path)
    }

    /// The tuple's values against the text line's words for it.
    func check(_ object: Any?, text: [String: String], path: String) throws {
        let o = try XCTUnwrap(object as? [String: Any], path)
        func value(_ key: String) -> String? {
            guard let v = o[key] else { return nil }
            if let s = v as? String { return s }
            return (v as? NSNumber)?.stringValue
        }
        for key in ["src", "dst", "type", "code", "id", "zone"] {
            XCTAssertEqual(value(key), text[key], "\(path).\(key)")
        }
        // The text writes 0 for ports the kernel did not send (dccp
        // without its tracker); JSON leaves them out.
        for key in ["sport", "dport"] { XCTAssertEqual(value(key) ?? (text[key] == nil ? nil : "0"), text[key], "\(path).\(key)") }
        for key in ["srckey", "dstkey"] {
            XCTAssertEqual((o[key] as? NSNumber).map { "0x" + String($0.uint64Value, radix: 16) }, text[key], "\(path).\(key)")
        }
        let c = o["counters"] as? [String: Any]
        XCTAssertEqual((c?["packets"] as? NSNumber)?.stringValue, text["packets"], "\(path).packets")
        XCTAssertEqual((c?["bytes"] as? NSNumber)?.stringValue, text["bytes"], "\(path).bytes")
    }

    /// Every fixture entry: valid against the schema, its values those of
    /// the decoded flow and of the text line for it.
    func testEveryFixtureAgainstSchemaFlowAndText() throws {
        let map = try Fixtures.labelMap()
        let names = try Fixtures.messageNames()
        XCTAssertGreaterThanOrEqual(names.count, 12)
        let now = Int(time(nil))
        var sawLabels = false
        for name in names {
            let flow = try Fixtures.flow(name)
            let line = json(flow, [.ktimestamp], labels: map, now: now)
            let o = try JSONSchema.flow(line)
            let proto = try XCTUnwrap(flow.proto, name)

            // Against the decoded flow.
            XCTAssertEqual(o["family"] as? String, flow.family == .ipv4 ? "ipv4" : "ipv6", name)
            let p = try XCTUnwrap(o["protocol"] as? [String: Any], name)
            XCTAssertEqual((p["number"] as? NSNumber)?.intValue, Int(proto), name)
            XCTAssertEqual(p["name"] as? String, "\(Names.proto(proto))", name)
            try check(o["original"], flow.orig, counters: flow.countersOrig, proto: proto, path: "\(name) original")
            try check(o["reply"], flow.reply, counters: flow.countersReply, proto: proto, path: "\(name) reply")
            XCTAssertEqual(o["state"] as? String, flow.protoInfo.flatMap(Names.state).map { "\($0)" }, name)
            for (key, value) in [("timeout", flow.timeout), ("mark", flow.mark), ("secmark", flow.secmark),
                                 ("use", flow.use), ("id", flow.id), ("zone", flow.zone.map(UInt32.init))] {
                XCTAssertEqual((o[key] as? NSNumber)?.uint32Value, value, "\(name) \(key)")
                XCTAssertEqual(o[key] == nil, value == nil, "\(name) \(key)")
            }
            XCTAssertEqual(o["helper"] as? String, flow.helper, name)
            XCTAssertEqual(o["secctx"] as? String, flow.secctx, name)
            let status = try XCTUnwrap(o["status"] as? [String], name)
            let bits = (0..<32).filter { flow.status!.rawValue & (1 << $0) != 0 }
            XCTAssertEqual(status, bits.map { $0 < 16 ? JSONSchema.statusNames[$0] : "BIT_\($0)" }, name)
            if let labels = flow.labels {
                sawLabels = true
                XCTAssertEqual((o["label_bits"] as? [NSNumber])?.map(\.intValue), labels.bits, name)
                XCTAssertEqual(o["labels"] as? [String], labels.bits.compactMap(map.name(ofBit:)), name)
            } else {
                XCTAssertNil(o["labels"], name); XCTAssertNil(o["label_bits"], name)
            }
            let ts = try XCTUnwrap(o["timestamp"] as? [String: Any], name)
            XCTAssertEqual((ts["start"] as? NSNumber)?.uint64Value, flow.timestampStart, name)
            XCTAssertEqual((ts["stop"] as? NSNumber)?.uint64Value, flow.timestampStop, name)
            XCTAssertEqual((o["delta_time"] as? NSNumber)?.uint64Value, flow.deltaTime(now: now), name)

            // Against the text format's line for the same entry.
            let text = TextFields(format(flow, [.extended, .id, .labels], labels: map, now: now))
            try check(o["original"], text: text.original, path: "\(name) original (text)")
            try check(o["reply"], text: text.reply, path: "\(name) reply (text)")
            func value(_ key: String) -> String? {
                guard let v = o[key] else { return nil }
                return (v as? String) ?? (v as? NSNumber)?.stringValue
            }
            for (ours, theirs) in [("mark", "mark"), ("secmark", "secmark"), ("secctx", "secctx"), ("zone", "zone"),
                                   ("use", "use"), ("id", "id"), ("helper", "helper"), ("delta_time", "delta-time")] {
                XCTAssertEqual(value(ours), text.entry[theirs], "\(name) \(ours)")
            }
            XCTAssertEqual((o["labels"] as? [String])?.joined(separator: ","), text.entry["labels"], name)
            let textLine = format(flow, [.extended], now: now)
            if let state = o["state"] as? String { XCTAssertTrue(textLine.contains(" \(state) src="), name) }
            XCTAssertEqual(status.contains("ASSURED"), textLine.contains("[ASSURED]"), name)
            XCTAssertEqual(!status.contains("SEEN_REPLY"), textLine.contains("[UNREPLIED]"), name)
            let words = textLine.split(separator: " ")
            XCTAssertEqual(words[0], Substring(o["family"] as! String), name)
            XCTAssertEqual(words[2], Substring(p["name"] as! String), name)
            XCTAssertEqual(words[4], Substring(value("timeout")!), name)

            // Without -o ktimestamp and a label map: no timestamp, no names,
            // the bits still there; the id whatever -o id says.
            let plain = try JSONSchema.flow(json(flow, [.extended], now: now))
            XCTAssertNil(plain["timestamp"], name)
            XCTAssertNil(plain["labels"], name)
            XCTAssertEqual(plain["label_bits"] == nil, flow.labels == nil, name)
            XCTAssertEqual((plain["id"] as? NSNumber)?.uint32Value, flow.id, name)
            XCTAssertEqual(json(flow, [.extended, .id, .timestamp, .userspace], now: now), json(flow, [], now: now), name)
        }
        XCTAssertTrue(sawLabels, "a fixture carries labels")
    }

    /// Every field, in the schema's order (pinned).
    func testEveryFieldInOrder() throws {
        var flow = try Fixtures.flow("tcp-0.bin")
        flow.helper = "ftp"
        flow.secmark = 5
        flow.secctx = "system_u:object_r:x_t"
        flow.zone = 6
        flow.orig?.zone = 11
        flow.reply?.zone = 12
        flow.timestampStart = 100_000_000_000
        flow.timestampStop = 160_999_999_999
        var labels = Labels(); labels.words = (1 << 2 | 1 << 5, 1 << 63)
        flow.labels = labels
        flow.id = UInt32.max
        flow.timeout = UInt32.max
        flow.use = 2
        flow.status = Status(rawValue: 0xffff | 1 << 20)
        flow.countersOrig = Counters(packets: 1, bytes: 60)
        flow.countersReply = Counters(packets: UInt64.max, bytes: 0)
        let map = LabelMap(names: [2: "two", 127: "top"])
        let header = JSONFormatter.Header(event: .destroy, time: (1_700_000_000, 42), portID: 77, programName: "nft")
        let line = json(flow, [.ktimestamp, .labels], header: header, labels: map, now: 0)
        XCTAssertEqual(line, #"{"event":"destroy","time":1700000000.000042,"portid":77,"progname":"nft","family":"ipv4","protocol":{"name":"tcp","number":6},"original":{"src":"10.0.0.1","dst":"10.0.0.2","sport":1234,"dport":80,"zone":11,"counters":{"packets":1,"bytes":60}},"reply":{"src":"10.0.0.2","dst":"10.0.0.1","sport":80,"dport":1234,"zone":12,"counters":{"packets":18446744073709551615,"bytes":0}},"state":"ESTABLISHED","timeout":4294967295,"status":["EXPECTED","SEEN_REPLY","ASSURED","CONFIRMED","SRC_NAT","DST_NAT","SEQ_ADJUST","SRC_NAT_DONE","DST_NAT_DONE","DYING","FIXED_TIMEOUT","TEMPLATE","UNTRACKED","HELPER","OFFLOAD","HW_OFFLOAD","BIT_20"],"mark":7,"secmark":5,"secctx":"system_u:object_r:x_t","zone":6,"use":2,"id":4294967295,"helper":"ftp","labels":["two","top"],"label_bits":[2,5,127],"timestamp":{"start":100000000000,"stop":160999999999},"delta_time":60}"# + "\n")
        // Its schema and order (the counter of 2^64-1 aside, which
        // JSONSerialization reads as a double).
        flow.countersReply = Counters(packets: 3, bytes: 0)
        try JSONSchema.flow(json(flow, [.ktimestamp, .labels], header: header, labels: map, now: 0))
        // Without the header's port: no portid and no progname.
        let kernel = json(flow, header: .init(event: .new), now: 0)
        XCTAssertTrue(kernel.hasPrefix(#"{"event":"new","family":"ipv4","#), kernel)
        XCTAssertFalse(kernel.contains("portid"))
        XCTAssertTrue(json(flow, header: .init(event: .update, portID: 0, programName: "x"), now: 0)
            .hasPrefix(#"{"event":"update","family""#))
        XCTAssertTrue(json(flow, header: .init(event: .new, portID: 5), now: 0).hasPrefix(#"{"event":"new","portid":5,"family""#))
        // -o timestamp alone (an expectation listing): the time first.
        XCTAssertTrue(json(flow, header: .init(time: (3, 999_999)), now: 0).hasPrefix(#"{"time":3.999999,"family""#))
        // Labels set but none named: an empty list of names.
        XCTAssertTrue(json(flow, [.labels], labels: LabelMap(names: [1: "one"])).contains(#","helper":"ftp","labels":[],"label_bits":[2,5,127],"#))
        // A live entry: no stop, delta_time to now.
        flow.timestampStop = nil
        XCTAssertTrue(json(flow, [.ktimestamp], now: 1100).hasSuffix(#""timestamp":{"start":100000000000},"delta_time":1000}"# + "\n"))
        flow.timestampStart = nil
        flow.timestampStop = 5_000_000_000
        XCTAssertTrue(json(flow, [.ktimestamp], now: 1100).hasSuffix(#""label_bits":[2,5,127],"timestamp":{"stop":5000000000}}"# + "\n"))
    }

    /// Absent attributes are absent keys, never zeros.
    func testAbsentAttributesAreAbsentKeys() throws {
        var flow = Flow()
        flow.family = Family.ipv4
        XCTAssertEqual(json(flow, [.ktimestamp, .labels], labels: LabelMap(names: [0: "a"]), now: 5), #"{"family":"ipv4"}"# + "\n")
        flow.family = .other(7)
        XCTAssertEqual(json(flow), #"{"family":"unknown"}"# + "\n")
        flow.family = Family.ipv6
        var t = Tuple()
        t.proto = IPProto.tcp
        flow.orig = t
        flow.status = []
        XCTAssertEqual(json(flow), #"{"family":"ipv6","protocol":{"name":"tcp","number":6},"original":{},"status":[]}"# + "\n")
        t.dstPort = 80
        t.src = .v6(0, 1)
        flow.reply = t
        flow.protoInfo = .tcp(TCPInfo())   // no state attribute
        XCTAssertEqual(json(flow), #"{"family":"ipv6","protocol":{"name":"tcp","number":6},"original":{},"reply":{"src":"::1","dport":80},"status":[]}"# + "\n")
        try JSONSchema.flow(json(flow))
    }

    func testProtocolsFields() throws {
        func line(_ proto: UInt8, _ fill: (inout Tuple) -> Void) -> String {
            var f = Flow()
            f.family = Family.ipv4
            var t = Tuple(); t.proto = proto
            fill(&t)
            f.orig = t
            return json(f)
        }
        XCTAssertEqual(line(IPProto.gre) { $0.srcPort = 0x10; $0.dstPort = 0xffff },
                       #"{"family":"ipv4","protocol":{"name":"gre","number":47},"original":{"srckey":16,"dstkey":65535}}"# + "\n")
        XCTAssertEqual(line(IPProto.icmpv6) { $0.icmpType = 128; $0.icmpCode = 0; $0.icmpID = 65535 },
                       #"{"family":"ipv4","protocol":{"name":"icmpv6","number":58},"original":{"type":128,"code":0,"id":65535}}"# + "\n")
        // Ports of the port protocols only; nothing for the others.
        for proto in [IPProto.tcp, IPProto.udp, IPProto.udplite, IPProto.sctp, IPProto.dccp] {
            XCTAssertTrue(line(proto) { $0.srcPort = 1; $0.dstPort = 2 }.contains(#""original":{"sport":1,"dport":2}"#), "\(proto)")
        }
        for proto: UInt8 in [0, 50, 200, 255] {
            let l = line(proto) { $0.srcPort = 1; $0.icmpType = 3 }
            XCTAssertTrue(l.contains(#""original":{}"#), l)
            XCTAssertTrue(l.contains(#""name":"unknown","number":\#(proto)"#), l)
        }
        // States by each protocol's own names.
        func state(_ info: ProtoInfo) -> String? {
            var f = Flow(); f.protoInfo = info
            return (try? JSONSchema.flow(json(f)))?["state"] as? String
        }
        XCTAssertEqual(state(.tcp({ var t = TCPInfo(); t.state = 9; return t }())), "SYN_SENT2")
        XCTAssertEqual(state(.sctp({ var s = SCTPInfo(); s.state = 6; return s }())), "SHUTDOWN_RECD")
        XCTAssertEqual(state(.dccp({ var d = DCCPInfo(); d.state = 4; return d }())), "OPEN")
        XCTAssertEqual(state(.tcp({ var t = TCPInfo(); t.state = 200; return t }())), "UNKNOWN")
    }

    /// Helper names, security contexts, label names and process names with
    /// quotes, backslashes, markup and control characters come back intact
    /// through a JSON parser.
    func testHostileStringsRoundTrip() throws {
        let hostile = "a\"b\\c<d>&e\u{1}\n\t\r\u{1f}\u{7f}é\u{2028}😀/"
        var flow = try Fixtures.flow("udp-0.bin")
        flow.helper = hostile
        flow.secctx = "ctx" + hostile
        var labels = Labels(); labels.words = (1 << 3, 0)
        flow.labels = labels
        let map = LabelMap(names: [3: "label" + hostile])
        flow.timestampStart = nil
        let line = json(flow, [.labels], header: .init(event: .new, portID: 9, programName: "p" + hostile), labels: map)
        XCTAssertTrue(line.contains(#"a\"b\\c<d>&e\u0001\u000a\u0009\u000d\u001f"#), line)
        let o = try JSONSchema.flow(line)
        XCTAssertEqual(o["helper"] as? String, hostile)
        XCTAssertEqual(o["secctx"] as? String, "ctx" + hostile)
        XCTAssertEqual(o["labels"] as? [String], ["label" + hostile])
        XCTAssertEqual(o["progname"] as? String, "p" + hostile)
        // Every control character.
        let controls = String(decoding: (0..<32).map { UInt8($0) }, as: UTF8.self)
        flow.helper = controls
        let parsed = try JSONSchema.flow(json(flow))
        XCTAssertEqual(parsed["helper"] as? String, controls)
        // Invalid UTF-8 from the kernel is U+FFFD by the time it is a String.
        let decoded = ByteView.with([0x66, 0xff, 0xc3, 0x00]) { $0.cString }
        flow.helper = decoded
        XCTAssertEqual(try JSONSchema.flow(json(flow))["helper"] as? String, "f\u{FFFD}\u{FFFD}")
        let out = OutputBuffer(fd: -1)
        JSONFormatter.appendString("", to: out)
        JSONFormatter.appendString("plain", to: out)
        JSONFormatter.appendString("\\", to: out)
        XCTAssertEqual(String(decoding: out.pending, as: UTF8.self), #""""plain""\\""#)
    }

    // MARK: expectations

    func expectations() throws -> [(String, Expectation)] {
        let names = try FileManager.default.contentsOfDirectory(atPath: ExpectationTests.directory.path)
            .filter { $0.hasSuffix(".bin") }.sorted()
        XCTAssertEqual(names.count, 6)
        return try names.map { name in
            let bytes = [UInt8](try Data(contentsOf: ExpectationTests.directory.appendingPathComponent(name)))
            return (name, try ByteView.with(bytes) { try Decoder.expectation($0) })
        }
    }

    func testEveryExpectationFixture() throws {
        var sawNAT = false, sawFlags = false
        for (name, e) in try expectations() {
            let line = json(e)
            let o = try JSONSchema.expectation(line)
            let proto = try XCTUnwrap(e.proto, name)
            XCTAssertEqual(o["family"] as? String, e.family == .ipv4 ? "ipv4" : "ipv6", name)
            let p = try XCTUnwrap(o["protocol"] as? [String: Any], name)
            XCTAssertEqual((p["number"] as? NSNumber)?.intValue, Int(proto), name)
            try check(o["expected"], e.tuple, counters: nil, proto: proto, path: "\(name) expected")
            try check(o["mask"], e.mask, counters: nil, proto: proto, path: "\(name) mask")
            try check(o["master"], e.master, counters: nil, proto: proto, path: "\(name) master")
            for (key, value) in [("timeout", e.timeout), ("id", e.id), ("class", e.expectClass), ("zone", e.zone.map(UInt32.init))] {
                XCTAssertEqual((o[key] as? NSNumber)?.uint32Value, value, "\(name) \(key)")
                XCTAssertEqual(o[key] == nil, value == nil, "\(name) \(key)")
            }
            XCTAssertEqual(o["helper"] as? String, e.helper, name)
            XCTAssertEqual(o["function"] as? String, e.function, name)
            if let flags = e.flags {
                let names = ["PERMANENT", "INACTIVE", "USERSPACE"].enumerated()
                    .filter { flags.rawValue & (1 << $0.offset) != 0 }.map(\.element)
                XCTAssertEqual(o["flags"] as? [String], names, name)
                sawFlags = sawFlags || !names.isEmpty
            } else {
                XCTAssertNil(o["flags"], name)
            }
            if let nat = e.nat {
                sawNAT = true
                let n = try XCTUnwrap(o["nat"] as? [String: Any], name)
                XCTAssertEqual((n["direction"] as? NSNumber)?.uint32Value, nat.direction, name)
                try check(n["tuple"], nat.tuple, counters: nil, proto: proto, path: "\(name) nat.tuple")
            } else {
                XCTAssertNil(o["nat"], name)
            }

            // Against the text line: "T proto=N" and the three tuples.
            let out = OutputBuffer(fd: -1)
            ExpectFormatter(options: []).write(e, to: out)
            let text = String(decoding: out.pending.dropLast(), as: UTF8.self)
            let words = text.split(separator: " ").map(String.init)
            XCTAssertEqual(words[0], (o["timeout"] as? NSNumber)?.stringValue, name)
            XCTAssertEqual(words[1], "proto=\(p["number"]!)", name)
            let tuples = ["expected": ("src=", "dst="), "mask": ("mask-src=", "mask-dst="), "master": ("master-src=", "master-dst=")]
            for (key, (src, dst)) in tuples {
                let t = try XCTUnwrap(o[key] as? [String: Any], name)
                let i = try XCTUnwrap(words.firstIndex(of: src + (t["src"] as! String)), "\(name) \(key)")
                XCTAssertEqual(words[i + 1], dst + (t["dst"] as! String), "\(name) \(key)")
                XCTAssertEqual(words[i + 2], "sport=\(t["sport"]!)", "\(name) \(key)")
                XCTAssertEqual(words[i + 3], "dport=\(t["dport"]!)", "\(name) \(key)")
            }
            if let helper = o["helper"] as? String { XCTAssertTrue(words.contains("helper=\(helper)"), name) }
            if let c = o["class"] { XCTAssertTrue(words.contains("class=\(c)"), name) }
            if let flags = o["flags"] as? [String], !flags.isEmpty {
                XCTAssertTrue(words.contains(flags.joined(separator: ",")), name)
            }
        }
        XCTAssertTrue(sawNAT, "a fixture has CTA_EXPECT_NAT")
        XCTAssertTrue(sawFlags, "a fixture has flags")
    }

    func testExpectationPinned() throws {
        var e = Expectation()
        e.family = Family.ipv4
        var t = Tuple(); t.src = .v4(0x7f00_0001); t.dst = .v4(0x7f00_0001); t.proto = IPProto.tcp; t.srcPort = 0; t.dstPort = 40001
        e.tuple = t
        var m = Tuple(); m.src = .v4(0xffff_ffff); m.dst = .v4(0xffff_ffff); m.proto = IPProto.tcp; m.srcPort = 0; m.dstPort = 65535
        e.mask = m
        var master = t; master.srcPort = 40354; master.dstPort = 2121
        e.master = master
        e.timeout = 299; e.id = 7; e.helper = "ftp"; e.zone = 3
        e.flags = ExpectFlags(rawValue: 0x7 | 1 << 9)
        e.expectClass = 0
        var nat = ExpectNAT(); nat.direction = 1; nat.tuple = t
        e.nat = nat
        e.function = "nat-follow-master"
        XCTAssertEqual(json(e, header: .init(event: .new)), #"{"event":"new","family":"ipv4","protocol":{"name":"tcp","number":6},"expected":{"src":"127.0.0.1","dst":"127.0.0.1","sport":0,"dport":40001},"mask":{"src":"255.255.255.255","dst":"255.255.255.255","sport":0,"dport":65535},"master":{"src":"127.0.0.1","dst":"127.0.0.1","sport":40354,"dport":2121},"timeout":299,"id":7,"helper":"ftp","zone":3,"flags":["PERMANENT","INACTIVE","USERSPACE","BIT_9"],"class":0,"nat":{"direction":1,"tuple":{"src":"127.0.0.1","dst":"127.0.0.1","sport":0,"dport":40001}},"function":"nat-follow-master"}"# + "\n")
        e.flags = nil
        try JSONSchema.expectation(json(e, header: .init(event: .destroy, time: (1, 2))))
        // Nothing but the family.
        var bare = Expectation()
        bare.family = Family.ipv6
        XCTAssertEqual(json(bare), #"{"family":"ipv6"}"# + "\n")
        bare.nat = ExpectNAT()
        bare.flags = []
        XCTAssertEqual(json(bare), #"{"family":"ipv6","flags":[],"nat":{}}"# + "\n")
    }

    /// The schema checker itself refuses what it should.
    func testSchemaCheckerRefuses() {
        for bad in [#"{"family":"ipv4","bogus":1}"#, #"{"protocol":{"name":"tcp","number":6},"family":"ipv4"}"#,
                    #"{"family":"ipv4","mark":"1"}"#, #"{"family":"ipv4","mark":-1}"#, #"{"family":"ipv4","mark":1.5}"#,
                    #"{"family":"ipv4","original":{"sport":70000}}"#, #"{"family":"ipv4","status":["NOPE"]}"#,
                    #"{"family":"ipv4","labels":[]}"#, #"{"family":"ipv4","original":{"zone":1,"bogus":2}}"#,
                    #"{"family":"ipv4","mark":1,"mark":2}"#, #"{"family":"ipx"}"#] {
            XCTAssertThrowsError(try JSONSchema.flow(bad + "\n"), bad)
        }
        XCTAssertThrowsError(try JSONSchema.expectation(#"{"family":"ipv4","expected":{"counters":{"packets":1,"bytes":1}}}"# + "\n"))
        XCTAssertEqual(JSONSchema.topLevelKeys(#"{"a":{"b":1},"c":"x\":y","d":[{"e":1}]}"#), ["a", "c", "d"])
    }
}
