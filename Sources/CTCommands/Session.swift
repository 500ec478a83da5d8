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
    private var handle: CTSession?
    private var kernel: KernelFeatures?

    /// `discardMessages`: see Console.
    init(discardMessages: Bool = false) {
        console = Console(discardMessages: discardMessages)
    }

    /// connlabel.conf as conntrack finds it, read once per run; nil after
    /// conntrack's warning when it cannot be read (then there are no names).
    func labelMap() throws(Failure) -> LabelMap? {
        if let labels { return labels }
        var map: LabelMap? = nil
        do {
            map = try LabelMap.load()
        } catch {
            // conntrack's warning, once per run as conntrack gives it.
            try console.raw("nfct_labelmap_new: \(error)")
        }
        labels = .some(map)
        return map
    }

    /// The conntrack handle of this run, opened when first needed; a
    /// failure to open it is conntrack's message.
    func conntrack() throws(Failure) -> CTSession {
        if let handle { return handle }
        do {
            let ct = try CTSession()
            handle = ct
            return ct
        } catch {
            throw .other("Can't open handler: \(error)")
        }
    }

    /// The kernel features ctl uses (see KernelFeatures), worked out once
    /// per run.
    var features: KernelFeatures {
        if let kernel { return kernel }
        let f = KernelFeatures.fromEnvironment()
        kernel = f
        return f
    }

    /// What the kernel may filter.
    var kernelSupport: KernelFilterSupport { features.filters }

    /// The answer of a kernel without ctnetlink's statistics messages, where
    /// KernelFeatures says it has none.
    func refuseStatisticsIfLacking() throws(Errno) {
        if !features.statistics { throw Errno(EOPNOTSUPP) }
    }
}
