import CTCore

/// A backend of a UDP service: the address and port that answer.
public struct Backend: Sendable {
    public var address: IPAddress
    public var port: UInt16
    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }
}

/// Deletes the UDP entries of every backend in `backends`, in one dump of
/// the table, and returns how many went.
///
/// The reply direction's source is the backend whether or not the entry was
/// NATed to it (a client that sent to a service address was translated to
/// the backend, which answers from its own address and port).
public func deleteStaleUDPEntries(of backends: [Backend],
                                  in conntrack: Conntrack) throws(ConntrackError) -> Int {
    let filters = backends.map { backend in
        var filter = FlowFilter()
        filter.ipProtocol = .udp
        filter.replySrc = AddressMatch(backend.address)
        filter.replySrcPort = backend.port
        return filter
    }
    var deleted = 0
    // A dump that the table changed under (DeleteSummary.interrupted) may
    // have missed an entry: one more pass catches it.
    for _ in 0..<3 {
        let summary = try conntrack.deleteAll(matchingAny: filters)
        deleted += summary.deleted
        if !summary.interrupted { break }
    }
    return deleted
}
