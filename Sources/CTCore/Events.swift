import Glibc

/// What happened to an entry, as ctnetlink's event messages tell it.
public enum EventType: Sendable, Hashable, CaseIterable {
    /// An entry was created (IPCTNL_MSG_CT_NEW with NLM_F_CREATE | NLM_F_EXCL).
    case new
    /// An entry changed: its status, protocol state, mark, labels, ...
    /// (IPCTNL_MSG_CT_NEW without those flags).
    case update
    /// An entry was removed: it expired, was deleted or flushed
    /// (IPCTNL_MSG_CT_DELETE).
    case destroy

    /// The line prefix of conntrack's text format: the kind in brackets,
    /// right-aligned in nine columns, and a space.
    package var label: StaticString {
        switch self {
        case .new: "    [NEW] "
        case .update: " [UPDATE] "
        case .destroy: "[DESTROY] "
        }
    }
}

/// One conntrack event.
public struct Event: Sendable, Equatable {
    /// What happened to the entry.
    public var type: EventType
    /// The entry as the event describes it (a destroy carries the final
    /// counters; an update only what changed may be complete).
    public var flow: Flow
    /// The netlink port of the process whose request caused the event, or 0
    /// for the kernel's own changes (nlmsghdr.nlmsg_pid).
    public var portID: UInt32

    /// An event of `type` about `flow`, caused by port `portID`.
    public init(type: EventType, flow: Flow, portID: UInt32) {
        self.type = type
        self.flow = flow
        self.portID = portID
    }
}

/// A subscription to conntrack events: decodes each event message, checks
/// it against the selector and hands on those that match.
package final class EventListener {
    let socket: EventSocket
    let selector: Selector
    /// A check of the caller's own that events must pass too.
    let extra: ((Flow) -> Bool)?

    /// Subscribes to `groups`. With `kernelFilter`, a socket filter built
    /// from `selector` (see `EventFilter`) drops in the kernel what cannot
    /// match; a kernel that refuses the filter only costs speed.
    package init(groups: EventGroups, selector: Selector, kernelFilter: Bool, reliable: Bool = false,
                 where extra: ((Flow) -> Bool)? = nil) throws(Errno) {
        socket = try EventSocket(groups: groups, reliable: reliable)
        self.selector = selector
        self.extra = extra
        if kernelFilter, let program = EventFilter.program(for: selector) {
            try? socket.attach(program)
        }
    }

    /// Sets the socket's receive buffer (see `EventSocket.setReceiveBuffer`).
    package func setReceiveBuffer(bytes: Int) throws(Errno) {
        try socket.setReceiveBuffer(bytes: bytes)
    }

    /// The receive buffer as the kernel reports it.
    package var receiveBufferSize: Int { socket.receiveBufferSize }

    /// Waits for events and hands on every queued one that the selector
    /// selects; see `EventSocket.receive` for `signalMask` and errors. A
    /// message that cannot be decoded, or a datagram the kernel cut short,
    /// goes to `onMalformed`.
    package func next(signalMask: sigset_t, wake: Int32 = -1, onMalformed: (MalformedMessage) -> Void,
                     _ body: (Event) throws -> Void) throws -> EventWait {
        try socket.receiveEvents(subsystem: CTMessage.subsystem, new: CTMessage.new, delete: CTMessage.delete,
                                 signalMask: signalMask, wake: wake, onMalformed: onMalformed) { type, message in
            guard let flow = try Decoder.decoded(message.payload, Decoder.flow, onMalformed: onMalformed) else { return }
            if selector.matches(flow), extra?(flow) ?? true {
                try body(Event(type: type, flow: flow, portID: message.portID))
            }
        }
    }
}

/// A subscription to expectation events (NFNL_SUBSYS_CTNETLINK_EXP): the
/// kernel reports new expectations (IPCTNL_MSG_EXP_NEW with NLM_F_CREATE)
/// and ones that went (IPCTNL_MSG_EXP_DELETE).
package final class ExpectationListener {
    let socket: EventSocket

    package init() throws(Errno) {
        socket = try EventSocket(groups: .allExpectations)
    }

    /// Sets the socket's receive buffer (see `EventSocket.setReceiveBuffer`).
    package func setReceiveBuffer(bytes: Int) throws(Errno) {
        try socket.setReceiveBuffer(bytes: bytes)
    }

    /// Waits for events and hands on every queued one, as
    /// `EventListener.next` does.
    package func next(signalMask: sigset_t, wake: Int32 = -1, onMalformed: (MalformedMessage) -> Void,
                     _ body: (EventType, Expectation) throws -> Void) throws -> EventWait {
        try socket.receiveEvents(subsystem: ExpectMessage.subsystem, new: ExpectMessage.new,
                                 delete: ExpectMessage.delete, signalMask: signalMask, wake: wake,
                                 onMalformed: onMalformed) { type, message in
            guard let expectation = try Decoder.decoded(message.payload, Decoder.expectation,
                                                        onMalformed: onMalformed) else { return }
            try body(type, expectation)
        }
    }
}

extension EventSocket {
    /// One wait: hands on each queued event message of `subsystem` with its
    /// type (`new` with NLM_F_CREATE | NLM_F_EXCL is new, without them an
    /// update; `delete` is a destroy); other messages are skipped, and each
    /// datagram the kernel cut short goes to `onMalformed`.
    func receiveEvents(subsystem: UInt8, new: UInt8, delete: UInt8, signalMask: sigset_t, wake: Int32,
                       onMalformed: (MalformedMessage) -> Void,
                       _ body: (EventType, NetlinkMessage) throws -> Void) throws -> EventWait {
        let truncatedBefore = truncated
        defer {
            for _ in truncatedBefore..<truncated { onMalformed(MalformedMessage("datagram truncated")) }
        }
        return try receive(signalMask: signalMask, wake: wake) { message in
            guard message.subsystem == subsystem else { return }
            let type: EventType
            switch message.subsystemMessage {
            case new:
                let created = NetlinkFlags.create | NetlinkFlags.exclusive
                type = message.flags & created != 0 ? .new : .update
            case delete:
                type = .destroy
            default:
                return
            }
            try body(type, message)
        }
    }
}
