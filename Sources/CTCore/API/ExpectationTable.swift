import Glibc

/// An expectation event: a helper started expecting a connection, or an
/// expectation went (it was used, timed out or was deleted).
public enum ExpectationEvent: Sendable, Equatable {
    /// A helper set up an expectation.
    case new(Expectation)
    /// An expectation was used, timed out or was deleted.
    case destroy(Expectation)
    /// The kernel dropped events here: the stream has a gap.
    case lost
}

extension Conntrack {
    /// Calls `body` with each expectation of `family` (every family for
    /// nil) as the kernel's answer arrives.
    @discardableResult
    public func forEachExpectation(family: Family? = nil,
                                   _ body: (Expectation) -> DumpControl) throws(ConntrackError) -> DumpSummary {
        try withSession(.expectationDump) { session in
            var summary = DumpSummary()
            do {
                try session.dumpExpectations(family: family) { expectation in
                    if body(expectation) == .stop { throw StopDump() }
                }
            } catch is StopDump {
                summary.stopped = true
            }
            summary.skipped = session.malformed.map(\.reason)
            return summary
        }
    }

    /// Every expectation of `family` (every family for nil).
    public func allExpectations(family: Family? = nil) throws(ConntrackError) -> [Expectation] {
        var all: [Expectation] = []
        try forEachExpectation(family: family) { all.append($0); return .proceed }
        return all
    }

    /// The expectation whose expected tuple matches `tuple` (under its
    /// mask); nil when there is none.
    public func expectation(for tuple: Tuple, family: Family) throws(ConntrackError) -> Expectation? {
        do {
            return try withSession(.expectationGet) { session in
                try session.getExpectation(family: family, tuple: tuple)
            }
        } catch where error.errno == .noEntry {
            return nil
        }
    }

    /// Creates an expectation of a connection matching `expected` under
    /// `mask`, on the existing entry `master`, which must have a helper.
    /// Throws with `errno` `.noEntry` when there is no such master, `.exists`
    /// when a clashing expectation exists.
    ///
    /// - Parameters:
    ///   - master: The original tuple of the entry that expects the connection.
    ///   - expected: The expected connection's tuple.
    ///   - mask: Which fields of `expected` a connection must match: all ones
    ///     for a field to compare, zero for any value.
    ///   - family: The family of the tuples.
    ///   - timeout: Seconds until the expectation expires; nil for the
    ///     helper's default. The kernel sets the timeout of an expectation
    ///     whose master has a kernel helper to that helper's own (sip:
    ///     180 s) whatever is asked here; `conntrack -I expect -t` fares
    ///     the same.
    public func createExpectation(master: Tuple, expected: Tuple, mask: Tuple, family: Family,
                                  timeout: UInt32?) throws(ConntrackError) {
        try withSession(.expectationCreate) { session in
            try session.createExpectation(family: family, master: master, expected: expected, mask: mask,
                                          timeout: timeout)
        }
    }

    /// Deletes the expectation whose expected tuple matches `tuple`;
    /// `.notFound` when there is none.
    @discardableResult
    public func deleteExpectation(for tuple: Tuple, family: Family) throws(ConntrackError) -> WriteResult {
        do {
            try withSession(.expectationDelete) { session in
                try session.deleteExpectation(family: family, tuple: tuple)
            }
            return .done
        } catch where error.errno == .noEntry {
            return .notFound
        }
    }

    /// Deletes every expectation.
    public func flushExpectations() throws(ConntrackError) {
        try withSession(.expectationFlush) { session in try session.flushExpectations(family: nil) }
    }

    /// Expectation events, as they happen, until the task is cancelled or
    /// the iterator dropped. Lost events are delivered as ``ExpectationEvent/lost``;
    /// with `failOnOverflow` the stream ends with a ``ConntrackError``
    /// (`.eventsLost`) instead.
    public func expectationEvents(failOnOverflow: Bool = false) -> ExpectationEventSequence {
        ExpectationEventSequence(conntrack: self, failOnOverflow: failOnOverflow)
    }
}

/// The events of one expectation subscription (see
/// ``Conntrack/expectationEvents(failOnOverflow:)``).
public struct ExpectationEventSequence: AsyncSequence, Sendable {
    /// An expectation event, or a loss.
    public typealias Element = ExpectationEvent
    /// What ends a stream early: a socket error, or a loss with
    /// `failOnOverflow`.
    public typealias Failure = ConntrackError

    let conntrack: Conntrack
    let failOnOverflow: Bool

    /// Subscribes: starts the thread that listens.
    public func makeAsyncIterator() -> Iterator {
        let pipe: WakePipe
        do {
            pipe = try WakePipe()
        } catch {
            let channel = StreamChannel<ExpectationEvent>(capacity: 1)
            channel.finish(ConntrackError(.events, wrapping: error))
            return Iterator(reader: ChannelReader(channel))
        }
        let channel = StreamChannel<ExpectationEvent>(capacity: 16, onCancel: { pipe.wake() })
        let failOnOverflow = self.failOnOverflow
        do {
            // Subscribed before the iterator is handed out: no event after
            // this call is missed.
            let listener = UncheckedBox(try conntrack.sockets.gate.run { try ExpectationListener() })
            try WorkerThread.detached {
                do throws(ConntrackError) {
                    try Self.listen(listener.value, failOnOverflow: failOnOverflow, channel: channel, wake: pipe)
                    channel.finish()
                } catch {
                    channel.finish(error)
                }
            }
        } catch {
            channel.finish(ConntrackError(.events, wrapping: error))
        }
        return Iterator(reader: ChannelReader(channel))
    }

    private static func listen(_ listener: ExpectationListener, failOnOverflow: Bool,
                               channel: StreamChannel<ExpectationEvent>, wake: WakePipe) throws(ConntrackError) {
        var mask = sigset_t()
        pthread_sigmask(SIG_SETMASK, nil, &mask)
        var pending: [ExpectationEvent] = []
        while !channel.isCancelled {
            do {
                _ = try listener.next(signalMask: mask, wake: wake.readEnd, onMalformed: { _ in }) { type, e in
                    pending.append(type == .destroy ? .destroy(e) : .new(e))
                }
            } catch let error as Errno where error == .noBufferSpace {
                pending.append(.lost)
                if failOnOverflow {
                    _ = channel.put(pending)
                    throw ConntrackError(.events, .eventsLost)
                }
            } catch {
                _ = channel.put(pending)
                throw ConntrackError(.events, wrapping: error)
            }
            guard channel.put(pending) else { return }
            pending.removeAll(keepingCapacity: true)
        }
    }

    /// One subscription; dropping it ends the subscription.
    public struct Iterator: AsyncIteratorProtocol {
        let reader: ChannelReader<ExpectationEvent>

        /// The next event; nil once the task is cancelled or the iterator
        /// dropped.
        public mutating func next() async throws(ConntrackError) -> ExpectationEvent? {
            try await reader.next()
        }

        /// The next event; nil once the task is cancelled or the iterator
        /// dropped.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(ConntrackError) -> ExpectationEvent? {
            try await reader.next(isolation: actor)
        }
    }
}
