/// A bounds-checked, read-only view of bytes received from the kernel.
///
/// The view is only valid inside the callback that handed it out (the
/// netlink layer owns the memory and reuses it for the next receive), so it
/// must not be stored. Every read checks its bounds and returns nil on short
/// input; no pointer is ever exposed.
package struct ByteView {
    @usableFromInline let base: UnsafeRawBufferPointer

    @inlinable init(_ base: UnsafeRawBufferPointer) { self.base = base }

    /// Number of bytes in the view.
    @inlinable package var count: Int { base.count }

    /// A sub-view of `count` bytes starting at `offset`, or nil if it does not fit.
    @inlinable package func slice(_ offset: Int, _ count: Int) -> ByteView? {
        guard offset >= 0, count >= 0, offset <= base.count, count <= base.count - offset else { return nil }
        return ByteView(UnsafeRawBufferPointer(rebasing: base[offset..<(offset + count)]))
    }

    @inlinable package func u8(at offset: Int) -> UInt8? {
        guard offset >= 0, offset < base.count else { return nil }
        return base[offset]
    }

    @inlinable func load<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T? {
        guard offset >= 0, offset <= base.count - MemoryLayout<T>.size else { return nil }
        return base.loadUnaligned(fromByteOffset: offset, as: T.self)
    }

    /// Network byte order (big-endian) reads, as ctnetlink attribute values are.
    @inlinable package func u16be(at offset: Int) -> UInt16? { load(UInt16.self, at: offset).map { UInt16(bigEndian: $0) } }
    @inlinable package func u32be(at offset: Int) -> UInt32? { load(UInt32.self, at: offset).map { UInt32(bigEndian: $0) } }
    @inlinable package func u64be(at offset: Int) -> UInt64? { load(UInt64.self, at: offset).map { UInt64(bigEndian: $0) } }
    /// Host byte order reads, as netlink headers are.
    @inlinable package func u16host(at offset: Int) -> UInt16? { load(UInt16.self, at: offset) }
    @inlinable package func u32host(at offset: Int) -> UInt32? { load(UInt32.self, at: offset) }
    @inlinable package func i32host(at offset: Int) -> Int32? { load(Int32.self, at: offset) }

    /// The bytes as an array (for values that outlive the callback).
    package var bytes: [UInt8] { Array(base) }

    /// A NUL-terminated string: the bytes up to the first NUL (or the end),
    /// decoded as UTF-8 with invalid sequences repaired.
    package var cString: String {
        let end = base.firstIndex(of: 0) ?? base.count
        return String(decoding: UnsafeRawBufferPointer(rebasing: base[0..<end]), as: UTF8.self)
    }

    /// Runs `body` with a view of `bytes` (for tests and fixtures).
    package static func with<R>(_ bytes: [UInt8], _ body: (ByteView) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes { try body(ByteView($0)) }
    }
}

/// One netlink attribute (`struct nlattr`): its type with the flag bits
/// removed, whether it is nested, and its payload.
package struct Attribute {
    package let type: UInt16
    package let isNested: Bool
    package let value: ByteView

    @usableFromInline init(type: UInt16, isNested: Bool, value: ByteView) {
        self.type = type
        self.isNested = isNested
        self.value = value
    }
}

/// Why an attribute stream or message could not be read.
package struct MalformedMessage: Error, Equatable, CustomStringConvertible {
    package let reason: String
    package init(_ reason: String) { self.reason = reason }
    package var description: String { "malformed message: \(reason)" }
}

extension ByteView {
    /// Calls `body` for each attribute in the view (a message payload after
    /// its fixed header, or a nested attribute's payload).
    /// Throws `MalformedMessage` if an attribute header is short or its
    /// length runs past the end of the view.
    @inlinable
    package func forEachAttribute(_ body: (Attribute) throws -> Void) throws {
        var offset = 0
        let total = base.count
        while offset < total {
            guard total - offset >= 4, let len16 = u16host(at: offset), let rawType = u16host(at: offset + 2) else {
                throw MalformedMessage("truncated attribute header")
            }
            let len = Int(len16)
            guard len >= 4, len <= total - offset else {
                throw MalformedMessage("attribute length \(len) out of bounds")
            }
            let value = ByteView(UnsafeRawBufferPointer(rebasing: base[(offset + 4)..<(offset + len)]))
            // NLA_F_NESTED = 0x8000, NLA_F_NET_BYTEORDER = 0x4000, NLA_TYPE_MASK = 0x3fff
            try body(Attribute(type: rawType & 0x3fff, isNested: rawType & 0x8000 != 0, value: value))
            offset += (len + 3) & ~3
        }
    }
}
