/// ctnetlink's expectation attributes (enum ctattr_expect and its nests),
/// kept findable by their kernel names.
package enum CTAExpect {
    package static let master: UInt16 = 1      // CTA_EXPECT_MASTER
    package static let tuple: UInt16 = 2       // CTA_EXPECT_TUPLE
    package static let mask: UInt16 = 3        // CTA_EXPECT_MASK
    package static let timeout: UInt16 = 4     // CTA_EXPECT_TIMEOUT
    package static let id: UInt16 = 5          // CTA_EXPECT_ID
    package static let helpName: UInt16 = 6    // CTA_EXPECT_HELP_NAME
    package static let zone: UInt16 = 7        // CTA_EXPECT_ZONE
    package static let flags: UInt16 = 8       // CTA_EXPECT_FLAGS
    package static let expectClass: UInt16 = 9 // CTA_EXPECT_CLASS
    package static let nat: UInt16 = 10        // CTA_EXPECT_NAT
    package static let fn: UInt16 = 11         // CTA_EXPECT_FN

    package enum NAT {
        package static let dir: UInt16 = 1     // CTA_EXPECT_NAT_DIR
        package static let tuple: UInt16 = 2   // CTA_EXPECT_NAT_TUPLE
    }
    package enum Stats {
        package static let new: UInt16 = 1     // CTA_STATS_EXP_NEW
        package static let create: UInt16 = 2  // CTA_STATS_EXP_CREATE
        package static let delete: UInt16 = 3  // CTA_STATS_EXP_DELETE
    }
}

/// Expectation message types (enum ctnl_exp_msg_types), subsystem
/// NFNL_SUBSYS_CTNETLINK_EXP.
package enum ExpectMessage {
    package static let subsystem: UInt8 = 2        // NFNL_SUBSYS_CTNETLINK_EXP
    package static let new: UInt8 = 0              // IPCTNL_MSG_EXP_NEW
    package static let get: UInt8 = 1              // IPCTNL_MSG_EXP_GET
    package static let delete: UInt8 = 2           // IPCTNL_MSG_EXP_DELETE
    package static let getStatsCPU: UInt8 = 3      // IPCTNL_MSG_EXP_GET_STATS_CPU
}

/// Expectation flags (CTA_EXPECT_FLAGS, NF_CT_EXPECT_*).
public struct ExpectFlags: OptionSet, Equatable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let permanent = ExpectFlags(rawValue: 0x1)   // NF_CT_EXPECT_PERMANENT
    public static let inactive = ExpectFlags(rawValue: 0x2)    // NF_CT_EXPECT_INACTIVE
    public static let userspace = ExpectFlags(rawValue: 0x4)   // NF_CT_EXPECT_USERSPACE
}

/// Where NAT sends the expected connection (CTA_EXPECT_NAT).
public struct ExpectNAT: Equatable, Sendable {
    public var direction: UInt32?   // CTA_EXPECT_NAT_DIR
    public var tuple: Tuple?        // CTA_EXPECT_NAT_TUPLE
    public init() {}
}

/// A connection a helper expects (an entry of the `expect` table) as
/// ctnetlink describes it. Absent attributes are nil.
public struct Expectation: Equatable, Sendable {
    public var family: Family = .other(0) // nfgenmsg.nfgen_family
    public var master: Tuple?             // CTA_EXPECT_MASTER
    public var tuple: Tuple?              // CTA_EXPECT_TUPLE: the expected connection
    public var mask: Tuple?               // CTA_EXPECT_MASK
    public var timeout: UInt32?           // CTA_EXPECT_TIMEOUT
    public var id: UInt32?                // CTA_EXPECT_ID
    public var helper: String?            // CTA_EXPECT_HELP_NAME
    public var zone: UInt16?              // CTA_EXPECT_ZONE
    public var flags: ExpectFlags?        // CTA_EXPECT_FLAGS
    public var expectClass: UInt32?       // CTA_EXPECT_CLASS
    public var nat: ExpectNAT?            // CTA_EXPECT_NAT
    public var function: String?          // CTA_EXPECT_FN
    public init() {}

    /// The layer 4 protocol number of the expected connection.
    package var proto: UInt8? { tuple?.proto ?? master?.proto }

    /// The layer 4 protocol of the expected connection.
    public var ipProtocol: IPProtocol? { proto.map(IPProtocol.init(rawValue:)) }
}

extension Decoder {
    /// Decodes an expectation message payload (nfgenmsg + attributes).
    package static func expectation(_ payload: ByteView) throws -> Expectation {
        guard let family = payload.u8(at: 0), let attrs = payload.slice(nfgenHeader, payload.count - nfgenHeader) else {
            throw MalformedMessage("message shorter than its nfgenmsg header")
        }
        var e = Expectation()
        e.family = Family(rawValue: family)
        try attrs.forEachAttribute { a in
            switch a.type {
            case CTAExpect.master: e.master = try tuple(a.value)
            case CTAExpect.tuple: e.tuple = try tuple(a.value)
            case CTAExpect.mask: e.mask = try tuple(a.value)
            case CTAExpect.timeout: e.timeout = try u32(a)
            case CTAExpect.id: e.id = try u32(a)
            case CTAExpect.helpName: e.helper = a.value.cString
            case CTAExpect.zone: e.zone = try u16(a)
            case CTAExpect.flags: e.flags = ExpectFlags(rawValue: try u32(a))
            case CTAExpect.expectClass: e.expectClass = try u32(a)
            case CTAExpect.fn: e.function = a.value.cString
            case CTAExpect.nat:
                var nat = ExpectNAT()
                try a.value.forEachAttribute { n in
                    switch n.type {
                    case CTAExpect.NAT.dir: nat.direction = try u32(n)
                    case CTAExpect.NAT.tuple: nat.tuple = try tuple(n.value)
                    default: break
                    }
                }
                e.nat = nat
            default: break
            }
        }
        return e
    }
}
