import CGetopt
import CTCore
import Glibc

/// Commands, one per invocation (conntrack's CT_* / EXP_* command bits).
enum Command: String {
    case list = "L", create = "I", add = "A", update = "U", delete = "D", get = "G"
    case flush = "F", event = "E", count = "C", stats = "S", version = "V", help = "h"
    case load = "R"
}

/// The table a command works on.
enum Table: String {
    case conntrack, expect, dying, unconfirmed
}

/// Options in conntrack's order: when several are illegal or missing, the
/// first in this order is the one reported.
enum Opt: Int, CaseIterable, Comparable {
    case src, dst, replySrc, replyDst, proto, timeout, status, zero, eventMask
    case tupleSrc, tupleDst, maskSrc, maskDst, natRange, mark, id, family
    case srcNat, dstNat, output, secmark, bufferSize, anyNat, zone
    case label, labelAdd, labelDel, origZone, replyZone

    /// The long name conntrack uses in its messages.
    var longName: String {
        switch self {
        case .src: return "src"
        case .dst: return "dst"
        case .replySrc: return "reply-src"
        case .replyDst: return "reply-dst"
        case .proto: return "protonum"
        case .timeout: return "timeout"
        case .status: return "status"
        case .zero: return "zero"
        case .eventMask: return "event-mask"
        case .tupleSrc: return "tuple-src"
        case .tupleDst: return "tuple-dst"
        case .maskSrc: return "mask-src"
        case .maskDst: return "mask-dst"
        case .natRange: return "nat-range"
        case .mark: return "mark"
        case .id: return "id"
        case .family: return "family"
        case .srcNat: return "src-nat"
        case .dstNat: return "dst-nat"
        case .output: return "output"
        case .secmark: return "secmark"
        case .bufferSize: return "buffer-size"
        case .anyNat: return "any-nat"
        case .zone: return "zone"
        case .label: return "label"
        case .labelAdd: return "label-add"
        case .labelDel: return "label-del"
        case .origZone: return "orig-zone"
        case .replyZone: return "reply-zone"
        }
    }

    static func < (a: Opt, b: Opt) -> Bool { a.rawValue < b.rawValue }
}

/// A set of options, one bit each (a hash set costs too much when -R
/// parses a hundred thousand lines).
struct OptSet: Equatable, ExpressibleByArrayLiteral {
    private(set) var bits: UInt64 = 0

    init() {}
    init(arrayLiteral elements: Opt...) { for o in elements { insert(o) } }
    init<S: Sequence>(_ elements: S) where S.Element == Opt { for o in elements { insert(o) } }

    static let all = OptSet(Opt.allCases)
    var isEmpty: Bool { bits == 0 }
    func contains(_ o: Opt) -> Bool { bits & (1 << UInt64(o.rawValue)) != 0 }
    mutating func insert(_ o: Opt) { bits |= 1 << UInt64(o.rawValue) }
    mutating func formUnion(_ other: OptSet) { bits |= other.bits }
    func subtracting(_ other: OptSet) -> OptSet { var r = self; r.bits &= ~other.bits; return r }
    func isDisjoint(with other: OptSet) -> Bool { bits & other.bits == 0 }
    /// The options in conntrack's order.
    func sorted() -> [Opt] { Opt.allCases.filter(contains) }
}

/// What the command line asks for, in parts: the command and its table,
/// the options given (for conntrack's checks), what selects entries, how
/// they are printed, what -I/-A/-U set, -E's options and -I expect's tuples.
struct Invocation {
    var command: Command?
    var table: Table = .conntrack
    /// The options given, and the protocol-specific ones given after -p
    /// (e.g. "sport").
    var options = OptSet()
    var protoOptions: [String] = []
    /// -o.
    var output = OutputOptions()
    /// What selects entries (-s, -d, -p and its options, -m, -u, -w, ...).
    var selection = Selection()
    /// What -I, -A and -U set beyond the selector's values.
    var change = ChangeOptions()
    /// -E's options.
    var events = EventOptions()
    /// The expected connection and mask of -I expect.
    var expectation = ExpectationOptions()
    /// -R's file name, as its bytes came (they need not be UTF-8).
    var loadFile: [UInt8]?
    /// ctl's own options (--netns, --group-by, ...), taken out of the
    /// command line before conntrack's options were parsed.
    var own = OwnOptions()

    /// Protocol options conntrack refuses with the selecting commands: the
    /// first of them in conntrack's table order (not the order given).
    var illegalProtoOption: String? {
        refusedProtoOptions.first(where: protoOptions.contains)
    }
}

/// What selects entries. -I, -A and -U also read the values they set (-m,
/// -t, -u, --state, ...) from the selector; each command derives the
/// selector it selects with from this one (see Invocation.selector(for:)).
struct Selection {
    /// -f, or the family the addresses have.
    var family: Family?
    var selector = Selector()
    /// --mask-src / --mask-dst, applied to -s / -d once all are parsed.
    var maskSrc: IPAddress?
    var maskDst: IPAddress?
    /// -l label names, resolved when a command runs.
    var labelNames: [String] = []
    /// conntrack 1.4.7's options that select nothing though selecting
    /// commands take them: --srckey/--dstkey (GRE keys, which name the
    /// entry of -G and -I), --orig-vtag/--reply-vtag (values for -I and
    /// -U), -c (secmark).
    var greSrcKey: UInt16?
    var greDstKey: UInt16?
    var origVtag: UInt32?
    var replyVtag: UInt32?
    var secmark: UInt32?
    /// conntrack 1.4.7's -m before -u: -u replaces the mark with its status
    /// bits, and -L, -G and -E then want both the replaced value (this) and
    /// the new one under the mask (see Invocation.quirkCheck).
    var listMark: UInt32?
}

/// What -I, -A and -U set beyond the selector's values.
struct ChangeOptions {
    /// --label-add names (repeats add up).
    var labelAddNames: [String] = []
    /// --label-del names: nil when not given, empty for a bare --label-del.
    var labelDelNames: [String]?
    /// --reply-key-src / --reply-key-dst (gre), used by -I/-A.
    var replyKeySrc: UInt16?
    var replyKeyDst: UInt16?
}

/// -E's options.
struct EventOptions {
    /// -e: the event groups asked for (none given: all).
    var groups = EventGroups()
    /// -b: the event socket's receive buffer, in bytes.
    var bufferSize: Int32?
}

/// The expected connection of -I expect: --tuple-src / --tuple-dst and the
/// protocol's --tuple-port-src/-dst (gre: --tuple-key-src/-dst); and the
/// expectation's mask: --mask-src / --mask-dst, or the netmask of the last
/// -s / -d / --tuple-src / --tuple-dst given with a prefix length
/// (conntrack keeps whichever came last), and the protocol's
/// --mask-port-src/-dst (gre: --mask-key-src/-dst).
struct ExpectationOptions {
    var src: IPAddress?
    var dst: IPAddress?
    var srcPort: UInt16?
    var dstPort: UInt16?
    var maskSrc: IPAddress?
    var maskDst: IPAddress?
    var maskSrcPort: UInt16?
    var maskDstPort: UInt16?
}

private let tcpStateNames = Names.tcpStates.map { "\($0)" }
private let sctpStateNames = Names.sctpStates.map { "\($0)" }
private let dccpStateNames = Names.dccpStates.map { "\($0)" }

/// In the order of conntrack's protocol tables (masks, tuples, then sctp's
/// vtags or dccp's role).
let refusedProtoOptions: [String] = [
    "mask-port-src", "mask-port-dst", "tuple-port-src", "tuple-port-dst",
    "mask-key-src", "mask-key-dst", "tuple-key-src", "tuple-key-dst",
    "orig-vtag", "reply-vtag", "role",
]

/// One getopt_long option: name, argument kind (0 none, 1 required,
/// 2 optional) and the value getopt returns for it.
private struct LongOption {
    let name: String
    let hasArg: Int32
    let value: Int32
    init(_ name: String, _ hasArg: Int32, _ value: Character) {
        self.name = name
        self.hasArg = hasArg
        self.value = Int32(value.asciiValue!)
    }
    init(_ name: String, _ hasArg: Int32, code: Int32) {
        self.name = name
        self.hasArg = hasArg
        self.value = code
    }
}

/// conntrack's options. Protocol options join the table once -p names a
/// protocol, as they do in conntrack.
private let baseOptions: [LongOption] = [
    .init("dump", 2, "L"), .init("create", 2, "I"), .init("add", 2, "A"),
    .init("delete", 2, "D"), .init("update", 2, "U"), .init("get", 2, "G"),
    .init("flush", 2, "F"), .init("event", 2, "E"), .init("counter", 2, "C"),
    .init("stats", 0, "S"), .init("version", 0, "V"), .init("help", 0, "h"),
    .init("orig-src", 1, "s"), .init("src", 1, "s"), .init("orig-dst", 1, "d"),
    .init("dst", 1, "d"), .init("reply-src", 1, "r"), .init("reply-dst", 1, "q"),
    .init("protonum", 1, "p"), .init("timeout", 1, "t"), .init("status", 1, "u"),
    .init("zone", 1, "w"), .init("event-mask", 1, "e"), .init("tuple-src", 1, "["),
    .init("tuple-dst", 1, "]"), .init("mask-src", 1, "{"), .init("mask-dst", 1, "}"),
    .init("nat-range", 1, "a"), .init("mark", 1, "m"), .init("secmark", 1, "c"),
    .init("id", 2, "i"), .init("family", 1, "f"), .init("src-nat", 2, "n"),
    .init("dst-nat", 2, "g"), .init("output", 1, "o"), .init("buffer-size", 1, "b"),
    .init("any-nat", 2, "j"), .init("zero", 0, "z"), .init("label", 1, "l"),
    .init("label-add", 1, "<"), .init("label-del", 2, ">"), .init("orig-zone", 1, "("),
    .init("reply-zone", 1, ")"),
]

private let shortOptions = ":L::I::U::D::G::E::F::A::hVs:d:r:q:p:t:u:e:a:z[:]:{:}:m:i:f:o:n::g::c:b:C::Sj::w:l:<:>::(:):"

/// Protocol option codes start here (above any character code).
private let protoOptionBase: Int32 = 1000

/// Protocol-specific long options conntrack accepts after -p.
private func protocolOptions(_ proto: UInt8) -> [String] {
    let ports = ["orig-port-src", "sport", "orig-port-dst", "dport", "reply-port-src",
                 "reply-port-dst", "mask-port-src", "mask-port-dst", "tuple-port-src", "tuple-port-dst"]
    switch proto {
    case IPProto.tcp: return ports + ["state"]
    case IPProto.udp, IPProto.udplite: return ports
    case IPProto.sctp: return ports + ["state", "orig-vtag", "reply-vtag"]
    case IPProto.dccp: return ports + ["state", "role"]
    case IPProto.icmp: return ["icmp-type", "icmp-code", "icmp-id"]
    case IPProto.icmpv6: return ["icmpv6-type", "icmpv6-code", "icmpv6-id"]
    case IPProto.gre: return ["orig-key-src", "srckey", "orig-key-dst", "dstkey", "reply-key-src", "reply-key-dst",
                              "mask-key-src", "mask-key-dst", "tuple-key-src", "tuple-key-dst"]
    default: return []
    }
}

/// The long options in force: the base ones, or those and a protocol's
/// (-p adds them); as a C table for getopt_long and as a table for the
/// fast path. Made once each (-R parses many lines).
private final class OptionTable {
    /// The protocol options, whose codes are protoOptionBase + index, and
    /// what each sets.
    let extraNames: [String]
    let extraOptions: [ProtoOption]
    let cTable: UnsafeMutablePointer<option>
    private let count: Int
    /// The C table's options sorted by name length (in the table's order
    /// within a length); those of length n at `firstOfLength[n]..<firstOfLength[n + 1]`.
    private let byLength: [option]
    private let firstOfLength: [Int]

    init(_ extraNames: [String]) {
        self.extraNames = extraNames
        extraOptions = extraNames.map(ProtoOption.init)
        let options = baseOptions + extraNames.enumerated().map {
            LongOption($0.element, 1, code: protoOptionBase + Int32($0.offset))
        }
        let table = cOptions(options)
        cTable = table
        count = options.count
        let entries = (0..<options.count).map { table[$0] }
        let longest = options.map { $0.name.utf8.count }.max() ?? 0
        var byLength: [option] = []
        var firstOfLength: [Int] = []
        for length in 0...longest + 1 {
            firstOfLength.append(byLength.count)
            byLength += entries.filter { strlen($0.name) == length }
        }
        self.byLength = byLength
        self.firstOfLength = firstOfLength
    }

    deinit {
        for i in 0..<count { free(UnsafeMutableRawPointer(mutating: cTable[i].name)) }
        cTable.deallocate()
    }

    /// The option named exactly `name` (`length` bytes, no '='): the first
    /// in the table's order, as getopt_long takes an exact match.
    func exact(_ name: UnsafePointer<CChar>, _ length: Int) -> (hasArg: Int32, value: Int32)? {
        guard length + 1 < firstOfLength.count else { return nil }
        for i in firstOfLength[length]..<firstOfLength[length + 1]
        where byLength[i].name[0] == name[0] && memcmp(byLength[i].name, name, length) == 0 {
            return (byLength[i].has_arg, byLength[i].val)
        }
        return nil
    }
}

/// The parser's tables and buffers, made once per run (-R parses many
/// lines) and kept by the Session.
final class ArgumentParser {
    /// The table without protocol options, and one per protocol number
    /// that has options, made when first needed.
    private let baseTable = OptionTable([])
    private var protocolTables = [OptionTable?](repeating: nil, count: 256)
    /// shortOptions as the C string getopt_long reads.
    let cShortOptions: UnsafeMutablePointer<CChar> = strdup(shortOptions)!
    /// The options the fast path found, reused from line to line of a -R
    /// file.
    fileprivate var scanned: [ScannedOption] = []
    /// Whether parseArguments may take the fast path (the argument fuzzer
    /// turns it off to compare the two paths).
    var useFastPath = true

    deinit { free(cShortOptions) }

    /// The table of the base options alone.
    fileprivate var base: OptionTable { baseTable }

    /// The table once -p named `proto`; `withOptions`: whether the name
    /// brings the protocol's options (see protocolHasOptions).
    fileprivate func optionTable(forProtocol proto: UInt8, withOptions: Bool) -> OptionTable {
        guard withOptions else { return baseTable }
        if let table = protocolTables[Int(proto)] { return table }
        let names = protocolOptions(proto)
        let table = names.isEmpty ? baseTable : OptionTable(names)
        protocolTables[Int(proto)] = table
        return table
    }
}

/// A C `struct option` array, its names strdup'ed (OptionTable frees both).
private func cOptions(_ options: [LongOption]) -> UnsafeMutablePointer<option> {
    let table = UnsafeMutablePointer<option>.allocate(capacity: options.count + 1)
    for (i, o) in options.enumerated() {
        table[i] = option(name: strdup(o.name), has_arg: o.hasArg, flag: nil, val: o.value)
    }
    table[options.count] = option(name: nil, has_arg: 0, flag: nil, val: 0)
    return table
}

/// Each short option's argument kind (0 none, 1 required, 2 optional), by
/// its byte; -1 for bytes getopt does not take as options.
private let shortOptionKinds: [Int8] = {
    var kinds = [Int8](repeating: -1, count: 256)
    let bytes = Array(shortOptions.utf8)
    var i = bytes.first == UInt8(ascii: ":") ? 1 : 0
    while i < bytes.count {
        let c = bytes[i]
        var colons: Int8 = 0
        while i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: ":"), colons < 2 {
            colons += 1
            i += 1
        }
        // getopt takes a character's first appearance.
        if kinds[Int(c)] < 0 { kinds[Int(c)] = colons }
        i += 1
    }
    return kinds
}()

/// One option as getopt_long would return it: its code, optarg, and optind
/// after it (before the option's handler takes a word as an optional
/// argument).
private struct ScannedOption {
    var code: Int32
    var argument: UnsafeMutablePointer<CChar>?
    var next: Int32
}

/// The fast path: argv's options as getopt_long returns them, found
/// without it, for the plain argv where the outcome is bound to be
/// getopt's: every word an option given as `-c` or by its whole long name
/// (`--name`, no `=value`), or the argument of one before it (the next
/// word for a required argument; the words the handlers take as optional
/// arguments). Anything else (a word that is no option, abbreviations,
/// `--`, clusters, attached arguments, unknown options, a missing argument,
/// a protocol -p does not know) returns false: getopt_long then parses
/// the whole argv, and gives the errors.
private func scanOptions(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>,
                         _ parser: ArgumentParser, into options: inout [ScannedOption]) -> Bool {
    options.removeAll(keepingCapacity: true)
    var table = parser.base
    let shortKinds = shortOptionKinds
    var i: Int32 = 1
    while i < argc {
        guard let word = argv[Int(i)], word[0] == 0x2d /* - */, word[1] != 0 else { return false }
        var code: Int32
        var hasArg: Int32
        if word[1] == 0x2d {
            // --name: only a whole name, without "=value".
            let name = word + 2
            let length = strlen(name)
            guard length > 0, memchr(name, 0x3d /* = */, length) == nil,
                  let found = table.exact(name, length) else { return false }
            (hasArg, code) = found
        } else {
            // -c alone.
            guard word[2] == 0 else { return false }
            let c = UInt8(bitPattern: word[1])
            let kind = shortKinds[Int(c)]
            guard kind >= 0 else { return false }
            (hasArg, code) = (Int32(kind), Int32(c))
        }
        i += 1
        var argument: UnsafeMutablePointer<CChar>? = nil
        if hasArg == 1 {
            guard i < argc else { return false }
            argument = argv[Int(i)]
            i += 1
        }
        options.append(ScannedOption(code: code, argument: argument, next: i))
        // The words the handler takes as an optional argument (see
        // optionalNext in parseArguments).
        switch code {
        case Int32(UInt8(ascii: "L")), Int32(UInt8(ascii: "I")), Int32(UInt8(ascii: "A")), Int32(UInt8(ascii: "U")),
             Int32(UInt8(ascii: "D")), Int32(UInt8(ascii: "G")), Int32(UInt8(ascii: "F")), Int32(UInt8(ascii: "E")),
             Int32(UInt8(ascii: "C")), Int32(UInt8(ascii: "S")), Int32(UInt8(ascii: "i")), Int32(UInt8(ascii: "n")),
             Int32(UInt8(ascii: "g")), Int32(UInt8(ascii: "j")), Int32(UInt8(ascii: ">")):
            if argument == nil, i < argc, let p = argv[Int(i)], p[0] != 0x2d, p[0] != 0x21 { i += 1 }
        case Int32(UInt8(ascii: "p")):
            let name = String(cString: argument!)
            guard let number = protocolNumber(name) else { return false }
            table = parser.optionTable(forProtocol: number, withOptions: protocolHasOptions(name))
        default:
            break
        }
    }
    return true
}

/// Parses argv as conntrack does: GNU getopt_long (abbreviations, argument
/// permutation, optional arguments), one command, an optional table name
/// after the command, `-o a,b,c` lists.
///
/// `inFile` parses a line of a -R file: -R itself is then unknown. The
/// session gives the parser's tables and takes its warnings.
func parseArguments(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>,
                    inFile: Bool = false, in session: Session) throws(Failure) -> Invocation {
    var inv = Invocation()
    func arg(_ i: Int32) -> String? {
        guard i < argc, let p = argv[Int(i)] else { return nil }
        return String(cString: p)
    }

    // conntrack takes -R/--load-file only as the first argument.
    if !inFile, argc >= 3, let first = arg(1), first == "-R" || first == "--load-file" {
        // The file is opened (once: it may be a pipe) when it is loaded.
        inv.command = .load
        inv.loadFile = Array(UnsafeRawBufferPointer(start: argv[2]!, count: strlen(argv[2]!)))
        return inv
    }

    let parser = session.parser
    let console = session.console
    var table = parser.base
    // The options, found by the fast path when it can; else by getopt_long.
    var scanned = parser.scanned
    parser.scanned = []
    defer { parser.scanned = scanned }
    let fast = parser.useFastPath && scanOptions(argc, argv, parser, into: &scanned)
    var nextScanned = 0
    // getopt_long's optarg and optind, as it leaves them after an option
    // (or as the fast path finds them), for the option handlers.
    var optarg: UnsafeMutablePointer<CChar>? = nil
    var optind: Int32 = 0
    ctl_getopt_set_print_errors(0)
    // 0 makes glibc start afresh (a -R file parses one line after another).
    ctl_getopt_set_index(0)

    func setCommand(_ c: Command) throws(Failure) {
        if inv.command != nil { throw .parameter("Invalid commands combination") }
        inv.command = c
    }
    // An optional argument, as conntrack takes it: only from a separate
    // next word that is not an option; "--src-nat=ADDR" and "-nADDR" count
    // as the bare option.
    func optionalNext() -> String? {
        if optarg != nil { return nil }
        if optind < argc, let p = argv[Int(optind)], p[0] != 0x2d /* - */, p[0] != 0x21 /* ! */ {
            optind += 1
            // getopt_long goes on after the word taken.
            ctl_getopt_set_index(optind)
            return String(cString: p)
        }
        return nil
    }
    func tableArgument() throws(Failure) {
        // An argument glued to the command ("-Lfoo", "--dump=foo") is
        // ignored, as conntrack does; otherwise the next word, unless it
        // is an option, names the table.
        if let name = optionalNext() {
            // Any prefix of a table name selects it, in this order.
            guard let t = [Table.expect, .conntrack, .dying, .unconfirmed].first(where: { $0.rawValue.hasPrefix(name) }) else {
                throw .parameter("unknown type `\(name)'")
            }
            inv.table = t
        }
        // What conntrack refuses as soon as it reads the command.
        let command = inv.command!
        if inv.table == .dying || inv.table == .unconfirmed, command != .list {
            throw .parameter("Can't do that command with tables `dying' and `unconfirmed'")
        }
        if inv.table == .expect, command == .update || command == .add {
            throw .parameter("Can't do --\(command == .update ? "update" : "add") on expectations")
        }
    }
    func add(_ o: Opt) { inv.options.insert(o) }

    while true {
        let c: Int32
        if fast {
            if nextScanned == scanned.count { break }
            let o = scanned[nextScanned]
            nextScanned += 1
            // As getopt_long leaves them.
            optarg = o.argument
            optind = o.next
            c = o.code
        } else {
            c = getopt_long(argc, argv, parser.cShortOptions, table.cTable, nil)
            if c == -1 { break }
            optarg = ctl_getopt_argument()
            optind = ctl_getopt_index()
        }
        // The word getopt stopped at, for messages only.
        var current: String { optind > 0 ? (arg(optind - 1) ?? "") : "" }
        if c >= protoOptionBase {
            let index = Int(c - protoOptionBase)
            if inv.protoOptions.isEmpty { inv.protoOptions.reserveCapacity(4) }
            inv.protoOptions.append(table.extraNames[index])
            try parseProtocolOption(table.extraOptions[index], optarg!, &inv)
            continue
        }
        switch UInt8(truncatingIfNeeded: c) {
        case UInt8(ascii: "?"):
            throw .parameter("unknown option `\(current)'")
        case UInt8(ascii: ":"):
            throw .parameter("option `\(current)' requires an argument")
        case UInt8(ascii: "L"): try setCommand(.list); try tableArgument()
        case UInt8(ascii: "I"): try setCommand(.create); try tableArgument()
        case UInt8(ascii: "A"): try setCommand(.add); try tableArgument()
        case UInt8(ascii: "U"): try setCommand(.update); try tableArgument()
        case UInt8(ascii: "D"): try setCommand(.delete); try tableArgument()
        case UInt8(ascii: "G"): try setCommand(.get); try tableArgument()
        case UInt8(ascii: "F"): try setCommand(.flush); try tableArgument()
        case UInt8(ascii: "E"): try setCommand(.event); try tableArgument()
        case UInt8(ascii: "C"): try setCommand(.count); try tableArgument()
        case UInt8(ascii: "S"): try setCommand(.stats); try tableArgument()
        case UInt8(ascii: "V"): try setCommand(.version); try tableArgument()
        case UInt8(ascii: "h"): try setCommand(.help); try tableArgument()
        case UInt8(ascii: "s"):
            add(.src)
            let (m, cidr) = try parseAddress(optarg, &inv.selection.family, option: "src")
            inv.selection.selector.origSrc = m
            if cidr { add(.maskSrc); inv.expectation.maskSrc = m.mask }
        case UInt8(ascii: "d"):
            add(.dst)
            let (m, cidr) = try parseAddress(optarg, &inv.selection.family, option: "dst")
            inv.selection.selector.origDst = m
            if cidr { add(.maskDst); inv.expectation.maskDst = m.mask }
        case UInt8(ascii: "r"): add(.replySrc); inv.selection.selector.replySrc = try parseAddress(optarg, &inv.selection.family, option: "reply-src", cidr: false).0
        case UInt8(ascii: "q"): add(.replyDst); inv.selection.selector.replyDst = try parseAddress(optarg, &inv.selection.family, option: "reply-dst", cidr: false).0
        case UInt8(ascii: "["):
            add(.tupleSrc)
            let (m, cidr) = try parseAddress(optarg, &inv.selection.family, option: "tuple-src")
            inv.expectation.src = m.address
            if cidr { add(.maskSrc); inv.expectation.maskSrc = m.mask }
        case UInt8(ascii: "]"):
            add(.tupleDst)
            let (m, cidr) = try parseAddress(optarg, &inv.selection.family, option: "tuple-dst")
            inv.expectation.dst = m.address
            if cidr { add(.maskDst); inv.expectation.maskDst = m.mask }
        case UInt8(ascii: "{"):
            add(.maskSrc)
            inv.selection.maskSrc = try parseAddress(optarg, &inv.selection.family, option: "mask-src", cidr: false).0.address
            inv.expectation.maskSrc = inv.selection.maskSrc
        case UInt8(ascii: "}"):
            add(.maskDst)
            inv.selection.maskDst = try parseAddress(optarg, &inv.selection.family, option: "mask-dst", cidr: false).0.address
            inv.expectation.maskDst = inv.selection.maskDst
        case UInt8(ascii: "p"):
            add(.proto)
            let name = String(cString: optarg!)
            guard let number = protocolNumber(name) else { throw .parameter("`\(name)' unsupported protocol") }
            inv.selection.selector.proto = number
            // Options come with conntrack's own protocol names and numbers,
            // not with names found in /etc/protocols.
            table = parser.optionTable(forProtocol: number, withOptions: protocolHasOptions(name))
        case UInt8(ascii: "t"):
            add(.timeout)
            inv.selection.selector.timeout = try number(optarg!, max: UInt32.max, what: "timeout")
        case UInt8(ascii: "u"):
            add(.status)
            var bits = Status()
            try parseList(optarg!, names: statusNameList) { (index: Int) throws(Failure) in
                // conntrack matches the old NAT names first and only warns.
                if index < 2 { try console.raw("WARNING: ignoring \(statusNames[index].0), use --\(index == 0 ? "src" : "dst")-nat instead") }
                bits.formUnion(statusNames[index].1)
            }
            // All -u values are ORed; the first -u that gives bits is the mask.
            if inv.selection.selector.statusMask.isEmpty { inv.selection.selector.statusMask = bits }
            inv.selection.selector.status = (inv.selection.selector.status ?? []).union(bits)
            // conntrack 1.4.7 quirk, reproduced: a -u after -m replaces the
            // mark value with the status bits.
            if let mark = inv.selection.selector.mark {
                inv.selection.listMark = inv.selection.listMark ?? mark
                inv.selection.selector.mark = inv.selection.selector.status!.rawValue
            }
        case UInt8(ascii: "e"):
            add(.eventMask)
            // Several -e add up.
            try parseList(optarg!, names: eventNameList) { inv.events.groups.formUnion(eventGroupsByName[$0]) }
        case UInt8(ascii: "z"): add(.zero)
        case UInt8(ascii: "a"):
            try console.raw("WARNING: ignoring -a, deprecated option.")
        case UInt8(ascii: "m"):
            add(.mark)
            // MARK[/MASK]: the mask after the first '/'.
            let text = optarg!
            let slash = strchr(text, 0x2f /* / */)
            let markLength = slash.map { $0 - text } ?? strlen(text)
            inv.selection.selector.mark = try number(text, markLength, max: UInt32.max, what: "mark", whole: text)
            inv.selection.listMark = nil
            inv.selection.selector.markMask = try slash.map { (slash) throws(Failure) in
                try number(slash + 1, strlen(slash + 1), max: UInt32.max, what: "mark mask", whole: text)
            } ?? .max
        case UInt8(ascii: "c"):
            add(.secmark)
            inv.selection.secmark = try number(optarg!, max: UInt32.max, what: "secmark")
        case UInt8(ascii: "i"):
            add(.id)
            // "-i ID" is a required argument in the short form: getopt hands it over.
            if let text = optarg.map({ String(cString: $0) }) ?? optionalNext() { inv.selection.selector.id = try number(text, max: UInt32.max, what: "id") }
        case UInt8(ascii: "f"):
            add(.family)
            let name = String(cString: optarg!)
            let family: Family
            switch name {
            case "ipv4": family = .ipv4
            case "ipv6": family = .ipv6
            default: throw .parameter("`\(name)' unsupported protocol")
            }
            if let previous = inv.selection.family, previous != family { throw .parameter("mismatched address family") }
            inv.selection.family = family
        case UInt8(ascii: "n"): add(.srcNat); inv.selection.selector.srcNAT = try parseNAT(optionalNext(), &inv.selection.family, option: "src-nat")
        case UInt8(ascii: "g"): add(.dstNat); inv.selection.selector.dstNAT = try parseNAT(optionalNext(), &inv.selection.family, option: "dst-nat")
        case UInt8(ascii: "j"): add(.anyNat); inv.selection.selector.anyNAT = try parseNAT(optionalNext(), &inv.selection.family, option: "any-nat")
        case UInt8(ascii: "o"):
            add(.output)
            var output = OutputOptions()
            try parseList(optarg!, names: outputNameList) { (index: Int) throws(Failure) in
                // conntrack matches the old NAT names first and only warns.
                if index < 2 { try console.raw("WARNING: ignoring \(outputNames[index].0), use --\(index == 0 ? "src" : "dst")-nat instead") }
                output.formUnion(outputNames[index].1)
            }
            inv.output.formUnion(output)
        case UInt8(ascii: "b"):
            add(.bufferSize)
            inv.events.bufferSize = try number(optarg!, max: Int32.max, what: "buffer size")
        case UInt8(ascii: "w"):
            add(.zone)
            inv.selection.selector.zone = try number(optarg!, max: UInt16.max, what: "zone")
        case UInt8(ascii: "l"):
            add(.label)
            inv.selection.labelNames += String(cString: optarg!).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        case UInt8(ascii: "<"):
            add(.labelAdd)
            inv.change.labelAddNames += String(cString: optarg!).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        case UInt8(ascii: ">"):
            add(.labelDel)
            let names = optionalNext()
            inv.change.labelDelNames = (inv.change.labelDelNames ?? []) +
                (names?.split(separator: ",", omittingEmptySubsequences: false).map(String.init) ?? [])
        case UInt8(ascii: "("):
            add(.origZone)
            inv.selection.selector.origZone = try number(optarg!, max: UInt16.max, what: "zone")
        case UInt8(ascii: ")"):
            add(.replyZone)
            inv.selection.selector.replyZone = try number(optarg!, max: UInt16.max, what: "zone")
        default:
            throw .parameter("unknown option `\(current)'")
        }
    }
    if let mask = inv.selection.maskSrc, var m = inv.selection.selector.origSrc {
        m.mask = mask
        inv.selection.selector.origSrc = m
    }
    if let mask = inv.selection.maskDst, var m = inv.selection.selector.origDst {
        m.mask = mask
        inv.selection.selector.origDst = m
    }
    inv.selection.selector.family = inv.selection.family
    return inv
}

/// Names -o accepts, in the order conntrack tries them: the first two are
/// obsolete and only draw a warning. ctl's own "json" and "metrics" come
/// last, so every prefix conntrack accepts keeps its meaning ("j", "m" and
/// longer prefixes of them were refused before).
private let outputNames: [(String, OutputOptions)] = [
    ("SRC_NAT", []), ("DST_NAT", []), ("xml", .xml), ("extended", .extended), ("timestamp", .timestamp), ("id", .id),
    ("ktimestamp", .ktimestamp), ("labels", .labels), ("save", .save), ("userspace", .userspace), ("json", .json),
    ("metrics", .metrics),
]
private let outputNameList = outputNames.map { Array($0.0.utf8) }
private let statusNameList = statusNames.map { Array($0.0.utf8) }
/// Names -e accepts.
private let eventNameList = ["ALL", "NEW", "UPDATES", "DESTROY"].map { Array($0.utf8) }
private let eventGroupsByName: [EventGroups] = [.all, .new, .update, .destroy]
/// Names -u accepts, with their status bits, in the order conntrack tries
/// them: the first two are obsolete and only draw a warning.
private let statusNames: [(String, Status)] = [
    ("SRC_NAT", []), ("DST_NAT", []),
    ("EXPECTED", .expected), ("ASSURED", .assured), ("SEEN_REPLY", .seenReply),
    ("FIXED_TIMEOUT", .fixedTimeout), ("UNSET", []), ("OFFLOAD", .offload), ("HW_OFFLOAD", .hwOffload),
]

/// conntrack's comma-list parser: each item may be any case-insensitive
/// prefix of a name; an empty item or an unknown one is a bad parameter,
/// reported with the rest of the list from that item on.
private func parseList(_ text: UnsafePointer<CChar>, names: [[UInt8]],
                       onItem: (Int) throws(Failure) -> Void = { _ in }) throws(Failure) {
    var start = 0
    while true {
        var end = start
        while text[end] != 0, text[end] != 0x2c /* , */ { end += 1 }
        let item = UnsafeBufferPointer(start: UnsafeRawPointer(text + start).assumingMemoryBound(to: UInt8.self),
                                       count: end - start)
        guard !item.isEmpty, let index = names.firstIndex(where: { hasPrefixIgnoringCase($0, item) }) else {
            throw .parameter("Bad parameter `\(String(cString: text + start))'")
        }
        try onItem(index)
        guard text[end] != 0 else { return }
        start = end + 1
    }
}

private func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

/// Whether `prefix` begins `name`, ASCII letters compared without case.
private func hasPrefixIgnoringCase(_ name: [UInt8], _ prefix: UnsafeBufferPointer<UInt8>) -> Bool {
    guard prefix.count <= name.count else { return false }
    for i in 0..<prefix.count {
        let c = name[i], p = prefix[i]
        if c | 0x20 != p | 0x20 || !(c | 0x20 >= 0x61 && c | 0x20 <= 0x7a) && c != p { return false }
    }
    return true
}

/// An address argument, optionally with a prefix length ("10.0.0.0/8",
/// -s and -d only), and the check that all addresses share one family.
/// IPv4 is read as inet_aton(3) reads it ("127.1", "0x7f.0.0.1"), as
/// conntrack does. Returns whether a prefix length was given.
private func parseAddress(_ optarg: UnsafeMutablePointer<CChar>?, _ family: inout Family?, option: String,
                          cidr: Bool = true) throws(Failure) -> (AddressMatch, Bool) {
    // A plain address is read where it is; a word with a '/' as a string.
    if strchr(optarg!, 0x2f /* / */) == nil {
        guard let address = parseIP(optarg!) else { throw .parameter("Invalid IP address `\(String(cString: optarg!))'") }
        let addressFamily: Family = address.isV4 ? .ipv4 : .ipv6
        if let previous = family, previous != addressFamily { throw .parameter("mismatched address family") }
        family = addressFamily
        return (AddressMatch(address: address, mask: AddressMatch.mask(for: address, prefix: nil)), false)
    }
    let text = String(cString: optarg!)
    let slash = text.utf8.firstIndex(of: UInt8(ascii: "/"))
    let addressText = slash.map { String(text[..<$0]) } ?? text
    guard let address = parseIP(addressText) else { throw .parameter("Invalid IP address `\(text)'") }
    var prefix: Int? = nil
    if let slash {
        guard cidr else { throw .parameter("CIDR notation unavailable for `--\(option)'") }
        // strtol(3) rules: leading blanks and a '+' pass, nothing may follow
        // the digits, and an empty length is 0.
        let lengthText = text[text.index(after: slash)...].drop(while: { $0 == " " || $0 == "\t" })
        let digits = lengthText.hasPrefix("+") ? lengthText.dropFirst() : lengthText
        let limit = address.isV4 ? 32 : 128
        if digits.isEmpty && !lengthText.hasPrefix("+") {
            prefix = 0
        } else {
            guard !digits.isEmpty, digits.utf8.allSatisfy(isDigit), let p = Int(digits), p <= limit else {
                throw .parameter("Invalid netmask")
            }
            prefix = p
        }
    }
    let addressFamily: Family = address.isV4 ? .ipv4 : .ipv6
    if let previous = family, previous != addressFamily { throw .parameter("mismatched address family") }
    family = addressFamily
    return (AddressMatch(address: address, mask: AddressMatch.mask(for: address, prefix: prefix)), prefix != nil)
}

private func parseIP(_ text: String) -> IPAddress? {
    text.withCString(parseIP)
}

private func parseIP(_ text: UnsafePointer<CChar>) -> IPAddress? {
    if let v4 = dottedQuad(text) { return .v4(v4) }
    var v4 = in_addr()
    if inet_aton(text, &v4) != 0 {
        return .v4(UInt32(bigEndian: v4.s_addr))
    }
    var v6 = in6_addr()
    if inet_pton(AF_INET6, text, &v6) == 1 {
        return withUnsafeBytes(of: &v6) { bytes in
            let hi = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let lo = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return .v6(hi, lo)
        }
    }
    return nil
}

/// The address of the common form inet_aton(3) reads, four decimal parts
/// of 0 to 255 without leading zeros and nothing after them (its answer,
/// without its strtoul calls); nil for any other form.
private func dottedQuad(_ text: UnsafePointer<CChar>) -> UInt32? {
    var value: UInt32 = 0
    var i = 0
    for part in 0..<4 {
        let start = i
        var n: UInt32 = 0
        while i - start < 3, text[i] >= 0x30, text[i] <= 0x39 {
            n = n * 10 + UInt32(text[i] - 0x30)
            i += 1
        }
        guard i > start, n <= 255, i - start == 1 || text[start] != 0x30 else { return nil }
        value = value << 8 | n
        guard text[i] == (part < 3 ? 0x2e /* . */ : 0) else { return nil }
        i += 1
    }
    return value
}

/// -n/-g/-j: nothing (any NAT), ADDR, ADDR:PORT or [V6]:PORT.
private func parseNAT(_ text: String?, _ family: inout Family?, option: String) throws(Failure) -> NATMatch {
    guard let text else { return NATMatch(address: nil) }
    if text.contains("/") { throw .parameter("CIDR notation unavailable for `--\(option)'") }
    var addressText = text
    var portText: Substring? = nil
    if text.hasPrefix("[") {
        guard let close = text.firstIndex(of: "]") else { throw .parameter("No closing ']' around IPv6 address") }
        addressText = String(text[text.index(after: text.startIndex)..<close])
        let rest = text[text.index(after: close)...]
        guard rest.hasPrefix(":") else { throw .parameter("Invalid IP address `\(text)'") }
        portText = rest.dropFirst()
    } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
        addressText = String(text[..<colon])
        portText = text[text.index(after: colon)...]
    }
    var port: UInt16? = nil
    if let portText {
        guard !portText.isEmpty else { throw .parameter("No port specified after `:'") }
        guard let p = Int(portText), p >= 0, p <= 65535, portText.utf8.allSatisfy(isDigit) else {
            throw .parameter("Invalid port `\(portText)'")
        }
        port = UInt16(p)
    }
    guard let address = parseIP(addressText) else { throw .parameter("Invalid IP address `\(text)'") }
    let addressFamily: Family = address.isV4 ? .ipv4 : .ipv6
    if let previous = family, previous != addressFamily { throw .parameter("mismatched address family") }
    family = addressFamily
    return NATMatch(address: address, port: port)
}

/// A port or other decimal field: digits only, within 0...max. conntrack
/// 1.4.7 reads these with atoi() and truncates; ctl refuses junk and
/// out-of-range values (a deliberate difference).
private func decimal<T: FixedWidthInteger>(_ text: UnsafePointer<CChar>, max: T, what: String) throws(Failure) -> T {
    var value = 0
    var i = 0
    while text[i] != 0 {
        let b = UInt8(bitPattern: text[i])
        guard isDigit(b), value <= Int(max) else { value = -1; break }
        value = value * 10 + Int(b - UInt8(ascii: "0"))
        i += 1
    }
    guard i > 0, value >= 0, value <= Int(max) else {
        throw .parameter("invalid \(what) `\(String(cString: text))': expected a number from 0 to \(max)")
    }
    return T(value)
}

/// A number where one is needed: decimal, 0x hex or 0 octal, within
/// 0...max. conntrack 1.4.7 takes some junk silently and matches nothing;
/// ctl refuses it (a deliberate difference).
private func number<T: FixedWidthInteger, S: StringProtocol>(_ text: S, max: T, what: String, _ whole: String? = nil) throws(Failure) -> T {
    guard let value = parseCInteger(text), value >= 0, value <= Int(max) else {
        throw .parameter("invalid \(what) `\(whole ?? String(text))': expected a number from 0 to \(max)")
    }
    return T(value)
}

/// number() of a C string's first `length` bytes; `whole`: the word to
/// name in the message.
private func number<T: FixedWidthInteger>(_ text: UnsafePointer<CChar>, _ length: Int, max: T, what: String,
                                          whole: UnsafePointer<CChar>) throws(Failure) -> T {
    let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(text).assumingMemoryBound(to: UInt8.self), count: length)
    guard let value = parseCInteger(bytes), value >= 0, value <= Int(max) else {
        throw .parameter("invalid \(what) `\(String(cString: whole))': expected a number from 0 to \(max)")
    }
    return T(value)
}

/// number() of a whole C string.
private func number<T: FixedWidthInteger>(_ text: UnsafePointer<CChar>, max: T, what: String) throws(Failure) -> T {
    try number(text, strlen(text), max: max, what: what, whole: text)
}

/// The value of an option -p added (--sport, --state, --icmp-type, ...).
private func parseProtocolOption(_ option: ProtoOption, _ value: UnsafePointer<CChar>, _ inv: inout Invocation) throws(Failure) {
    let proto = inv.selection.selector.proto ?? 0
    switch option {
    case .origSrcPort: inv.selection.selector.origSrcPort = try decimal(value, max: UInt16.max, what: "port")
    case .origDstPort: inv.selection.selector.origDstPort = try decimal(value, max: UInt16.max, what: "port")
    case .replySrcPort: inv.selection.selector.replySrcPort = try decimal(value, max: UInt16.max, what: "port")
    case .replyDstPort: inv.selection.selector.replyDstPort = try decimal(value, max: UInt16.max, what: "port")
    case .state:
        let value = String(cString: value)
        let (names, label): ([String], String) = switch proto {
        case IPProto.sctp: (sctpStateNames, "SCTP")
        case IPProto.dccp: (dccpStateNames, "DCCP")
        default: (tcpStateNames, "TCP")
        }
        // Exact names; conntrack also knows the kernel's old name LISTEN
        // for SYN_SENT2. (conntrack 1.4.7 crashes on an unknown SCTP state.)
        if let index = names.firstIndex(of: value) {
            inv.selection.selector.state = UInt8(index)
        } else if label == "TCP", value == "LISTEN" {
            inv.selection.selector.state = 9
        } else if label == "DCCP" {
            throw .parameter("Unknown DCCP state `\(value)'")
        } else {
            throw .parameter("unknown \(label) state `\(value)'")
        }
    case .icmpType: inv.selection.selector.icmpType = try decimal(value, max: UInt8.max, what: "ICMP type")
    case .icmpCode: inv.selection.selector.icmpCode = try decimal(value, max: UInt8.max, what: "ICMP code")
    case .icmpID: inv.selection.selector.icmpID = try decimal(value, max: UInt16.max, what: "ICMP id")
    case .greSrcKey: inv.selection.greSrcKey = try number(value, max: UInt16.max, what: "GRE key")
    case .greDstKey: inv.selection.greDstKey = try number(value, max: UInt16.max, what: "GRE key")
    case .replyKeySrc: inv.change.replyKeySrc = try number(value, max: UInt16.max, what: "GRE key")
    case .replyKeyDst: inv.change.replyKeyDst = try number(value, max: UInt16.max, what: "GRE key")
    case .origVtag: inv.selection.origVtag = try decimal(value, max: UInt32.max, what: "SCTP vtag")
    case .replyVtag: inv.selection.replyVtag = try decimal(value, max: UInt32.max, what: "SCTP vtag")
    case .tupleSrcPort: inv.expectation.srcPort = try decimal(value, max: UInt16.max, what: "port")
    case .tupleDstPort: inv.expectation.dstPort = try decimal(value, max: UInt16.max, what: "port")
    case .maskSrcPort: inv.expectation.maskSrcPort = try decimal(value, max: UInt16.max, what: "port")
    case .maskDstPort: inv.expectation.maskDstPort = try decimal(value, max: UInt16.max, what: "port")
    case .tupleSrcKey: inv.expectation.srcPort = try number(value, max: UInt16.max, what: "GRE key")
    case .tupleDstKey: inv.expectation.dstPort = try number(value, max: UInt16.max, what: "GRE key")
    case .maskSrcKey: inv.expectation.maskSrcPort = try number(value, max: UInt16.max, what: "GRE key")
    case .maskDstKey: inv.expectation.maskDstPort = try number(value, max: UInt16.max, what: "GRE key")
    case .role:
        let value = String(cString: value)
        switch value.lowercased() {
        case "client": inv.selection.selector.dccpRole = 0
        case "server": inv.selection.selector.dccpRole = 1
        default: throw .parameter("Unknown DCCP role `\(value)'")
        }
    case .other:
        break
    }
}

/// What a protocol option sets, by its name (once per option table).
private enum ProtoOption {
    case origSrcPort, origDstPort, replySrcPort, replyDstPort, state, icmpType, icmpCode, icmpID
    case greSrcKey, greDstKey, replyKeySrc, replyKeyDst, origVtag, replyVtag, role
    case tupleSrcPort, tupleDstPort, maskSrcPort, maskDstPort
    case tupleSrcKey, tupleDstKey, maskSrcKey, maskDstKey
    /// Accepted and otherwise ignored.
    case other

    init(_ name: String) {
        switch name {
        case "orig-port-src", "sport": self = .origSrcPort
        case "orig-port-dst", "dport": self = .origDstPort
        case "reply-port-src": self = .replySrcPort
        case "reply-port-dst": self = .replyDstPort
        case "state": self = .state
        case "icmp-type", "icmpv6-type": self = .icmpType
        case "icmp-code", "icmpv6-code": self = .icmpCode
        case "icmp-id", "icmpv6-id": self = .icmpID
        case "srckey", "orig-key-src": self = .greSrcKey
        case "dstkey", "orig-key-dst": self = .greDstKey
        case "reply-key-src": self = .replyKeySrc
        case "reply-key-dst": self = .replyKeyDst
        case "orig-vtag": self = .origVtag
        case "reply-vtag": self = .replyVtag
        case "role": self = .role
        case "tuple-port-src": self = .tupleSrcPort
        case "tuple-port-dst": self = .tupleDstPort
        case "mask-port-src": self = .maskSrcPort
        case "mask-port-dst": self = .maskDstPort
        case "tuple-key-src": self = .tupleSrcKey
        case "tuple-key-dst": self = .tupleDstKey
        case "mask-key-src": self = .maskSrcKey
        case "mask-key-dst": self = .maskDstKey
        default: self = .other
        }
    }
}

extension IPAddress {
    var isV4: Bool { if case .v4 = self { return true } else { return false } }
}

private let knownProtocols: [(String, UInt8)] = [
    ("tcp", IPProto.tcp), ("udp", IPProto.udp), ("udplite", IPProto.udplite),
    ("sctp", IPProto.sctp), ("dccp", IPProto.dccp), ("gre", IPProto.gre),
    ("icmp", IPProto.icmp), ("icmpv6", IPProto.icmpv6),
]

/// A protocol name (conntrack's own, case-insensitive, or one from
/// /etc/protocols) or a number up to 255 in C notation (" 6", "0x6", "06").
func protocolNumber(_ name: String) -> UInt8? {
    if let number = knownProtocol(name) { return number }
    // A number first: /etc/protocols has no numeric names, and save files
    // write every protocol without a name of conntrack's as a number.
    if let n = protocolNumberValue(name) { return n }
    if let entry = getprotobyname(name) { return UInt8(truncatingIfNeeded: entry.pointee.p_proto) }
    return nil
}

private func protocolNumberValue(_ name: String) -> UInt8? {
    let trimmed = name.drop(while: { $0 == " " || $0 == "\t" })
    guard let n = parseCInteger(trimmed), n <= 255 else { return nil }
    return UInt8(n)
}

/// Whether -p NAME brings its protocol's options: conntrack's own names
/// and numbers do, names only /etc/protocols knows do not.
private func protocolHasOptions(_ name: String) -> Bool {
    knownProtocol(name) != nil || protocolNumberValue(name) != nil
}

/// The number of conntrack's own protocol `name` names, without case (an
/// ASCII name is compared as it is, without a lowercased copy).
private func knownProtocol(_ name: String) -> UInt8? {
    var name = name
    // nil: not ASCII.
    let ascii: UInt8?? = name.withUTF8 { bytes in
        guard bytes.allSatisfy({ $0 < 0x80 }) else { return nil }
        for (known, number) in knownProtocolBytes where known.count == bytes.count {
            var same = true
            for i in 0..<bytes.count where known[i] != (bytes[i] >= 0x41 && bytes[i] <= 0x5a ? bytes[i] | 0x20 : bytes[i]) {
                same = false
                break
            }
            if same { return .some(number) }
        }
        return .some(nil)
    }
    if let ascii { return ascii }
    let lower = name.lowercased()
    return knownProtocols.first(where: { $0.0 == lower })?.1
}

private let knownProtocolBytes = knownProtocols.map { (Array($0.0.utf8), $0.1) }
