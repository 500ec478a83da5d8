import CTCore

/// A live copy of the entries an event stream is about, kept by key, that
/// survives lost events: with the overflow policy `.resync` the stream
/// brings the whole table after a loss, and the copy is rebuilt from it.
public struct LiveTable: Sendable {
    /// The entries as last reported, by key.
    public private(set) var flows: [FlowKey: Flow] = [:]
    /// Times the stream reported lost events.
    public private(set) var losses = 0
    /// The entries of a resync under way.
    private var rebuilding: [FlowKey: Flow]?

    public init() {}

    /// Starts from a dump of the table.
    public mutating func load(_ dumped: [Flow]) {
        for flow in dumped {
            if let key = flow.key { flows[key] = flow }
        }
    }

    /// Applies one element of an event stream.
    public mutating func apply(_ element: ConntrackEvent) {
        switch element {
        case .event(let event):
            guard let key = event.flow.key else { return }
            switch event.type {
            case .new, .update: flows[key] = event.flow
            case .destroy: flows[key] = nil
            }
        case .lost:
            losses += 1
        case .resyncStarted:
            rebuilding = [:]
        case .snapshot(let flow):
            if let key = flow.key { rebuilding?[key] = flow }
        case .resyncFinished:
            if let rebuilding { flows = rebuilding }
            rebuilding = nil
        }
    }
}

/// Exports the events of `conntrack` that `filter` matches, one line each,
/// to `export`, until the task is cancelled; the table it keeps stays right
/// across lost events. Returns the table at the end.
public func exportEvents(of conntrack: Conntrack, matching filter: FlowFilter,
                         export: (String) -> Void) async throws(ConntrackError) -> LiveTable {
    var options = EventStreamOptions(overflow: .resync)
    options.receiveBufferSize = 8 << 20

    // Subscribe first, then load the table: nothing that happens between
    // the two is missed (an event for an entry the dump has already shows
    // the same state again).
    var events = conntrack.events(matching: filter, options: options).makeAsyncIterator()
    var table = LiveTable()
    table.load(try conntrack.allFlows(matching: filter))
    export("loaded \(table.flows.count) entries")

    while let element = try await events.next() {
        table.apply(element)
        switch element {
        case .event(let event):
            export("\(event.type) \(event.flow.ipProtocol.map { "\($0)" } ?? "?") id \(event.flow.id ?? 0)")
        case .lost:
            export("events lost, resynchronising")
        case .resyncFinished:
            export("resynchronised: \(table.flows.count) entries")
        case .resyncStarted, .snapshot:
            break
        }
    }
    return table
}
