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
    /// The bits, as the kernel numbers them.
    public let rawValue: UInt32
    /// The flags with bits `rawValue`.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// The expectation stays after a connection used it (NF_CT_EXPECT_PERMANENT).
    public static let permanent = ExpectFlags(rawValue: 0x1)
    /// The expectation matches nothing yet (NF_CT_EXPECT_INACTIVE).
    public static let inactive = ExpectFlags(rawValue: 0x2)
    /// The expectation was created from userspace (NF_CT_EXPECT_USERSPACE).
    public static let userspace = ExpectFlags(rawValue: 0x4)
}

/// Where NAT sends the expected connection (CTA_EXPECT_NAT).
public struct ExpectNAT: Equatable, Sendable {
    /// The direction whose tuple is translated: 0 original, 1 reply
    /// (CTA_EXPECT_NAT_DIR).
    public var direction: UInt32?
    /// The translated tuple (CTA_EXPECT_NAT_TUPLE).
    public var tuple: Tuple?
    /// No fields set.
    public init() {}
}

/// A connection a helper expects (an entry of the `expect` table) as
/// ctnetlink describes it. Absent attributes are nil.
public struct Expectation: Equatable, Sendable {
    /// The layer 3 family (nfgenmsg.nfgen_family).
    public var family: Family = .other(0)
    /// The original tuple of the entry that expects the connection
    /// (CTA_EXPECT_MASTER).
    public var master: Tuple?
    /// The expected connection's tuple (CTA_EXPECT_TUPLE), compared under
    /// ``mask``.
    public var tuple: Tuple?
    /// Which fields of ``tuple`` a connection must match (CTA_EXPECT_MASK).
    public var mask: Tuple?
    /// Seconds until the expectation expires (CTA_EXPECT_TIMEOUT).
    public var timeout: UInt32?
    /// The expectation's id (CTA_EXPECT_ID).
    public var id: UInt32?
    /// The helper that set it up (CTA_EXPECT_HELP_NAME).
    public var helper: String?
    /// The zone (CTA_EXPECT_ZONE); nil is zone 0.
    public var zone: UInt16?
    /// Flags (CTA_EXPECT_FLAGS).
    public var flags: ExpectFlags?
    /// The helper's expectation class (CTA_EXPECT_CLASS).
    public var expectClass: UInt32?
    /// The NAT to apply to the expected connection (CTA_EXPECT_NAT).
    public var nat: ExpectNAT?
    /// The helper's function for the expected connection (CTA_EXPECT_FN).
    public var function: String?
    /// An expectation with no attributes, to fill in.
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
