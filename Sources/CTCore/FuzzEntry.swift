import CMnl

/// For fuzzing only (the `ctl-fuzz-decoder` libFuzzer target and the
/// regression corpus test): runs arbitrary bytes through everything that
/// reads kernel bytes, then through every formatter. Not used by `ctl`.
package enum FuzzEntry {
    /// Fixed clocks, so that a crash reproduces: a plausible wall clock and
    /// the extremes, for delta-time and timestamp arithmetic.
    static let clocks = [1_700_000_000, 0, Int.max]

    /// Label names for `-o labels`, with characters XML and JSON escape.
    static let labels = LabelMap(names: [0: "zero", 1: "a&<b>\"'\\", 31: "x", 127: "last"])

    /// Decodes `bytes` twice: as one message payload (nfgenmsg +
    /// attributes) with each decoder, and as a chunk of netlink messages
    /// whose payloads each go through every decoder. Everything decoded is
    /// formatted every way into a buffer that is discarded. Returns the
    /// number of bytes formatted (so that no work is optimised away).
    @discardableResult
    package static func decodeAll(_ bytes: [UInt8]) -> Int {
        let out = OutputBuffer(fd: -1, capacity: 4096)
        var total = 0
        ByteView.with(bytes) { view in
            decodePayload(view, out: out, total: &total)
            _ = try? view.forEachNetlinkMessage { message in
                _ = message.subsystem
                _ = message.subsystemMessage
                decodePayload(message.payload, out: out, total: &total)
                // An error reply's code, as NetlinkSocket.perform reads it.
                if Int32(message.type) == NLMSG_ERROR || Int32(message.type) == NLMSG_DONE,
                   let code = message.payload.i32host(at: 0) {
                    out.append(Errno(0 &- code).description)
                    drain(out, &total)
                }
                return false
            }
            // The event sockets' walk (data messages only).
            try? EventSocket.forEachMessage(in: view) { message in
                total &+= message.payload.count
            }
        }
        return total
    }

    static func decodePayload(_ payload: ByteView, out: OutputBuffer, total: inout Int) {
        if let flow = try? Decoder.flow(payload) {
            formatFlow(flow, out: out, total: &total)
        }
        if let e = try? Decoder.expectation(payload) {
            formatExpectation(e, out: out, total: &total)
        }
        if let stats = try? Decoder.cpuStats(payload) {
            TextFormatter.write(CPUStatistics(stats), to: out)
            TextFormatter.write(ExpectationStatistics(stats), to: out)
            drain(out, &total)
        }
        if let entries = try? Decoder.globalEntries(payload) {
            out.append(decimal: entries)
            drain(out, &total)
        }
    }

    /// The options that change what TextFormatter prints; all combinations.
    static let textBits: [OutputOptions] = [.extended, .timestamp, .id, .ktimestamp, .labels, .userspace]

    static func combinations() -> [OutputOptions] {
        (0..<(1 << textBits.count)).map { mask in
            var o = OutputOptions()
            for (i, bit) in textBits.enumerated() where mask & (1 << i) != 0 { o.insert(bit) }
            return o
        }
    }
    static let allCombinations = combinations()

    static func formatFlow(_ flow: Flow, out: OutputBuffer, total: inout Int) {
        for options in allCombinations {
            let map = options.contains(.labels) ? labels : nil
            TextFormatter(options: options, labelMap: map).write(flow, to: out, now: clocks[0])
            drain(out, &total)
        }
        let events: [EventType?] = [nil, .new, .update, .destroy]
        for now in clocks {
            TextFormatter(options: [.extended, .timestamp, .ktimestamp], labelMap: labels).write(flow, to: out, now: now)
            for (i, event) in events.enumerated() {
                let options: OutputOptions = i % 2 == 0 ? [.xml] : [.xml, .extended, .timestamp, .id, .ktimestamp, .labels, .userspace]
                XMLFormatter(options: options, labelMap: i % 2 == 0 ? nil : labels).write(flow, event: event, to: out, now: now)
                let header = JSONFormatter.Header(event: event, time: i == 0 ? nil : (now, 999_999),
                                                  portID: UInt32(i), programName: i == 3 ? "a\"\\\n\u{1}" : nil)
                JSONFormatter(options: options.union(.json), labelMap: i % 2 == 0 ? nil : labels)
                    .write(flow, header: i == 0 ? nil : header, to: out, now: now)
            }
            drain(out, &total)
        }
        SaveFormatter().write(flow, to: out)
        SaveFormatter(command: "-D").write(flow, to: out)
        drain(out, &total)
    }

    static func formatExpectation(_ e: Expectation, out: OutputBuffer, total: inout Int) {
        let events: [EventType?] = [nil, .new, .update, .destroy]
        for options: OutputOptions in [[], [.timestamp], [.xml], [.xml, .timestamp], [.json]] {
            for event in events {
                ExpectFormatter(options: options).write(e, event: event, to: out)
                for now in clocks {
                    ExpectFormatter(options: options).writeXML(e, event: event, to: out, now: now)
                }
                JSONFormatter(options: options.union(.json))
                    .write(e, header: event.map { JSONFormatter.Header(event: $0, time: (clocks[0], 1), portID: 7) }, to: out)
                drain(out, &total)
            }
        }
    }

    /// Counts and discards what is pending.
    static func drain(_ out: OutputBuffer, _ total: inout Int) {
        total &+= out.pendingCount
        out.removeAllPending()
    }
}
