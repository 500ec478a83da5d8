import Glibc

/// A mutex with one condition variable: the two pipelines' only shared
/// state is guarded by one of these.
final class Monitor: @unchecked Sendable {
    // Allocated, so that pthread sees one fixed address for each.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` holding the lock.
    func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Inside `locked`: waits until `ready()` holds, releasing the lock meanwhile.
    func wait(until ready: () -> Bool) {
        while !ready() { pthread_cond_wait(condition, mutex) }
    }

    /// Inside `locked`: wakes every waiter.
    func broadcast() { pthread_cond_broadcast(condition) }
}

/// A POSIX thread running one closure; `join` waits for it to end.
package final class WorkerThread: @unchecked Sendable {
    private var thread = pthread_t()
    private var running = false

    init(_ body: @escaping @Sendable () -> Void) throws {
        thread = try Self.start(body, detached: false)
        running = true
    }

    func join() {
        if running { pthread_join(thread, nil) }
        running = false
    }

    /// Starts `body` on a thread that nobody joins: it ends by itself.
    package static func detached(_ body: @escaping @Sendable () -> Void) throws {
        _ = try start(body, detached: true)
    }

    private static func start(_ body: @escaping @Sendable () -> Void, detached: Bool) throws -> pthread_t {
        final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
        var thread = pthread_t()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        if detached { pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED)) }
        let context = Unmanaged.passRetained(Box(body)).toOpaque()
        let rc = pthread_create(&thread, &attributes, { context in
            Unmanaged<Box>.fromOpaque(context!).takeRetainedValue().body()
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<Box>.fromOpaque(context).release()
            throw Errno(rc)
        }
        return thread
    }
}
