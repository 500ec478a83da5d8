import Glibc

/// Questions put to the running kernel's ctnetlink, for features a
/// distribution may have backported below the version that brought them
/// (RHEL 9's 5.14 carries much of later netfilter). Each probe is one
/// request that changes nothing and returns (almost) nothing; `nil` means
/// the answer said neither yes nor no.
///
/// Which gate uses what (KernelCapabilities.detect):
/// - status dump filter (CTA_STATUS + CTA_STATUS_MASK, Linux 5.15): the
///   version, and below 5.15 `statusDumpFilter()` (so a kernel that is new
///   enough costs no request at start). Checked on Debian's 6.1 and 6.12
///   (make test-kernels) and 6.18: yes on all three.
/// - mark dump filter (4.0): the version. Every kernel a current
///   distribution ships is past it, and the probe below relies on it.
/// - tuple filter (CTA_FILTER, 5.8, used from 6.1): the version. What ctl
///   needs is not the attribute but the fixes to its reply-direction and
///   zone handling that came with 6.1, which no request can see in an
///   empty answer.
/// - family flush (5.0): the version. Telling whether a flush kept the
///   other family needs a flush, and a probe must never change a table.
/// - zone dump filter (CTA_ZONE on a dump, 6.8): the version. An older
///   kernel ignores the attribute and dumps every zone, which an empty
///   answer cannot tell from a kernel that filtered.
/// - filtered flush (6.12): not used (a flush never carries a filter).
package enum KernelProbe {
    /// Whether the kernel applies CTA_STATUS/CTA_STATUS_MASK in a dump.
    /// The request carries a mark filter no entry can pass (mark 1 under
    /// mask 0, applied by every kernel since 4.0), so it returns no entry
    /// whatever the kernel does with the rest, and a status filter with a
    /// zero mask, which a kernel that reads CTA_STATUS refuses (EINVAL)
    /// before it dumps anything; one that does not know it ignores it.
    package static func statusDumpFilter() -> Bool? {
        guard let socket = try? NetlinkSocket() else { return nil }
        let request = NetlinkRequest(subsystem: CTMessage.subsystem, message: CTMessage.get,
                                     flags: NetlinkFlags.dump, family: 0,
                                     attributes: [.u32(CTA.mark, 1), .u32(CTA.markMask, 0),
                                                  .u32(CTA.status, 0), .u32(CTA.statusMask, 0)])
        var entries = 0
        do {
            _ = try socket.perform(request) { _ in entries += 1 }
        } catch let error as Errno {
            return error == Errno(EINVAL) ? true : nil
        } catch {
            return nil
        }
        // An entry got through: the mark filter was not applied either.
        return entries == 0 ? false : nil
    }
}
