/// One CPU's conntrack counters (IPCTNL_MSG_CT_GET_STATS_CPU). A counter
/// the kernel does not report is nil; the kernel stopped reporting several
/// old ones (searched, new, delete, ...) long ago.
public struct CPUStatistics: Sendable, Equatable {
    public var cpu: Int
    public var searched: UInt32?        // CTA_STATS_SEARCHED
    public var found: UInt32?           // CTA_STATS_FOUND
    public var new: UInt32?             // CTA_STATS_NEW
    public var invalid: UInt32?         // CTA_STATS_INVALID
    public var ignore: UInt32?          // CTA_STATS_IGNORE
    public var delete: UInt32?          // CTA_STATS_DELETE
    public var deleteList: UInt32?      // CTA_STATS_DELETE_LIST
    public var insert: UInt32?          // CTA_STATS_INSERT
    public var insertFailed: UInt32?    // CTA_STATS_INSERT_FAILED
    public var drop: UInt32?            // CTA_STATS_DROP
    public var earlyDrop: UInt32?       // CTA_STATS_EARLY_DROP
    public var error: UInt32?           // CTA_STATS_ERROR
    public var searchRestart: UInt32?   // CTA_STATS_SEARCH_RESTART
    public var clashResolve: UInt32?    // CTA_STATS_CLASH_RESOLVE
    public var chainTooLong: UInt32?    // CTA_STATS_CHAIN_TOOLONG

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
    public var cpu: Int
    public var new: UInt32?      // CTA_STATS_EXP_NEW
    public var create: UInt32?   // CTA_STATS_EXP_CREATE
    public var delete: UInt32?   // CTA_STATS_EXP_DELETE

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

    public init(entries: UInt32, limit: UInt32?) {
        self.entries = entries
        self.limit = limit
    }
}

extension Conntrack {
    /// Per-CPU counters, one value per possible CPU.
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

    /// The number of entries and the table's limit.
    public func tableSize() throws(ConntrackError) -> TableSize {
        guard capabilities.supports(.statistics) else {
            throw ConntrackError(.statistics, .unsupported(.statistics, kernel: capabilities.version))
        }
        return try withSession(.statistics) { session in
            let (entries, limit) = try session.tableSize()
            return TableSize(entries: entries, limit: limit)
        }
    }

    /// Per-CPU expectation counters.
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
