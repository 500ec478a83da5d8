/// The expectation table (NFNL_SUBSYS_CTNETLINK_EXP) over the same socket
/// as the conntrack table.
extension CTSession {
    /// Dumps the expectations of `family` (all families for nil), calling
    /// `body` for each as it arrives.
    package func dumpExpectations(family: Family?, _ body: (Expectation) throws -> Void) throws {
        malformed = []
        let request = NetlinkRequest(subsystem: ExpectMessage.subsystem, message: ExpectMessage.get,
                                     flags: NetlinkFlags.dump, family: family?.rawValue ?? 0)
        try socket.perform(request) { message in
            guard message.subsystem == ExpectMessage.subsystem,
                  let expectation = try Decoder.decoded(message.payload, Decoder.expectation,
                                                        onMalformed: { malformed.append($0) })
            else { return }
            try body(expectation)
        }
    }

    /// The expectation whose expected tuple `tuple` matches (under its
    /// mask). Like conntrack, the tuple travels as CTA_EXPECT_MASTER, which
    /// the kernel looks up in the same way. Throws ENOENT when none does.
    package func getExpectation(family: Family, tuple: Tuple) throws -> Expectation? {
        let request = NetlinkRequest(subsystem: ExpectMessage.subsystem, message: ExpectMessage.get,
                                     flags: NetlinkFlags.ack, family: family.rawValue,
                                     attributes: [Encode.tuple(CTAExpect.master, tuple)])
        malformed = []
        var result: Expectation? = nil
        try socket.perform(request) { message in
            guard message.subsystem == ExpectMessage.subsystem else { return }
            result = try Decoder.expectation(message.payload)
        }
        return result
    }

    /// Deletes the expectation whose expected tuple `tuple` matches.
    /// Throws ENOENT when none does.
    package func deleteExpectation(family: Family, tuple: Tuple) throws {
        let request = NetlinkRequest(subsystem: ExpectMessage.subsystem, message: ExpectMessage.delete,
                                     flags: NetlinkFlags.ack, family: family.rawValue,
                                     attributes: [Encode.tuple(CTAExpect.tuple, tuple)])
        try socket.perform(request) { _ in }
    }

    /// Creates an expectation for `expected` (under `mask`) on the master
    /// connection `master`, which must have a helper. The kernel answers
    /// ENOENT when there is no such master, EEXIST when a clashing
    /// expectation exists.
    package func createExpectation(family: Family, master: Tuple, expected: Tuple, mask: Tuple,
                                  timeout: UInt32?) throws {
        var attributes = [Encode.tuple(CTAExpect.master, master),
                          Encode.tuple(CTAExpect.tuple, expected),
                          Encode.tuple(CTAExpect.mask, mask)]
        if let timeout { attributes.append(.u32(CTAExpect.timeout, timeout)) }
        let request = NetlinkRequest(subsystem: ExpectMessage.subsystem, message: ExpectMessage.new,
                                     flags: NetlinkFlags.ack | NetlinkFlags.create | NetlinkFlags.exclusive,
                                     family: family.rawValue, attributes: attributes)
        try socket.perform(request) { _ in }
    }

    /// Deletes every expectation (IPCTNL_MSG_EXP_DELETE without a tuple);
    /// the kernel does not look at the family here.
    package func flushExpectations(family: Family?) throws {
        let request = NetlinkRequest(subsystem: ExpectMessage.subsystem, message: ExpectMessage.delete,
                                     flags: NetlinkFlags.ack, family: family?.rawValue ?? 0)
        try socket.perform(request) { _ in }
    }

    /// Per-CPU expectation statistics (IPCTNL_MSG_EXP_GET_STATS_CPU).
    package func expectationStatistics(_ body: (CPUStats) throws -> Void) throws {
        let request = NetlinkRequest(subsystem: ExpectMessage.subsystem, message: ExpectMessage.getStatsCPU,
                                     flags: NetlinkFlags.dump, family: 0)
        try socket.perform(request) { message in
            try body(try Decoder.cpuStats(message.payload))
        }
    }

    /// Dumps the dying or the unconfirmed list (IPCTNL_MSG_CT_GET_DYING,
    /// IPCTNL_MSG_CT_GET_UNCONFIRMED) and calls `body` for each entry
    /// `selector` selects. Nothing is filtered in the kernel but the family.
    package func dumpList(_ list: ConntrackList, _ selector: Selector, _ body: (Flow) throws -> Void) throws {
        malformed = []
        let request = NetlinkRequest(subsystem: CTMessage.subsystem,
                                     message: list == .dying ? CTMessage.getDying : CTMessage.getUnconfirmed,
                                     flags: NetlinkFlags.dump, family: selector.family?.rawValue ?? 0)
        try socket.perform(request) { message in try select(message, selector, body) }
    }

    /// Dumps the expectation table like `dumpExpectations` but hands out
    /// each message's payload undecoded: for capturing fixtures.
    package func dumpExpectationPayloads(family: Family?, _ body: ([UInt8]) throws -> Void) throws {
        try dumpPayloads(subsystem: ExpectMessage.subsystem, message: ExpectMessage.get, family: family, body)
    }
}

/// The conntrack lists besides the table itself.
package enum ConntrackList: Sendable {
    case dying          // IPCTNL_MSG_CT_GET_DYING
    case unconfirmed    // IPCTNL_MSG_CT_GET_UNCONFIRMED
}
