/// Creating and updating entries.
extension Conntrack {
    /// IPCTNL_MSG_CT_NEW with NLM_F_CREATE | NLM_F_EXCL, as conntrack sends
    /// for both -I and -A: the kernel creates the entry or answers EEXIST.
    static func createRequest(_ change: EntryChange) -> NetlinkRequest {
        NetlinkRequest(subsystem: CTMessage.subsystem, message: CTMessage.new,
                       flags: NetlinkFlags.create | NetlinkFlags.exclusive,
                       family: change.entry.family, attributes: Encode.changeAttributes(change))
    }

    /// Creates one entry; throws the kernel's error (EEXIST when it exists).
    public func create(_ change: EntryChange) throws {
        var request = Conntrack.createRequest(change)
        request.flags |= NetlinkFlags.ack
        try socket.perform(request) { _ in }
    }

    /// Creates many entries, as many per sendmsg as fit, in order. Returns
    /// the error of each create that failed, by index.
    public func create(batch changes: [EntryChange]) throws -> [Int: Errno] {
        var failures: [Int: Errno] = [:]
        var start = 0
        let perBatch = max(1, socket.sendCapacity / 2 / 256)
        while start < changes.count {
            let end = min(changes.count, start + perBatch)
            let requests = changes[start..<end].map(Conntrack.createRequest)
            for (i, error) in try socket.performBatch(requests) { failures[start + i] = error }
            start = end
        }
        return failures
    }

    /// Deletes the entry a create made (tuple and zone), to take back
    /// creates sent after one that failed.
    public func undoCreate(_ change: EntryChange) throws {
        var flow = change.entry
        flow.id = nil
        guard let request = Conntrack.deleteRequest(for: flow) else { return }
        var acked = request
        acked.flags |= NetlinkFlags.ack
        try socket.perform(acked) { _ in }
    }

    /// What happened to one entry an update was sent for.
    public enum UpdateResult {
        /// The entry after the update (the update itself may have failed
        /// with `updateError`, as the kernel refused it).
        case updated(Flow, updateError: Errno?)
        /// The entry was gone by the time it was read back.
        case vanished
    }

    /// Updates the entries `selector` selects: `change` gives the change for
    /// each entry (nil: nothing to change, not sent). Each update goes out
    /// with a get of the same entry, many per sendmsg on a second socket and
    /// thread, and `onResult` sees each entry as the kernel then reports it.
    /// An error reading an entry back (other than ENOENT) ends the operation.
    public func update(_ selector: Selector, kernel: KernelFilterSupport,
                       change: (Flow) -> EntryChange?,
                       _ onResult: (UpdateResult) throws -> Void) throws {
        let updater = try NetlinkSocket()
        // Room for every reply of a batch: one entry message per get.
        try? updater.setSocketReceiveBuffer(bytes: 4 << 20)
        let perBatch = 128
        try withoutActuallyEscaping(onResult) { onResult in
            try pipelined(selector, kernel: kernel, perBatch: perBatch, requests: { flow in
                guard let c = change(flow) else { return [] }
                return Conntrack.updateRequests(flow, c)
            }, work: { batch in
                var replies = [Flow?](repeating: nil, count: batch.requests.count)
                let failures = try updater.performBatch(batch.requests) { index, message in
                    guard message.subsystem == CTMessage.subsystem else { return }
                    replies[index] = try Decoder.flow(message.payload)
                }
                for i in 0..<batch.flows.count {
                    let update = 2 * i, get = 2 * i + 1
                    if let error = failures[get] {
                        if error == Errno.noEntry {
                            try onResult(.vanished)
                            continue
                        }
                        throw error
                    }
                    guard let flow = replies[get] else { throw Errno.badMessage }
                    try onResult(.updated(flow, updateError: failures[update]))
                }
            })
        }
    }

    /// IPCTNL_MSG_CT_NEW without NLM_F_CREATE (change an existing entry,
    /// found by its original tuple and zone), then IPCTNL_MSG_CT_GET of the
    /// same entry.
    static func updateRequests(_ flow: Flow, _ change: EntryChange) -> [NetlinkRequest] {
        guard let orig = flow.orig else { return [] }
        var c = change
        c.entry.orig = orig
        c.entry.reply = nil
        c.entry.zone = flow.zone
        c.entry.family = flow.family
        let update = NetlinkRequest(subsystem: CTMessage.subsystem, message: CTMessage.new, flags: 0,
                                    family: flow.family, attributes: Encode.changeAttributes(c))
        var key: [RequestAttribute] = [Encode.tuple(CTA.tupleOrig, orig)]
        if let zone = flow.zone { key.append(.u16(CTA.zone, zone)) }
        let get = NetlinkRequest(subsystem: CTMessage.subsystem, message: CTMessage.get, flags: 0,
                                 family: flow.family, attributes: key)
        return [update, get]
    }
}
