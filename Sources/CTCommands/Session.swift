import CTCore
import Glibc

/// Everything one run of ctl keeps while it runs, made by ctlMain (or by
/// the argument fuzzer, one per input) and handed down explicitly: the
/// console, the parser's tables, the label names, the kernel's features
/// and the conntrack handle (-R's lines all share these).
final class Session {
    let console: Console
    let parser = ArgumentParser()
    /// nil until the label file was read; then its names, or nil after
    /// conntrack's warning when it could not be read.
    private var labels: LabelMap?? = nil
    private var handle: Conntrack?
    private var engineSession: CTSession?
    private var kernel: KernelCapabilities?

    /// `discardMessages`: see Console.
    init(discardMessages: Bool = false) {
        console = Console(discardMessages: discardMessages)
    }

    /// --labelmap FILE (conntrack 1.4.9's option): the connlabel.conf to
    /// read instead of LabelMap.defaultPath; set before the arguments are
    /// parsed.
    var labelMapPath: String?

    /// connlabel.conf as conntrack finds it (or --labelmap's file), read
    /// once per run; nil after conntrack's warning when it cannot be read
    /// (then there are no names), for --labelmap's file as for the default.
    func labelMap() throws(Failure) -> LabelMap? {
        if let labels { return labels }
        var map: LabelMap? = nil
        do {
            map = try LabelMap.load(path: labelMapPath ?? LabelMap.defaultPath)
        } catch {
            // conntrack's warning, once per run as conntrack gives it.
            try console.raw("nfct_labelmap_new: \(error)")
        }
        labels = .some(map)
        return map
    }

    /// The conntrack handle of this run (CTCore's public API), opened when
    /// first needed; a failure to open it is conntrack's message. ctl's
    /// process is in its namespace already (--netns), so the handle's is
    /// the current one.
    func conntrack() throws(Failure) -> Conntrack {
        if let handle { return handle }
        do {
            let ct = try Conntrack(capabilities: capabilities)
            handle = ct
            return ct
        } catch {
            throw .other("Can't open handler: \(error.errno.map { "\($0)" } ?? "\(error)")")
        }
    }

    /// The engine under the handle, for what only ctl does: -U's read-back
    /// of each updated entry, -L dying/unconfirmed and the expectation
    /// commands with conntrack's own error texts, -R's create stream.
    func engine() throws(Failure) -> CTSession {
        if let engineSession { return engineSession }
        do {
            let ct = try CTSession(sockets: conntrack().sockets)
            engineSession = ct
            return ct
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .other("Can't open handler: \(error)")
        }
    }

    /// The kernel's capabilities as ctl uses them (see
    /// KernelCapabilities.fromEnvironment), worked out once per run.
    var capabilities: KernelCapabilities {
        if let kernel { return kernel }
        let f = KernelCapabilities.fromEnvironment()
        kernel = f
        return f
    }

    /// The answer of a kernel without ctnetlink's statistics messages, where
    /// the capabilities say it has none.
    func refuseStatisticsIfLacking() throws(Errno) {
        if !capabilities.supports(.statistics) { throw Errno(EOPNOTSUPP) }
    }
}
