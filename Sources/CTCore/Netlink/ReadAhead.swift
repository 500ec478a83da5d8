import CMnl
import Glibc

/// Receives the messages of one dump on a second thread, into a ring of
/// buffers, while the caller's thread decodes the ones already received.
/// The kernel builds dump messages inside recvmsg, so this puts the kernel's
/// work and ctl's on different cores. The reader stops after the chunk that
/// ends the dump (NLMSG_DONE or an error for the request).
final class ReadAhead: @unchecked Sendable {
    struct Chunk {
        let index: Int
        /// Bytes received, or -errno.
        let length: Int
    }

    private let handle: OpaquePointer
    private let sequence: UInt32
    private let buffers: [UnsafeMutableRawBufferPointer]
    private let scratch: UnsafeMutableRawBufferPointer
    private var free: [Int]
    private var full: [Chunk] = []
    private var cancelled = false
    private var finished = false
    private var mutex = pthread_mutex_t()
    private var changed = pthread_cond_t()
    private var thread = pthread_t()
    private var started = false

    init(handle: OpaquePointer, sequence: UInt32, buffers: Int, size: Int) {
        self.handle = handle
        self.sequence = sequence
        self.buffers = (0..<buffers).map { _ in .allocate(byteCount: size, alignment: 8) }
        scratch = .allocate(byteCount: size, alignment: 8)
        free = Array(0..<buffers)
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&changed, nil)
    }

    deinit {
        for b in buffers { b.deallocate() }
        scratch.deallocate()
        pthread_cond_destroy(&changed)
        pthread_mutex_destroy(&mutex)
    }

    func start() throws {
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { context in
            let reader = Unmanaged<ReadAhead>.fromOpaque(context!).takeRetainedValue()
            reader.run()
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<ReadAhead>.fromOpaque(context).release()
            throw Errno(rc)
        }
        started = true
    }

    /// The next received chunk, in order; nil once the reader has ended.
    func next() -> Chunk? {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while full.isEmpty && !finished { pthread_cond_wait(&changed, &mutex) }
        return full.isEmpty ? nil : full.removeFirst()
    }

    /// The bytes of a chunk, valid until `release`.
    func view(_ chunk: Chunk) -> ByteView {
        ByteView(UnsafeRawBufferPointer(rebasing: buffers[chunk.index][0..<max(chunk.length, 0)]))
    }

    /// Hands a chunk's buffer back to the reader.
    func release(_ chunk: Chunk) {
        pthread_mutex_lock(&mutex)
        free.append(chunk.index)
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&mutex)
    }

    /// Stops handing out chunks and waits for the reader, which reads (and
    /// drops) the rest of the dump so that the socket stays usable.
    func finish() {
        pthread_mutex_lock(&mutex)
        cancelled = true
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&mutex)
        if started { pthread_join(thread, nil) }
        started = false
    }

    private func run() {
        while true {
            pthread_mutex_lock(&mutex)
            while free.isEmpty && !cancelled { pthread_cond_wait(&changed, &mutex) }
            let dropping = cancelled
            let index = dropping ? -1 : free.removeFirst()
            pthread_mutex_unlock(&mutex)

            let buffer = dropping ? scratch : buffers[index]
            let received = retryOnInterrupt { mnl_socket_recvfrom(handle, buffer.baseAddress, buffer.count) }
            let length = received >= 0 ? received : -Int(Glibc.errno)
            let last = length < 0 || endsDump(ByteView(UnsafeRawBufferPointer(rebasing: buffer[0..<length.clamped(to: 0...buffer.count)])))

            pthread_mutex_lock(&mutex)
            if dropping || cancelled {
                if !dropping { free.append(index) }
            } else {
                full.append(Chunk(index: index, length: length))
            }
            if last { finished = true }
            pthread_cond_broadcast(&changed)
            pthread_mutex_unlock(&mutex)
            if last { return }
        }
    }

    /// True when the chunk holds NLMSG_DONE, an error for this request, or
    /// bytes that are not netlink messages (the reader cannot go on).
    private func endsDump(_ view: ByteView) -> Bool {
        var offset = 0
        while offset < view.count {
            guard let len32 = view.u32host(at: offset), let type = view.u16host(at: offset + 4),
                  let seq = view.u32host(at: offset + 8) else { return true }
            let len = Int(len32)
            guard len >= 16, len <= view.count - offset else { return true }
            if Int32(type) == NLMSG_DONE || Int32(type) == NLMSG_OVERRUN { return true }
            if Int32(type) == NLMSG_ERROR, seq == sequence || seq == 0 { return true }
            offset += (len + 3) & ~3
        }
        return false
    }
}

extension Int {
    func clamped(to range: ClosedRange<Int>) -> Int { Swift.min(Swift.max(self, range.lowerBound), range.upperBound) }
}
