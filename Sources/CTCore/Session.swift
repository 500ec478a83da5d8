import Glibc

/// CTSession operations over one netlink socket. Everything above this
/// type works on model values; the socket and its buffers stay inside.
package final class CTSession {
    let socket: NetlinkSocket
    /// Where the second sockets of deletes, updates and creates come from.
    package let sockets: SocketSource

    /// A session in the calling thread's network namespace.
    package convenience init() throws {
        try self.init(sockets: .current)
    }

    package init(sockets: SocketSource) throws {
        self.sockets = sockets
        socket = try sockets.socket()
    }

    /// Messages that could not be decoded during the last operation, with why.
    package internal(set) var malformed: [MalformedMessage] = []

    /// Dumps the entries `selector` selects: the kernel drops what it can
    /// evaluate exactly (family, and what `kernel` allows), and every entry
    /// that arrives is checked against the whole selector again. With
    /// `zeroCounters` the kernel zeroes each entry's counters as it reports
    /// them (IPCTNL_MSG_CT_GET_CTRZERO); the receive buffer is larger than
    /// any dump chunk, so no message is ever built twice.
    @discardableResult
    package func dump(_ selector: Selector, kernel: KernelFilterSupport, zeroCounters: Bool = false,
                      where extra: ((Flow) -> Bool)? = nil,
                      _ body: (Flow) throws -> Void) throws -> RequestOutcome {
        guard let extra else { return try dump(selector, kernel: kernel, zeroCounters: zeroCounters, body) }
        return try dump(selector, kernel: kernel, zeroCounters: zeroCounters) { flow in
            if extra(flow) { try body(flow) }
        }
    }

    private func dump(_ selector: Selector, kernel: KernelFilterSupport, zeroCounters: Bool,
                      _ body: (Flow) throws -> Void) throws -> RequestOutcome {
        malformed = []
        // The kernel's tuple filter needs a family: without one, dump each
        // family on its own (IPv4 with the filter) rather than everything
        // without it.
        if selector.family == nil, kernel.family, kernel.tupleFilter, selector.hasTupleFilter {
            var outcome = RequestOutcome()
            for family in [Family.ipv4, .ipv6] {
                var one = selector
                one.family = family
                if try dumpOnce(one, kernel: kernel, zeroCounters: zeroCounters, body).interrupted { outcome.interrupted = true }
            }
            return outcome
        }
        return try dumpOnce(selector, kernel: kernel, zeroCounters: zeroCounters, body)
    }

    private func dumpOnce(_ selector: Selector, kernel: KernelFilterSupport, zeroCounters: Bool,
                          _ body: (Flow) throws -> Void) throws -> RequestOutcome {
        let request = NetlinkRequest(subsystem: CTMessage.subsystem,
                                     message: zeroCounters ? CTMessage.getCtrZero : CTMessage.get,
                                     flags: NetlinkFlags.dump,
                                     family: kernel.family ? selector.family?.rawValue ?? 0 : 0,
                                     attributes: selector.dumpAttributes(kernel))
        return try socket.perform(request) { message in try select(message, selector, body) }
    }

    /// Hands the entry in `message` to `body` if `selector` selects it; an
    /// entry that cannot be decoded is kept in `malformed`.
    func select(_ message: NetlinkMessage, _ selector: Selector, _ body: (Flow) throws -> Void) throws {
        guard message.subsystem == CTMessage.subsystem,
              let flow = try Decoder.decoded(message.payload, Decoder.flow, onMalformed: { malformed.append($0) })
        else { return }
        if selector.matches(flow) { try body(flow) }
    }

    /// Deletes the entries `selector` selects and calls `onDeleted` for each
    /// one the kernel deleted. The entries are found by a (filtered) dump;
    /// deletes go out on a second socket in batches of many requests per
    /// sendmsg, each naming its entry by tuple, zone and id so that nothing
    /// but that entry can go. An entry that vanished meanwhile (ENOENT) is
    /// skipped; any other error ends the operation.
    ///
    /// The deletes run on a second thread while this one reads the dump,
    /// so the kernel's dump and delete work use both cores. At most two
    /// batches wait between the threads; `onDeleted` is called on the
    /// delete thread, one entry at a time, in order.
    @discardableResult
    package func delete(_ selector: Selector, kernel: KernelFilterSupport, where extra: ((Flow) -> Bool)? = nil,
                        _ onDeleted: (Flow) throws -> Void) throws -> RequestOutcome {
        let deleter = try sockets.batchSocket()
        let perBatch = max(1, deleter.sendCapacity / 2 / 160)
        return try withoutActuallyEscaping(onDeleted) { onDeleted in
            try pipelined(selector, kernel: kernel, where: extra, perBatch: perBatch, requests: { flow in
                CTSession.deleteRequest(for: flow).map { [$0] } ?? []
            }, work: { batch in
                let failures = try deleter.performBatch(batch.requests)
                for (i, flow) in batch.flows.enumerated() {
                    if let error = failures[i] {
                        // Gone meanwhile (expired, or deleted by someone else).
                        if error == Errno.noEntry { continue }
                        throw error
                    }
                    try onDeleted(flow)
                }
            })
        }
    }

    /// Dumps what `selector` selects on this thread and hands the requests
    /// `requests` makes of each entry, `perBatch` entries at a time, to
    /// `work` on a second thread. Returns the dump's outcome.
    @discardableResult
    func pipelined(_ selector: Selector, kernel: KernelFilterSupport, where extra: ((Flow) -> Bool)? = nil,
                   perBatch: Int,
                   requests: (Flow) throws -> [NetlinkRequest],
                   work: @escaping (RequestBatch) throws -> Void) throws -> RequestOutcome {
        let pipeline = BatchPipeline<RequestBatch>(work: work)
        try pipeline.start()
        var batch = RequestBatch()
        let outcome: RequestOutcome
        do {
            outcome = try dump(selector, kernel: kernel, where: extra) { flow in
                let made = try requests(flow)
                guard !made.isEmpty else { return }
                batch.requests += made
                batch.flows.append(flow)
                if batch.flows.count >= perBatch {
                    try pipeline.submit(batch)
                    batch = RequestBatch()
                }
            }
            if !batch.flows.isEmpty { try pipeline.submit(batch) }
        } catch {
            _ = pipeline.finish()
            throw error
        }
        if let error = pipeline.finish() { throw error }
        return outcome
    }

    /// IPCTNL_MSG_CT_DELETE for exactly `flow`: its original tuple, zone and id.
    static func deleteRequest(for flow: Flow) -> NetlinkRequest? {
        guard let orig = flow.orig else { return nil }
        var attrs = Encode.entryKey(orig: orig, zone: flow.zone)
        if let id = flow.id { attrs.append(.u32(CTA.id, id)) }
        return NetlinkRequest(subsystem: CTMessage.subsystem, message: CTMessage.delete,
                              flags: 0, family: flow.family.rawValue, attributes: attrs)
    }

    /// Gets one entry by its original tuple (and zone). Throws ENOENT when
    /// there is none.
    package func get(family: Family, tuple: Tuple, zone: UInt16? = nil) throws -> Flow? {
        let request = NetlinkRequest(subsystem: CTMessage.subsystem, message: CTMessage.get,
                                     flags: NetlinkFlags.ack, family: family.rawValue,
                                     attributes: Encode.entryKey(orig: tuple, zone: zone))
        var result: Flow? = nil
        try socket.perform(request) { message in
            result = try Decoder.flow(message.payload)
        }
        return result
    }

    /// Dumps the table like `dump` but hands out each message's payload
    /// bytes (nfgenmsg and attributes) undecoded: for capturing fixtures.
    package func dumpPayloads(family: Family?, _ body: ([UInt8]) throws -> Void) throws {
        try dumpPayloads(subsystem: CTMessage.subsystem, message: CTMessage.get, family: family, body)
    }

    /// A dump request of `subsystem`/`message` whose replies' payloads go
    /// to `body` undecoded.
    func dumpPayloads(subsystem: UInt8, message type: UInt8, family: Family?,
                      _ body: ([UInt8]) throws -> Void) throws {
        let request = NetlinkRequest(subsystem: subsystem, message: type,
                                     flags: NetlinkFlags.dump, family: family?.rawValue ?? 0)
        try socket.perform(request) { message in
            try body(message.payload.bytes)
        }
    }

    /// The number of entries (IPCTNL_MSG_CT_GET_STATS, CTA_STATS_GLOBAL_ENTRIES).
    package func count() throws -> UInt32 {
        try tableSize().entries
    }

    /// The number of entries and the table's limit (CTA_STATS_GLOBAL_MAX_ENTRIES).
    package func tableSize() throws -> (entries: UInt32, limit: UInt32?) {
        var stats: (entries: UInt32?, limit: UInt32?) = (nil, nil)
        let request = NetlinkRequest(subsystem: CTMessage.subsystem, message: CTMessage.getStats,
                                     flags: NetlinkFlags.ack, family: 0)
        try socket.perform(request) { message in
            stats = try Decoder.globalStats(message.payload)
        }
        guard let entries = stats.entries else { throw MalformedMessage("statistics reply without an entry count") }
        return (entries, stats.limit)
    }

    /// Per-CPU statistics (IPCTNL_MSG_CT_GET_STATS_CPU), one value per CPU.
    package func cpuStatistics(_ body: (CPUStats) throws -> Void) throws {
        let request = NetlinkRequest(subsystem: CTMessage.subsystem, message: CTMessage.getStatsCPU,
                                     flags: NetlinkFlags.dump, family: 0)
        try socket.perform(request) { message in
            try body(try Decoder.cpuStats(message.payload))
        }
    }

    /// Deletes every entry (IPCTNL_MSG_CT_DELETE without a tuple). With a
    /// family, the kernel deletes only entries of that family: it honours
    /// nfgen_family on a flush only when nfgenmsg.version is not 0 (Linux
    /// 4.18 added the family filter, 4.20 put it behind the version field),
    /// which is why conntrack 1.4.7, sending version 0, flushes everything.
    package func flush(family: Family?) throws {
        let request = NetlinkRequest(subsystem: CTMessage.subsystem, message: CTMessage.delete,
                                     flags: NetlinkFlags.ack, family: family?.rawValue ?? 0,
                                     version: family == nil ? 0 : 1)
        try socket.perform(request) { _ in }
    }

}

