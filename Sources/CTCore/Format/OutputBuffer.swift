import Glibc

/// Why output could not be written.
package enum OutputError: Error, Equatable {
    /// The reader went away (EPIPE): the caller should end quietly.
    case brokenPipe
    /// Any other write failure, e.g. ENOSPC on a full disk.
    case failed(Errno)
}

/// A buffered writer for one file descriptor. Text is appended as bytes
/// and written out in large chunks; `flush()` writes what is pending.
///
/// The storage is a private, manually managed byte array: every append
/// checks and grows capacity first, and no pointer is handed out. Its
/// bookkeeping lives behind a `let` so that appends need no dynamic
/// exclusivity checks (a `var` property of a class costs one per access,
/// which was a third of `ctl -L`'s run time).
package final class OutputBuffer {
    package let fd: Int32
    @usableFromInline let threshold: Int

    @usableFromInline struct State {
        var storage: UnsafeMutablePointer<UInt8>
        var capacity: Int
        var count: Int
    }
    @usableFromInline let state: UnsafeMutablePointer<State>

    @usableFromInline var storage: UnsafeMutablePointer<UInt8> {
        @inline(__always) get { state.pointee.storage }
    }
    @usableFromInline var capacity: Int {
        @inline(__always) get { state.pointee.capacity }
    }
    @usableFromInline var count: Int {
        @inline(__always) get { state.pointee.count }
        @inline(__always) set { state.pointee.count = newValue }
    }

    package init(fd: Int32, capacity: Int = 256 * 1024) {
        self.fd = fd
        self.threshold = capacity
        state = .allocate(capacity: 1)
        state.initialize(to: State(storage: .allocate(capacity: capacity + 4096), capacity: capacity + 4096, count: 0))
    }

    deinit {
        state.pointee.storage.deallocate()
        state.deallocate()
    }

    /// Bytes written but not yet flushed.
    package var pending: [UInt8] { Array(UnsafeBufferPointer(start: storage, count: count)) }

    /// Makes room for `n` more bytes.
    @inlinable @inline(__always) func reserve(_ n: Int) {
        if count + n > capacity { grow(count + n) }
    }

    @usableFromInline func grow(_ needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        bigger.update(from: storage, count: count)
        storage.deallocate()
        state.pointee.storage = bigger
        state.pointee.capacity = newCapacity
    }

    @inlinable package func append(_ byte: UInt8) {
        reserve(1)
        storage[count] = byte
        count += 1
    }

    @inlinable package func append(_ s: StaticString) {
        let n = s.utf8CodeUnitCount
        reserve(n)
        (storage + count).update(from: s.utf8Start, count: n)
        count += n
    }

    @inlinable package func append(_ s: String) {
        var s = s
        s.withUTF8 { append(bytes: $0) }
    }

    @inlinable package func append(bytes other: UnsafeBufferPointer<UInt8>) {
        reserve(other.count)
        if let base = other.baseAddress { (storage + count).update(from: base, count: other.count) }
        count += other.count
    }

    /// Appends `value` in decimal.
    @inlinable package func append(decimal value: UInt64) {
        if value < 10 {
            append(UInt8(truncatingIfNeeded: value) &+ 48)
            return
        }
        var digits = 1
        var v = value
        while v >= 10 { v /= 10; digits += 1 }
        reserve(digits)
        var i = count + digits - 1
        v = value
        while v > 0 {
            storage[i] = UInt8(truncatingIfNeeded: v % 10) &+ 48
            v /= 10
            i -= 1
        }
        count += digits
    }

    @inlinable package func append<T: BinaryInteger>(decimal value: T) {
        if value < 0 {
            append(UInt8(ascii: "-"))
            append(decimal: UInt64(value.magnitude))
        } else {
            append(decimal: UInt64(value))
        }
    }

    /// Appends a non-negative `value` in decimal with leading zeros up to
    /// `digits` digits ("%0*d").
    package func append(decimal value: Int, digits: Int) {
        var scale = 1
        for _ in 1..<max(digits, 1) { scale *= 10 }
        while scale > 1, value < scale { append(UInt8(ascii: "0")); scale /= 10 }
        append(decimal: value)
    }

    /// Appends `value` in lower-case hexadecimal without leading zeros.
    @inlinable package func append(hex value: UInt64) {
        var digits = 1
        var v = value >> 4
        while v > 0 { v >>= 4; digits += 1 }
        reserve(digits)
        var shift = (digits - 1) * 4
        while shift >= 0 {
            let nibble = UInt8(truncatingIfNeeded: (value >> UInt64(shift)) & 0xf)
            storage[count] = nibble < 10 ? nibble &+ 48 : nibble &+ 87
            count += 1
            shift -= 4
        }
    }

    /// Appends `n` copies of `byte`.
    @inlinable package func append(repeating byte: UInt8, count n: Int) {
        guard n > 0 else { return }
        reserve(n)
        (storage + count).update(repeating: byte, count: n)
        count += n
    }

    /// Appends `s` left-justified in a field of `width` bytes (printf "%-Ns").
    @inlinable package func append(_ s: StaticString, paddedTo width: Int) {
        append(s)
        append(repeating: 32, count: width - s.utf8CodeUnitCount)
    }

    /// Discards pending bytes without writing them.
    package func removeAllPending() { count = 0 }

    /// Removes the last byte (used to drop a trailing separator).
    @inlinable package func dropLast() { if count > 0 { count -= 1 } }

    /// The last byte written and not yet flushed, if any.
    @inlinable package var last: UInt8? { count > 0 ? storage[count - 1] : nil }

    /// Number of bytes pending.
    @inlinable package var pendingCount: Int { count }

    /// Writes pending bytes once the buffer has filled past its threshold.
    @inlinable package func flushIfFull() throws(OutputError) {
        if count >= threshold { try flush() }
    }

    /// Writes all pending bytes, retrying on EINTR and short writes.
    package func flush() throws(OutputError) {
        var offset = 0
        defer {
            // Whatever happened, nothing is written twice.
            count = 0
        }
        while offset < count {
            let n = Glibc.write(fd, storage + offset, count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw errno == EPIPE ? .brokenPipe : .failed(Errno.current)
            }
            offset += n
        }
    }
}
