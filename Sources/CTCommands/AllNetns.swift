import CTCore
import Glibc

// --all-netns (ctl's own addition): -L, -C and -L --group-by over the
// current network namespace and every namespace under /run/netns, each
// through a Conntrack handle of its own (the process stays where it is).
//
// Names: a namespace under /run/netns is called by its file name; the
// current namespace is called "-", unless a file under /run/netns is it
// (same inode), whose name it then takes. Several names of one namespace
// count once, under the first name in byte order. A namespace that cannot
// be opened or entered (it vanished, or the file is no namespace) is
// reported on stderr and skipped; the command then ends with exit code 1.
//
// CTL_NETNS_DIR=DIR reads DIR instead of /run/netns (for tests, which must
// not see other programs' namespaces).

/// The directory --all-netns reads.
var netnsDirectory: String {
    if let dir = getenv("CTL_NETNS_DIR") { return String(cString: dir) }
    return "/run/netns"
}

/// The name the current namespace has in --all-netns output when no file
/// under /run/netns is it.
let currentNamespaceName = "-"

/// One namespace to work on: its name and its handle; nil after a failure
/// to open it (already reported).
struct NamespaceTarget {
    var name: String
    var conntrack: Conntrack?
    var isCurrent: Bool
}

/// The namespaces a command works on: the current one alone, or with
/// --all-netns every one (the current first, then the others by name).
/// Namespaces that cannot be opened are reported and come with a nil
/// handle.
func namespaceTargets(_ inv: Invocation, _ session: Session) throws(Failure) -> [NamespaceTarget] {
    guard inv.own.allNetns else {
        return [NamespaceTarget(name: currentNamespaceName, conntrack: try session.conntrack(), isCurrent: true)]
    }
    let dir = netnsDirectory
    var currentName = currentNamespaceName
    let current = fileIdentity("/proc/thread-self/ns/net")
    var seen: Set<FileIdentity> = current.map { [$0] } ?? []
    var others: [(name: String, path: String)] = []
    var failed: [(String, String)] = []
    for name in directoryNames(dir) {
        let path = dir + "/" + name
        if let id = fileIdentity(path) {
            if id == current, currentName == currentNamespaceName {
                currentName = name
                continue
            }
            if seen.contains(id) { continue }
            seen.insert(id)
        }
        others.append((name, path))
    }
    var targets = [NamespaceTarget(name: currentName, conntrack: try session.conntrack(), isCurrent: true)]
    for (name, path) in others {
        do {
            let ct = try Conntrack(namespace: .path(path), capabilities: session.capabilities)
            targets.append(NamespaceTarget(name: name, conntrack: ct, isCurrent: false))
        } catch {
            let why = error.errno.map { "\($0)" } ?? "\(error)"
            failed.append((name, why))
            targets.append(NamespaceTarget(name: name, conntrack: nil, isCurrent: false))
        }
    }
    for (name, why) in failed {
        try session.console.error("network namespace `\(name)' skipped: cannot open or enter \(path(dir, name)): \(why)")
    }
    return targets
}

private func path(_ dir: String, _ name: String) -> String { dir + "/" + name }

/// A file's device and inode.
struct FileIdentity: Hashable {
    var device: UInt64
    var inode: UInt64
}

func fileIdentity(_ path: String) -> FileIdentity? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
}

/// The names in `dir` (not "." and ".."), in byte order; none when it
/// cannot be read (no namespace was ever named).
func directoryNames(_ dir: String) -> [String] {
    guard let handle = opendir(dir) else { return [] }
    defer { closedir(handle) }
    var names: [String] = []
    while let entry = readdir(handle) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
        }
        if name != ".", name != ".." { names.append(name) }
    }
    return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
}

/// -L --all-netns: each namespace's selected entries, each line after its
/// namespace's name (JSON: a "netns" key first); one summary for all.
func listAllNamespaces(_ inv: Invocation, _ session: Session) throws(Failure) -> ExitCode {
    let console = session.console
    let selector = try inv.selector(for: .list, session)
    let printer = try FlowPrinter(inv, session)
    var ok = true
    for target in try namespaceTargets(inv, session) {
        guard let ct = target.conntrack else { ok = false; continue }
        printer.netns = target.name
        do {
            let summary = try ct.forEachFlow(matching: selector, zeroingCounters: inv.options.contains(.zero),
                                             where: inv.quirkCheck, printer.offer)
            try printer.rethrow()
            try console.flushOut()
            for problem in summary.skipped {
                try console.message("skipped a malformed message: \(problem)")
                ok = false
            }
        } catch let error as OutputError {
            throw .output(error)
        } catch let error as Failure {
            throw error
        } catch {
            try console.error("network namespace `\(target.name)' skipped: \(operationFailed(error, .list))")
            ok = false
        }
    }
    printer.finish()
    try console.flushOut()
    try console.summary("\(printer.count) flow entries have been shown.")
    return ok ? .ok : .failure
}

/// -C --all-netns: "NAME COUNT" for each namespace, the table's entries
/// or with selectors the entries they match (-o json: {"netns":NAME,
/// "entries":N} or "selected"; -o metrics: ctl_conntrack_entries or
/// ctl_conntrack_selected_entries with a netns label).
func countAllNamespaces(_ inv: Invocation, _ session: Session) throws(Failure) -> ExitCode {
    let console = session.console
    let selects = inv.countSelects
    var metrics = MetricsWriter()
    var ok = true
    for target in try namespaceTargets(inv, session) {
        guard let ct = target.conntrack else { ok = false; continue }
        let n: Int
        do throws(Failure) {
            n = selects ? try selectedCount(inv, session, on: ct) : try tableEntries(ct, session)
        } catch {
            try console.error("network namespace `\(target.name)' skipped: \(error.message)")
            ok = false
            continue
        }
        switch inv.answerFormat {
        case .json?:
            console.out.append("{\"netns\":"); JSONFormatter.appendString(target.name, to: console.out)
            console.out.append(selects ? ",\"selected\":" : ",\"entries\":")
            console.out.append(decimal: n); console.out.append("}\n")
        case .metrics?:
            if selects {
                metrics.selectedEntries(n, selector: selectorWords(), labels: [("netns", target.name)])
            } else {
                metrics.entries(n, labels: [("netns", target.name)])
            }
        default:
            console.out.append(target.name); console.out.append(UInt8(ascii: " "))
            console.out.append(decimal: n); console.out.append(UInt8(ascii: "\n"))
        }
    }
    if inv.answerFormat == .metrics { console.out.append(metrics.text) }
    try console.flushOut()
    return ok ? .ok : .failure
}

/// The entries of the table `ct` is a handle on (ctnetlink's count); a
/// failure is conntrack's "Operation failed".
private func tableEntries(_ ct: Conntrack, _ session: Session) throws(Failure) -> Int {
    do {
        try session.refuseStatisticsIfLacking()
        return Int(try ct.tableSize().entries)
    } catch {
        throw .other(operationFailed(error, .count))
    }
}
