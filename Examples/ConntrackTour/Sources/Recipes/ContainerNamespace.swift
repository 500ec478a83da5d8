import CTCore

/// The entries of the network namespace that process `pid` runs in (a
/// container's), that `filter` matches.
public func flows(ofProcess pid: Int32,
                  matching filter: FlowFilter = FlowFilter()) throws(ConntrackError) -> [Flow] {
    let conntrack = try Conntrack(namespace: .path("/proc/\(pid)/ns/net"))
    return try conntrack.allFlows(matching: filter)
}

/// Counts the entries of a namespace by protocol without collecting them.
public func protocolCounts(in conntrack: Conntrack) throws(ConntrackError) -> [IPProtocol: Int] {
    var counts: [IPProtocol: Int] = [:]
    try conntrack.forEachFlow { flow in
        if let proto = flow.ipProtocol { counts[proto, default: 0] += 1 }
        return .proceed
    }
    return counts
}
