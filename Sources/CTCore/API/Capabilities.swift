import Glibc

/// A kernel feature that ctnetlink gained after its start, and that the
/// library uses where the running kernel has it.
public enum KernelFeature: String, Sendable, Hashable, CaseIterable {
    /// Dumps restricted to one family (nfgenmsg.nfgen_family).
    case familyDumpFilter = "family dump filter"
    /// Dumps restricted by mark and mask (CTA_MARK, CTA_MARK_MASK).
    case markDumpFilter = "mark dump filter"
    /// Dumps restricted by status bits (CTA_STATUS, CTA_STATUS_MASK).
    case statusDumpFilter = "status dump filter"
    /// Dumps restricted by exact tuple fields (CTA_FILTER).
    case tupleDumpFilter = "tuple dump filter"
    /// Dumps restricted to one zone (CTA_ZONE on a dump).
    case zoneDumpFilter = "zone dump filter"
    /// A flush of one family only (nfgenmsg version 1).
    case familyFlush = "family flush"
    /// A classic BPF filter on the event socket.
    case eventSocketFilter = "event socket filter"
    /// ctnetlink's statistics messages (IPCTNL_MSG_CT_GET_STATS*).
    case statistics = "statistics messages"

    /// The first kernel release the library relies on for the feature.
    public var introduced: KernelVersion {
        switch self {
        case .familyDumpFilter, .eventSocketFilter, .statistics: KernelVersion(3, 0)
        case .markDumpFilter: KernelVersion(4, 0)
        case .familyFlush: KernelVersion(5, 0)
        case .statusDumpFilter: KernelVersion(5, 15)
        // CTA_FILTER came in 5.8; it is used from 6.1, after the fixes to
        // its reply-direction and zone handling.
        case .tupleDumpFilter: KernelVersion(6, 1)
        case .zoneDumpFilter: KernelVersion(6, 8)
        }
    }

    /// The feature's bit in ``KernelCapabilities``.
    var bit: UInt32 {
        switch self {
        case .familyDumpFilter: 1 << 0
        case .markDumpFilter: 1 << 1
        case .statusDumpFilter: 1 << 2
        case .tupleDumpFilter: 1 << 3
        case .zoneDumpFilter: 1 << 4
        case .familyFlush: 1 << 5
        case .eventSocketFilter: 1 << 6
        case .statistics: 1 << 7
        }
    }
}

/// What the kernel a handle talks to can do: worked out once, from the
/// kernel's version, and overridable (tests force the paths that older
/// kernels take).
///
/// Older kernels ignore request attributes they do not know, so a filter
/// the kernel lacks would not fail: it would return, or flush, everything.
/// The library therefore hands the kernel only what it is known to apply
/// exactly, and checks every entry in userspace as well.
public struct KernelCapabilities: Sendable, Equatable {
    /// The kernel release the features were worked out for.
    public var version: KernelVersion
    /// The features the library may use.
    public var features: Set<KernelFeature> {
        get { Set(KernelFeature.allCases.filter(supports)) }
        set { bits = newValue.reduce(0) { $0 | $1.bit } }
    }
    /// The features, a bit each (``KernelFeature/bit``): no Set is built
    /// when a command starts (its generic metadata cost a scan of every
    /// protocol conformance in the binary, at every start of ctl).
    private var bits: UInt32

    /// Capabilities of a kernel of release `version` with exactly `features`.
    public init(version: KernelVersion, features: Set<KernelFeature>) {
        self.version = version
        bits = features.reduce(0) { $0 | $1.bit }
    }

    private init(version: KernelVersion, bits: UInt32) {
        self.version = version
        self.bits = bits
    }

    /// The features of a kernel of release `version`: each feature whose
    /// ``KernelFeature/introduced`` release is not later.
    public static func forKernel(_ version: KernelVersion) -> KernelCapabilities {
        var bits: UInt32 = 0
        for feature in KernelFeature.allCases where version >= feature.introduced { bits |= feature.bit }
        return KernelCapabilities(version: version, bits: bits)
    }

    /// The running kernel's capabilities, from its release (uname), and
    /// where a distribution may have backported a feature below that
    /// release and one request can tell without changing anything, from
    /// asking the kernel: the status dump filter, on kernels before 5.15.
    /// For other backports, pass capabilities to
    /// ``Conntrack/init(namespace:capabilities:)`` explicitly.
    public static func detect() -> KernelCapabilities {
        var capabilities = forKernel(.running)
        if !capabilities.status, capabilities.mark, KernelProbe.statusDumpFilter() == true {
            capabilities.status = true
        }
        return capabilities
    }

    /// Whether the library may use `feature`.
    public func supports(_ feature: KernelFeature) -> Bool { bits & feature.bit != 0 }

    /// The same capabilities without `features`.
    public func removing(_ features: some Sequence<KernelFeature>) -> KernelCapabilities {
        var copy = self
        for feature in features { copy.bits &= ~feature.bit }
        return copy
    }

    /// No filter in the kernel at all: everything is selected in userspace.
    package static let none = KernelCapabilities.forKernel(.running)
        .removing([.familyDumpFilter, .markDumpFilter, .statusDumpFilter, .tupleDumpFilter, .zoneDumpFilter,
                   .eventSocketFilter])

    private mutating func set(_ feature: KernelFeature, _ on: Bool) {
        if on { bits |= feature.bit } else { bits &= ~feature.bit }
    }

    // The engine's view, by the names its request builders use.
    package var family: Bool {
        get { supports(.familyDumpFilter) }
        set { set(.familyDumpFilter, newValue) }
    }
    package var mark: Bool {
        get { supports(.markDumpFilter) }
        set { set(.markDumpFilter, newValue) }
    }
    package var status: Bool {
        get { supports(.statusDumpFilter) }
        set { set(.statusDumpFilter, newValue) }
    }
    package var tupleFilter: Bool {
        get { supports(.tupleDumpFilter) }
        set { set(.tupleDumpFilter, newValue) }
    }
    package var zoneFilter: Bool {
        get { supports(.zoneDumpFilter) }
        set { set(.zoneDumpFilter, newValue) }
    }
    package var socketFilter: Bool {
        get { supports(.eventSocketFilter) }
        set { set(.eventSocketFilter, newValue) }
    }
}

/// The engine's name for what the kernel may filter.
package typealias KernelFilterSupport = KernelCapabilities

extension KernelCapabilities {
    /// Only the dump filters named (the family filter always), for tests of
    /// request building.
    package init(mark: Bool, status: Bool, tupleFilter: Bool) {
        self = .forKernel(KernelVersion(3, 0))
        self.mark = mark
        self.status = status
        self.tupleFilter = tupleFilter
    }
}

/// A kernel release, as uname(2) reports it (major and minor only).
public struct KernelVersion: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// The major release number (6 of 6.8).
    public var major: Int
    /// The minor release number (8 of 6.8).
    public var minor: Int
    /// Release `major`.`minor`.
    public init(_ major: Int, _ minor: Int) { self.major = major; self.minor = minor }

    /// Parses "6.18.44-fc" style release strings; unknown text gives 0.0.
    public init(release: String) {
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).map { Int($0) ?? 0 }
        major = parts.count > 0 ? parts[0] : 0
        minor = parts.count > 1 ? parts[1] : 0
    }

    /// The running kernel's release.
    public static var running: KernelVersion {
        var name = utsname()
        guard uname(&name) == 0 else { return KernelVersion(0, 0) }
        let release = withUnsafeBytes(of: &name.release) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return KernelVersion(release: release)
    }

    /// Whether release `a` is older than `b`.
    public static func < (a: KernelVersion, b: KernelVersion) -> Bool {
        (a.major, a.minor) < (b.major, b.minor)
    }

    /// "major.minor", such as "6.8".
    public var description: String { "\(major).\(minor)" }
}
