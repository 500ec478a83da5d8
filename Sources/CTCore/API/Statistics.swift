/// One CPU's conntrack counters (IPCTNL_MSG_CT_GET_STATS_CPU). A counter
/// the kernel does not report is nil; the kernel stopped reporting several
/// old ones (searched, new, delete, ...) long ago. ``counters`` lists the
/// reported ones by name.
public struct CPUStatistics: Sendable, Equatable {
    /// The CPU's number.
    public var cpu: Int
    /// Hash table entries looked at (CTA_STATS_SEARCHED). Current kernels no longer report it.
    public var searched: UInt32?
    /// Lookups that found an entry (CTA_STATS_FOUND).
    public var found: UInt32?
    /// Entries created (CTA_STATS_NEW). Current kernels no longer report it.
    public var new: UInt32?
    /// Packets that could not be tracked (CTA_STATS_INVALID).
    public var invalid: UInt32?
    /// Packets that came with an entry already (CTA_STATS_IGNORE).
    public var ignore: UInt32?
    /// Entries deleted (CTA_STATS_DELETE). Current kernels no longer report it.
    public var delete: UInt32?
    /// Entries put on the dying list (CTA_STATS_DELETE_LIST). Current kernels no longer report it.
    public var deleteList: UInt32?
    /// Entries inserted into the table (CTA_STATS_INSERT).
    public var insert: UInt32?
    /// Inserts that failed, such as on a clash with an existing entry
    /// (CTA_STATS_INSERT_FAILED).
    public var insertFailed: UInt32?
    /// Packets dropped because no entry could be made for them (CTA_STATS_DROP).
    public var drop: UInt32?
    /// Entries dropped early to make room in a full table (CTA_STATS_EARLY_DROP).
    public var earlyDrop: UInt32?
    /// Packets the protocol tracker's checks refused (CTA_STATS_ERROR).
    public var error: UInt32?
    /// Lookups restarted because the table changed under them
    /// (CTA_STATS_SEARCH_RESTART).
    public var searchRestart: UInt32?
    /// Insert clashes resolved by using the existing entry (CTA_STATS_CLASH_RESOLVE).
    public var clashResolve: UInt32?
    /// Inserts refused because a hash chain was too long (CTA_STATS_CHAIN_TOOLONG).
    public var chainTooLong: UInt32?

    /// No counters, for CPU `cpu`.
    public init(cpu: Int) { self.cpu = cpu }

    /// Every counter the kernel reported, by its kernel name in lower case
    /// ("found", "insert_failed", ...), in the kernel's order.
    public var counters: [(name: String, value: UInt32)] {
        let all: [UInt32?] = [searched, found, new, invalid, ignore, delete, deleteList, insert, insertFailed,
                              drop, earlyDrop, error, searchRestart, clashResolve, chainTooLong]
        return all.enumerated().compactMap { i, value in
            value.flatMap { v in Names.cpuStat(UInt16(i + 1)).map { ($0, v) } }
        }
    }

    package init(_ stats: CPUStats) {
        cpu = Int(stats.cpu)
        for (attribute, value) in stats.values {
            switch attribute {
            case 1: searched = value
            case 2: found = value
            case 3: new = value
            case 4: invalid = value
            case 5: ignore = value
            case 6: delete = value
            case 7: deleteList = value
            case 8: insert = value
            case 9: insertFailed = value
            case 10: drop = value
            case 11: earlyDrop = value
            case 12: error = value
            case 13: searchRestart = value
            case 14: clashResolve = value
            case 15: chainTooLong = value
            default: break
            }
        }
    }
}

/// One CPU's expectation counters (IPCTNL_MSG_EXP_GET_STATS_CPU).
public struct ExpectationStatistics: Sendable, Equatable {
    /// The CPU's number.
    public var cpu: Int
    /// Expectations set up (CTA_STATS_EXP_NEW).
    public var new: UInt32?
    /// Expectations created (CTA_STATS_EXP_CREATE).
    public var create: UInt32?
    /// Expectations deleted (CTA_STATS_EXP_DELETE).
    public var delete: UInt32?

    /// No counters, for CPU `cpu`.
    public init(cpu: Int) { self.cpu = cpu }

    /// Every counter the kernel reported ("expect_new", "expect_create",
    /// "expect_delete"), in the kernel's order.
    public var counters: [(name: String, value: UInt32)] {
        [(CTAExpect.Stats.new, new), (CTAExpect.Stats.create, create), (CTAExpect.Stats.delete, delete)]
            .compactMap { attribute, value in value.flatMap { v in Names.expectationStat(attribute).map { ($0, v) } } }
    }

    package init(_ stats: CPUStats) {
        cpu = Int(stats.cpu)
        for (attribute, value) in stats.values {
            switch attribute {
            case CTAExpect.Stats.new: new = value
            case CTAExpect.Stats.create: create = value
            case CTAExpect.Stats.delete: delete = value
            default: break
            }
        }
    }
}

/// How full the table is (IPCTNL_MSG_CT_GET_STATS).
public struct TableSize: Sendable, Equatable {
    /// Entries in the table now.
    public var entries: UInt32
    /// The most entries it may hold (nf_conntrack_max), where the kernel
    /// reports it.
    public var limit: UInt32?

    /// A size of `entries` entries of at most `limit`.
    public init(entries: UInt32, limit: UInt32?) {
        self.entries = entries
        self.limit = limit
    }
}

extension Conntrack {
    /// The conntrack counters of each possible CPU, in the handle's namespace.
    ///
    /// Throws ``ConntrackError/Reason/unsupported(_:kernel:)`` where the
    /// handle's ``capabilities`` lack ``KernelFeature/statistics``.
    public func statistics() throws(ConntrackError) -> [CPUStatistics] {
        guard capabilities.supports(.statistics) else {
            throw ConntrackError(.statistics, .unsupported(.statistics, kernel: capabilities.version))
        }
        return try withSession(.statistics) { session in
            var all: [CPUStatistics] = []
            try session.cpuStatistics { all.append(CPUStatistics($0)) }
            return all
        }
    }

    /// The number of entries in the namespace's table, and the table's
    /// limit where the kernel reports it.
    public func tableSize() throws(ConntrackError) -> TableSize {
        guard capabilities.supports(.statistics) else {
            throw ConntrackError(.statistics, .unsupported(.statistics, kernel: capabilities.version))
        }
        return try withSession(.statistics) { session in
            let (entries, limit) = try session.tableSize()
            return TableSize(entries: entries, limit: limit)
        }
    }

    /// The expectation counters of each possible CPU.
    public func expectationStatistics() throws(ConntrackError) -> [ExpectationStatistics] {
        guard capabilities.supports(.statistics) else {
            throw ConntrackError(.statistics, .unsupported(.statistics, kernel: capabilities.version))
        }
        return try withSession(.statistics) { session in
            var all: [ExpectationStatistics] = []
            try session.expectationStatistics { all.append(ExpectationStatistics($0)) }
            return all
        }
    }
}
