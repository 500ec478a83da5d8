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

    private let transport: NetlinkTransport
    private let sequence: UInt32
    private let buffers: [UnsafeMutableRawBufferPointer]
    private let scratch: UnsafeMutableRawBufferPointer
    private var free: [Int]
    private var full: [Chunk] = []
    private var cancelled = false
    private var finished = false
    private let monitor = Monitor()
    private var worker: WorkerThread?

    init(transport: NetlinkTransport, sequence: UInt32, buffers: Int, size: Int) {
        self.transport = transport
        self.sequence = sequence
        self.buffers = (0..<buffers).map { _ in .allocate(byteCount: size, alignment: 8) }
        scratch = .allocate(byteCount: size, alignment: 8)
        free = Array(0..<buffers)
    }

    deinit {
        for b in buffers { b.deallocate() }
        scratch.deallocate()
    }

    func start() throws {
        worker = try WorkerThread { [self] in run() }
    }

    /// The next received chunk, in order; nil once the reader has ended.
    func next() -> Chunk? {
        monitor.locked {
            monitor.wait { !full.isEmpty || finished }
            return full.isEmpty ? nil : full.removeFirst()
        }
    }

    /// The bytes of a chunk, valid until `release`.
    func view(_ chunk: Chunk) -> ByteView {
        ByteView(UnsafeRawBufferPointer(rebasing: buffers[chunk.index][0..<max(chunk.length, 0)]))
    }

    /// Hands a chunk's buffer back to the reader.
    func release(_ chunk: Chunk) {
        monitor.locked {
            free.append(chunk.index)
            monitor.broadcast()
        }
    }

    /// Stops handing out chunks and waits for the reader, which reads (and
    /// drops) the rest of the dump so that the socket stays usable.
    func finish() {
        monitor.locked {
            cancelled = true
            monitor.broadcast()
        }
        worker?.join()
        worker = nil
    }

    private func run() {
        while true {
            let index: Int = monitor.locked {
                monitor.wait { !free.isEmpty || cancelled }
                return cancelled ? -1 : free.removeFirst()
            }
            let buffer = index < 0 ? scratch : buffers[index]
            let length: Int
            do {
                length = try transport.receive(into: buffer)
            } catch {
                length = -Int(error.rawValue)
            }
            let last = length < 0 || endsDump(ByteView(UnsafeRawBufferPointer(rebasing: buffer[0..<max(length, 0)])))
            monitor.locked {
                if index >= 0 {
                    if cancelled { free.append(index) } else { full.append(Chunk(index: index, length: length)) }
                }
                if last { finished = true }
                monitor.broadcast()
            }
            if last { return }
        }
    }

    /// True when the chunk holds NLMSG_DONE, an error for this request, or
    /// bytes that are not netlink messages (the reader cannot go on).
    private func endsDump(_ view: ByteView) -> Bool {
        let ends = try? view.forEachNetlinkMessage { message in
            let type = Int32(message.type)
            if type == NLMSG_DONE || type == NLMSG_OVERRUN { return true }
            return type == NLMSG_ERROR && (message.sequence == sequence || message.sequence == 0)
        }
        return ends ?? true
    }
}
