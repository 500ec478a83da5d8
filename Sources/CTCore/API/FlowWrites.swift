/// What names exactly one conntrack entry: its original tuple (addresses,
/// protocol and the protocol's fields) and zone, optionally its id.
///
/// A key always has a tuple: the kernel treats a delete without one as a
/// flush of the whole table, so the library cannot express one.
public struct FlowKey: Sendable, Hashable {
    /// The family of the tuple's addresses.
    public let family: Family
    /// The original direction's tuple.
    public let tuple: Tuple
    /// The zone (CTA_ZONE); nil is zone 0.
    public var zone: UInt16?
    /// The entry id (CTA_ID): with it, the kernel deletes the entry only if
    /// it is still the same one (not a new entry with the same tuple).
    public var id: UInt32?

    /// A key for the entry whose original tuple is `tuple`. The tuple needs
    /// both addresses, of one family, and a protocol (and the protocol's
    /// ports or ICMP fields, as the entry has them).
    ///
    /// - Throws: ``ConntrackError/Reason/invalidArgument(_:)`` for a tuple
    ///   without both addresses or a protocol, or with addresses of two
    ///   families.
    public init(tuple: Tuple, zone: UInt16? = nil, id: UInt32? = nil) throws(ConntrackError) {
        guard let src = tuple.src, let dst = tuple.dst, tuple.proto != nil else {
            throw ConntrackError(.key, .invalidArgument("a flow key needs a tuple with both addresses and a protocol"))
        }
        switch (src, dst) {
        case (.v4, .v4): family = .ipv4
        case (.v6, .v6): family = .ipv6
        default: throw ConntrackError(.key, .invalidArgument("a flow key's addresses must be of one family"))
        }
        self.tuple = tuple
        self.zone = zone
        self.id = id
    }

    /// The entry's request attributes, as a flow.
    package var flow: Flow {
        var flow = Flow()
        flow.family = family
        flow.orig = tuple
        flow.zone = zone
        flow.id = id
        return flow
    }
}

extension Flow {
    /// The flow, with the family of its original tuple's addresses when it
    /// has none (a created Flow() has family 0, which the kernel refuses
    /// with EOPNOTSUPP).
    /// Without a reply tuple, the original one reversed (the kernel
    /// refuses a create without CTA_TUPLE_REPLY with EINVAL).
    var withFamilyOfTuple: Flow {
        var flow = self
        if case .other(0) = family, let src = orig?.src {
            switch src {
            case .v4: flow.family = .ipv4
            case .v6: flow.family = .ipv6
            }
        }
        if flow.reply == nil, let orig, orig.icmpType == nil {
            var reply = orig
            reply.src = orig.dst
            reply.dst = orig.src
            reply.srcPort = orig.dstPort
            reply.dstPort = orig.srcPort
            flow.reply = reply
        }
        return flow
    }

    /// The key of this entry: its original tuple, zone and id; nil when the
    /// entry has no complete original tuple.
    public var key: FlowKey? {
        guard let orig else { return nil }
        return try? FlowKey(tuple: orig, zone: zone, id: id)
    }
}

/// What an update sets on an existing entry. Fields left nil stay as they are.
public struct FlowUpdate: Sendable, Equatable {
    /// The timeout, in seconds from now.
    public var timeout: UInt32?
    /// The mark; with ``markMask`` the kernel sets `(old & ~markMask) ^ mark`.
    public var mark: UInt32?
    /// The bits of the mark to change (all, when nil).
    public var markMask: UInt32?
    /// The status the entry is to have. The kernel sets the bits given that
    /// may change and clears none; it refuses (EBUSY) an update whose status
    /// lacks SEEN_REPLY or ASSURED while the entry has them, or differs in
    /// EXPECTED, CONFIRMED or DYING. Start from the entry's own status
    /// (`flow.status`) and add bits.
    public var status: Status?
    /// Labels; with ``labelsMask``, only the bits of the mask change.
    public var labels: Labels?
    /// The labels to change (all, when nil).
    public var labelsMask: Labels?
    /// Protocol state to set (for example a TCP state).
    public var protoInfo: ProtoInfo?

    /// An update that changes nothing yet.
    public init() {}

    package func change(for key: FlowKey) -> EntryChange {
        var entry = key.flow
        entry.id = nil
        entry.timeout = timeout
        entry.mark = mark
        entry.status = status
        entry.labels = labels
        entry.protoInfo = protoInfo
        return EntryChange(entry: entry, markMask: mark == nil ? nil : markMask, labelsMask: labelsMask)
    }
}

/// What happened to one entry of a write.
public enum WriteResult: Sendable, Equatable {
    /// The kernel did it.
    case done
    /// There was no such entry (ENOENT): for a delete, it was gone already.
    case notFound
    /// The kernel refused it with this error (EEXIST for a create of an
    /// entry that exists).
    case failed(Errno)

    init(_ error: Errno?) {
        switch error {
        case nil: self = .done
        case Errno.noEntry?: self = .notFound
        case let e?: self = .failed(e)
        }
    }
}

/// One write of a batch (see ``Conntrack/apply(_:rollback:)``).
public enum FlowWrite: Sendable, Equatable {
    /// Create an entry from the flow's tuples and values (see
    /// ``Conntrack/create(_:sourceNAT:destinationNAT:)``).
    case create(Flow)
    /// Change an existing entry.
    case update(FlowKey, FlowUpdate)
    /// Delete an entry.
    case delete(FlowKey)
}

/// What a delete by filter did.
public struct DeleteSummary: Sendable, Equatable {
    /// Entries the kernel deleted.
    public var deleted = 0
    /// `onDeleted` ended the delete early.
    public var stopped = false
    /// The kernel flagged the dump that found the entries as interrupted
    /// (NLM_F_DUMP_INTR): the table changed meanwhile, and an entry that
    /// matched may have been missed. Run the delete again to catch it.
    public var interrupted = false
    /// Why messages of the dump were skipped (they could not be decoded).
    public var skipped: [String] = []
    /// A summary of nothing deleted.
    public init() {}
}

extension Conntrack {
    /// The entry `key` names, as the kernel reports it now; nil when there
    /// is none.
    public func get(_ key: FlowKey) throws(ConntrackError) -> Flow? {
        do {
            return try withSession(.get) { session in
                try session.get(family: key.family, tuple: key.tuple, zone: key.zone)
            }
        } catch where error.errno == .noEntry {
            return nil
        }
    }

    /// Creates an entry from `flow`: its original tuple (required), reply
    /// tuple (derived by the kernel when nil), zone, status, timeout
    /// (required by the kernel), mark, labels and protocol state. With a
    /// NAT, the kernel sets up that translation (address, and port if
    /// given). Throws with `errno` `.exists` when the entry exists.
    public func create(_ flow: Flow, sourceNAT: NATMatch? = nil,
                       destinationNAT: NATMatch? = nil) throws(ConntrackError) {
        guard flow.orig != nil else {
            throw ConntrackError(.create, .invalidArgument("an entry to create needs an original tuple"))
        }
        var change = EntryChange(entry: flow.withFamilyOfTuple)
        change.sourceNAT = sourceNAT
        change.destinationNAT = destinationNAT
        try withSession(.create) { session in try session.create(change) }
    }

    /// Applies `update` to the entry `key` names and returns the entry as
    /// the kernel then reports it; nil when there is no such entry.
    @discardableResult
    public func update(_ key: FlowKey, _ update: FlowUpdate) throws(ConntrackError) -> Flow? {
        try withSession(.update) { session in
            let requests = CTSession.updateRequests(key.flow, update.change(for: key))
            var after: Flow? = nil
            let failures = try session.socket.performBatch(requests) { index, message in
                if index == 1, message.subsystem == CTMessage.subsystem { after = try Decoder.flow(message.payload) }
            }
            if let error = failures[0] {
                if error == Errno.noEntry { return nil }
                throw error
            }
            if let error = failures[1], error != Errno.noEntry { throw error }
            return after
        }
    }

    /// Deletes the entry `key` names. `.notFound` when it was gone already.
    @discardableResult
    public func delete(_ key: FlowKey) throws(ConntrackError) -> WriteResult {
        try delete([key])[0]
    }

    /// Deletes the entries `keys` name, many per system call, and returns
    /// what happened to each, in order: ``WriteResult/notFound`` for an
    /// entry that was gone already. A key with an id deletes the entry only
    /// while it is the same one.
    public func delete(_ keys: [FlowKey]) throws(ConntrackError) -> [WriteResult] {
        try apply(keys.map { .delete($0) })
    }

    /// Deletes every entry `filter` matches, found by one dump; the deletes
    /// go out in batches on a second thread while the dump goes on, each
    /// naming its entry by tuple, zone and id, so nothing but a matched
    /// entry can go.
    ///
    /// The kernel applies what it can of `filter` to the dump (see
    /// <doc:KernelFiltering>); every entry is checked against the whole
    /// filter before it is deleted. Nothing is ever sent as a flush.
    ///
    /// - Parameters:
    ///   - filter: The entries to delete.
    ///   - onDeleted: Called with each entry the kernel deleted, on the
    ///     deleting thread, one at a time and in order; ``DumpControl/stop``
    ///     ends the delete (the batch under way is deleted all the same).
    /// - Returns: How many entries were deleted, whether `onDeleted`
    ///   stopped the delete, whether the dump was interrupted, and what was
    ///   skipped.
    @discardableResult
    public func deleteAll(matching filter: FlowFilter,
                          onDeleted: (Flow) -> DumpControl = { _ in .proceed }) throws(ConntrackError) -> DeleteSummary {
        try deleteAll(matchingAny: [filter], onDeleted: onDeleted)
    }

    /// Deletes every entry that any of `filters` matches, in one dump of the
    /// table (for example the entries of many backends at once). Only what
    /// all the filters share is handed to the kernel as a dump filter (the
    /// family, when they all name the same one). An entry that several
    /// filters match is deleted once.
    ///
    /// - Parameters:
    ///   - filters: The filters; an entry any of them matches is deleted.
    ///     None: nothing is deleted.
    ///   - onDeleted: Called with each entry the kernel deleted, on the
    ///     deleting thread, one at a time and in order; ``DumpControl/stop``
    ///     ends the delete.
    /// - Returns: How many entries were deleted, whether `onDeleted`
    ///   stopped the delete, whether the dump was interrupted, and what was
    ///   skipped.
    @discardableResult
    public func deleteAll(matchingAny filters: [FlowFilter],
                          onDeleted: (Flow) -> DumpControl = { _ in .proceed }) throws(ConntrackError) -> DeleteSummary {
        guard !filters.isEmpty else { return DeleteSummary() }
        let capabilities = self.capabilities
        var dumpFilter = filters.count == 1 ? filters[0] : FlowFilter()
        if filters.count > 1, let family = filters[0].family, filters.allSatisfy({ $0.family == family }) {
            dumpFilter.family = family
        }
        let extra: ((Flow) -> Bool)? = filters.count == 1 ? nil : { flow in filters.contains { $0.matches(flow) } }
        return try withSession(.delete) { session in
            var summary = DeleteSummary()
            do {
                summary.interrupted = try session.delete(dumpFilter, kernel: capabilities, where: extra) { flow in
                    summary.deleted += 1
                    if onDeleted(flow) == .stop { throw StopDump() }
                }.interrupted
            } catch is StopDump {
                summary.stopped = true
            }
            summary.skipped = session.malformed.map(\.reason)
            return summary
        }
    }

    /// Sends `writes` in as few system calls as fit, in order, and returns
    /// what happened to each. The kernel carries on after a failed write.
    ///
    /// With `rollback`, a batch in which any write failed is taken back as
    /// far as it can be: the entries it created are deleted again (updates
    /// and deletes cannot be undone). A write failed when its result is
    /// ``WriteResult/failed(_:)``, or ``WriteResult/notFound`` for an update
    /// (a delete of an entry gone already left the table as asked). The
    /// results still say what the kernel did to each before the rollback.
    public func apply(_ writes: [FlowWrite], rollback: Bool = false) throws(ConntrackError) -> [WriteResult] {
        guard !writes.isEmpty else { return [] }
        var requests: [NetlinkRequest] = []
        requests.reserveCapacity(writes.count)
        for write in writes {
            switch write {
            case .create(let flow):
                guard flow.orig != nil else {
                    throw ConntrackError(.create, .invalidArgument("an entry to create needs an original tuple"))
                }
                requests.append(CTSession.createRequest(EntryChange(entry: flow.withFamilyOfTuple)))
            case .update(let key, let update):
                requests.append(CTSession.updateRequests(key.flow, update.change(for: key))[0])
            case .delete(let key):
                requests.append(CTSession.deleteRequest(for: key.flow)!)
            }
        }
        let operation: ConntrackError.Operation
        if writes.allSatisfy({ if case .delete = $0 { true } else { false } }) {
            operation = .delete
        } else if writes.allSatisfy({ if case .create = $0 { true } else { false } }) {
            operation = .create
        } else {
            operation = .update
        }
        return try withSession(operation) { session in
            let perBatch = 512
            var results: [WriteResult] = []
            results.reserveCapacity(writes.count)
            var start = 0
            while start < requests.count {
                let end = min(start + perBatch, requests.count)
                let failures = try session.socket.performBatch(Array(requests[start..<end]))
                for i in start..<end { results.append(WriteResult(failures[i - start])) }
                start = end
            }
            let failed = zip(writes, results).contains { write, result in
                switch (write, result) {
                case (_, .done), (.delete, .notFound): false
                default: true
                }
            }
            if rollback, failed {
                var undo: [NetlinkRequest] = []
                for (write, result) in zip(writes, results) {
                    guard case .create(var flow) = write, result == .done else { continue }
                    // The entry made has an id of its own: a flow copied
                    // from a dump still carries its old one, and a delete
                    // naming that id would miss the new entry (ENOENT).
                    flow.id = nil
                    if let request = CTSession.deleteRequest(for: flow.withFamilyOfTuple) { undo.append(request) }
                }
                var at = 0
                while at < undo.count {
                    let end = min(at + perBatch, undo.count)
                    _ = try session.socket.performBatch(Array(undo[at..<end]))
                    at = end
                }
            }
            return results
        }
    }

    /// Deletes every entry of the handle's table, of every family.
    public func flush() throws(ConntrackError) {
        try withSession(.flush) { session in try session.flush(family: nil) }
    }

    /// Deletes every entry of `family` only. Kernels before 5.0 ignore the
    /// family of a flush and would delete every entry; on those (as the
    /// handle's ``capabilities`` say) this throws `.unsupported` and sends
    /// nothing.
    public func flush(family: Family) throws(ConntrackError) {
        // Family 0 (AF_UNSPEC) is what the kernel reads as "every family".
        guard family.rawValue != 0 else {
            throw ConntrackError(.flush, .invalidArgument("a flush of one family needs a family other than 0"))
        }
        guard capabilities.supports(.familyFlush) else {
            throw ConntrackError(.flush, .unsupported(.familyFlush, kernel: capabilities.version))
        }
        try withSession(.flush) { session in try session.flush(family: family) }
    }
}
