/// Creating and updating entries.
extension CTSession {
    /// IPCTNL_MSG_CT_NEW with NLM_F_CREATE | NLM_F_EXCL, as conntrack sends
    /// for both -I and -A: the kernel creates the entry or answers EEXIST.
    static func createRequest(_ change: EntryChange) -> NetlinkRequest {
        NetlinkRequest(subsystem: CTMessage.subsystem, message: CTMessage.new,
                       flags: NetlinkFlags.create | NetlinkFlags.exclusive,
                       family: change.entry.family.rawValue, attributes: Encode.changeAttributes(change))
    }

    /// Creates one entry; throws the kernel's error (EEXIST when it exists).
    package func create(_ change: EntryChange) throws {
        var request = CTSession.createRequest(change)
        request.flags |= NetlinkFlags.ack
        try socket.perform(request) { _ in }
    }

    /// What happened to one entry an update was sent for.
    package enum UpdateResult {
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
    package func update(_ selector: Selector, kernel: KernelFilterSupport,
                       change: (Flow) -> EntryChange?,
                       _ onResult: (UpdateResult) throws -> Void) throws {
        let updater = try sockets.batchSocket()
        let perBatch = 128
        _ = try withoutActuallyEscaping(onResult) { onResult in
            try pipelined(selector, kernel: kernel, perBatch: perBatch, requests: { flow in
                guard let c = change(flow) else { return [] }
                return CTSession.updateRequests(flow, c)
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
                                    family: flow.family.rawValue, attributes: Encode.changeAttributes(c))
        let get = NetlinkRequest(subsystem: CTMessage.subsystem, message: CTMessage.get, flags: 0,
                                 family: flow.family.rawValue, attributes: Encode.entryKey(orig: orig, zone: flow.zone))
        return [update, get]
    }
}

/// Creates entries as they are handed over, in batches sent by a second
/// thread, while the caller goes on (-R parses its file meanwhile). The
/// first create that fails (other than EEXIST where that is allowed) stops
/// the stream: the creates sent after it in its batch are taken back and
/// later batches are not sent. `rollBack` deletes every entry the stream
/// created, for a caller that must leave the table as it found it.
package final class CreateStream {
    /// A create the kernel refused: its index in the order of `add` calls.
    package struct Failure: Sendable {
        package let index: Int
        package let error: Errno
    }

    private struct Batch {
        var start: Int
        var changes: [EntryChange] = []
        var tolerateExisting: [Bool] = []

        /// An empty batch with room for `capacity` creates.
        init(start: Int, capacity: Int) {
            self.start = start
            changes.reserveCapacity(capacity)
            tolerateExisting.reserveCapacity(capacity)
        }
    }

    /// What deletes a created entry again: its family, tuple and zone (a
    /// whole Flow per entry would double -R's memory).
    private struct Made {
        var family: Family
        var orig: Tuple
        var zone: UInt16?

        init?(_ entry: Flow) {
            guard let orig = entry.orig else { return nil }
            family = entry.family
            self.orig = orig
            zone = entry.zone
        }

        var deleteRequest: NetlinkRequest? {
            var flow = Flow()
            flow.family = family
            flow.orig = orig
            flow.zone = zone
            return CTSession.deleteRequest(for: flow)
        }
    }

    private let socket: NetlinkSocket
    private var pipeline: BatchPipeline<Batch>!
    private var batch: Batch
    private var count = 0
    private let perBatch: Int
    private let monitor = Monitor()
    // Written by the sending thread; read by others under `monitor`, or
    // after `finish`.
    private var created: [Made] = []
    private var failed: Failure?

    package init(sockets: SocketSource = .current) throws {
        socket = try sockets.batchSocket()
        perBatch = max(1, socket.sendCapacity / 2 / 256)
        batch = Batch(start: 0, capacity: perBatch)
        pipeline = BatchPipeline<Batch> { [unowned self] batch in try self.send(batch) }
        try pipeline.start()
    }

    /// True once a create has failed: nothing more will be sent.
    package var hasFailed: Bool { monitor.locked { failed != nil } }

    /// Queues one create; `tolerateExisting` makes EEXIST no failure (-A).
    package func add(_ change: EntryChange, tolerateExisting: Bool) throws {
        batch.changes.append(change)
        batch.tolerateExisting.append(tolerateExisting)
        count += 1
        if batch.changes.count >= perBatch { try flush() }
    }

    private func flush() throws {
        guard !batch.changes.isEmpty else { return }
        let full = batch
        batch = Batch(start: count, capacity: perBatch)
        try pipeline.submit(full)
    }

    /// Sends what is queued and waits for all of it. Returns the failure,
    /// if a create failed.
    package func finish() throws -> Failure? {
        // A failed submit is the sending thread's error, which finish returns.
        try? flush()
        if let error = pipeline.finish() { throw error }
        return failed
    }

    /// Deletes every entry this stream created (call after `finish`).
    package func rollBack() throws {
        try delete(created.reversed())
        created = []
    }

    /// Deletes entries this stream made, in batches; one already gone is fine.
    private func delete<S: Sequence>(_ entries: S) throws where S.Element == Made {
        var requests: [NetlinkRequest] = []
        func send() throws {
            if let error = try socket.performBatch(requests).values.first(where: { $0 != Errno.noEntry }) { throw error }
            requests = []
        }
        for entry in entries {
            if let request = entry.deleteRequest { requests.append(request) }
            if requests.count >= perBatch { try send() }
        }
        if !requests.isEmpty { try send() }
    }

    private func send(_ batch: Batch) throws {
        if monitor.locked({ failed != nil }) { return }
        let failures = try socket.performBatch(batch.changes.map(CTSession.createRequest))
        let firstFailure = failures.keys.sorted().first { i in
            !(batch.tolerateExisting[i] && failures[i] == Errno.exists)
        }
        let end = firstFailure ?? batch.changes.count
        func madeIn(_ range: Range<Int>) -> [Made] {
            range.filter { failures[$0] == nil }.compactMap { Made(batch.changes[$0].entry) }
        }
        let made = madeIn(0..<end)
        // Recorded first: `rollBack` must find them even when the deletes
        // below fail.
        monitor.locked {
            created += made
            if let f = firstFailure { failed = Failure(index: batch.start + f, error: failures[f]!) }
        }
        // Those sent after the failure: conntrack would not have made them.
        try delete(madeIn(end..<batch.changes.count))
    }
}
