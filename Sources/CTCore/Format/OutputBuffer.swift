import Glibc

/// Why output could not be written.
public enum OutputError: Error, Equatable {
    /// The reader went away (EPIPE): the caller should end quietly.
    case brokenPipe
    /// Any other write failure, e.g. ENOSPC on a full disk.
    case failed(Errno)
}

/// A buffered writer for one file descriptor. Text is appended as bytes
/// and written out in large chunks; `flush()` writes what is pending.
public final class OutputBuffer {
    public let fd: Int32
    @usableFromInline var bytes: [UInt8]
    @usableFromInline let threshold: Int

    public init(fd: Int32, capacity: Int = 256 * 1024) {
        self.fd = fd
        self.threshold = capacity
        bytes = []
        bytes.reserveCapacity(capacity + 4096)
    }

    /// Bytes written but not yet flushed.
    public var pending: [UInt8] { bytes }

    @inlinable public func append(_ byte: UInt8) { bytes.append(byte) }

    @inlinable public func append(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    @inlinable public func append(_ s: String) {
        var s = s
        s.withUTF8 { bytes.append(contentsOf: $0) }
    }

    @inlinable public func append(bytes other: [UInt8]) { bytes.append(contentsOf: other) }

    /// Appends `value` in decimal.
    @inlinable public func append(decimal value: UInt64) {
        if value < 10 {
            bytes.append(UInt8(truncatingIfNeeded: value) &+ 48)
            return
        }
        var digits = 1
        var v = value
        while v >= 10 { v /= 10; digits += 1 }
        let end = bytes.count + digits
        bytes.append(contentsOf: repeatElement(48, count: digits))
        var i = end - 1
        v = value
        while v > 0 {
            bytes[i] = UInt8(truncatingIfNeeded: v % 10) &+ 48
            v /= 10
            i -= 1
        }
    }

    @inlinable public func append<T: BinaryInteger>(decimal value: T) {
        if value < 0 {
            bytes.append(45) // "-"
            append(decimal: UInt64(value.magnitude))
        } else {
            append(decimal: UInt64(value))
        }
    }

    /// Appends `value` in lower-case hexadecimal without leading zeros.
    @inlinable public func append(hex value: UInt64) {
        var digits = 1
        var v = value >> 4
        while v > 0 { v >>= 4; digits += 1 }
        var shift = (digits - 1) * 4
        while shift >= 0 {
            let nibble = UInt8(truncatingIfNeeded: (value >> UInt64(shift)) & 0xf)
            bytes.append(nibble < 10 ? nibble &+ 48 : nibble &+ 87)
            shift -= 4
        }
    }

    /// Appends `s` left-justified in a field of `width` bytes (printf "%-Ns").
    @inlinable public func append(_ s: StaticString, paddedTo width: Int) {
        append(s)
        let n = s.utf8CodeUnitCount
        if n < width { bytes.append(contentsOf: repeatElement(32, count: width - n)) }
    }

    /// Discards pending bytes without writing them.
    public func removeAllPending() { bytes.removeAll(keepingCapacity: true) }

    /// Removes the last byte (used to drop a trailing separator).
    @inlinable public func dropLast() { if !bytes.isEmpty { bytes.removeLast() } }

    /// The last byte written and not yet flushed, if any.
    @inlinable public var last: UInt8? { bytes.last }

    /// Writes pending bytes once the buffer has filled past its threshold.
    @inlinable public func flushIfFull() throws(OutputError) {
        if bytes.count >= threshold { try flush() }
    }

    /// Writes all pending bytes, retrying on EINTR and short writes.
    public func flush() throws(OutputError) {
        guard !bytes.isEmpty else { return }
        var failure: OutputError? = nil
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno == EPIPE ? .brokenPipe : .failed(Errno.current)
                    return
                }
                offset += n
            }
        }
        bytes.removeAll(keepingCapacity: true)
        if let failure { throw failure }
    }
}
