/// Names conntrack prints for protocol numbers, families and states.
package enum Names {
    /// Layer 4 protocol name, "unknown" for numbers without one.
    package static func proto(_ number: UInt8) -> StaticString {
        switch number {
        case IPProto.icmp: return "icmp"
        case IPProto.tcp: return "tcp"
        case IPProto.udp: return "udp"
        case IPProto.dccp: return "dccp"
        case IPProto.gre: return "gre"
        case IPProto.icmpv6: return "icmpv6"
        case IPProto.sctp: return "sctp"
        case IPProto.udplite: return "udplite"
        default: return "unknown"
        }
    }

    /// Layer 3 family name, "unknown" for other families.
    package static func family(_ number: UInt8) -> StaticString {
        switch number {
        case Family.ipv4.rawValue: return "ipv4"
        case Family.ipv6.rawValue: return "ipv6"
        default: return "unknown"
        }
    }

    /// NF_CT_EXPECT_* names by bit number (PERMANENT, INACTIVE, USERSPACE).
    package static let expectFlags: [StaticString] = ["PERMANENT", "INACTIVE", "USERSPACE"]

    /// enum tcp_conntrack
    package static let tcpStates: [StaticString] = [
        "NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT",
        "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2",
    ]
    /// enum sctp_conntrack
    package static let sctpStates: [StaticString] = [
        "NONE", "CLOSED", "COOKIE_WAIT", "COOKIE_ECHOED", "ESTABLISHED", "SHUTDOWN_SENT",
        "SHUTDOWN_RECD", "SHUTDOWN_ACK_SENT", "HEARTBEAT_SENT", "HEARTBEAT_ACKED",
    ]
    /// enum ct_dccp_states
    package static let dccpStates: [StaticString] = [
        "NONE", "REQUEST", "RESPOND", "PARTOPEN", "OPEN", "CLOSEREQ", "CLOSING",
        "TIMEWAIT", "IGNORE", "INVALID",
    ]

    /// The state name of `info`, or nil if it carries no state.
    package static func state(_ info: ProtoInfo) -> StaticString? {
        func lookup(_ table: [StaticString], _ value: UInt8?) -> StaticString? {
            guard let value else { return nil }
            return Int(value) < table.count ? table[Int(value)] : "UNKNOWN"
        }
        switch info {
        case .tcp(let t): return lookup(tcpStates, t.state)
        case .sctp(let s): return lookup(sctpStates, s.state)
        case .dccp(let d): return lookup(dccpStates, d.state)
        }
    }

    /// CTA_STATS_* attribute names as conntrack -S prints them.
    package static func cpuStat(_ attribute: UInt16) -> String? {
        switch attribute {
        case 1: return "searched"
        case 2: return "found"
        case 3: return "new"
        case 4: return "invalid"
        case 5: return "ignore"
        case 6: return "delete"
        case 7: return "delete_list"
        case 8: return "insert"
        case 9: return "insert_failed"
        case 10: return "drop"
        case 11: return "early_drop"
        case 12: return "error"
        case 13: return "search_restart"
        case 14: return "clash_resolve"
        case 15: return "chaintoolong"
        default: return nil
        }
    }

    /// Names of the expectation statistics (CTA_STATS_EXP_*), as -S expect prints them.
    package static func expectationStat(_ attribute: UInt16) -> String? {
        switch attribute {
        case CTAExpect.Stats.new: return "expect_new"
        case CTAExpect.Stats.create: return "expect_create"
        case CTAExpect.Stats.delete: return "expect_delete"
        default: return nil
        }
    }
}
