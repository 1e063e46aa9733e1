import CSandbox
import FoundationEssentials
import Glibc

// What corelibs Foundation gave that FoundationEssentials does not: a lock, a lock
// with a condition, a detached thread (and JSONTree.swift, a JSON tree). The shipped
// binary imports only FoundationEssentials: corelibs Foundation brings
// FoundationInternationalization and ICU (a 34 MB data table and 12 000 symbols),
// which every run paid for at start-up in relocations and page faults
// (Docs/benchmarks.md, "Cold start").

/// A mutex (`NSLock`'s `lock()`/`unlock()`, not recursive).
public final class Lock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    public init() { pthread_mutex_init(mutex, nil) }
    deinit { pthread_mutex_destroy(mutex); mutex.deallocate() }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }

    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock(); defer { unlock() }
        return try body()
    }
}

/// A mutex with a condition variable (`NSCondition`): waits time out on the
/// monotonic clock, so a change of the wall clock neither cuts nor stretches them.
public final class Condition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }
    deinit {
        pthread_cond_destroy(cond); pthread_mutex_destroy(mutex)
        cond.deallocate(); mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }
    public func broadcast() { pthread_cond_broadcast(cond) }

    /// Waits (locked) for a broadcast or `milliseconds`; false when the time ran out.
    @discardableResult
    public func wait(milliseconds: Int) -> Bool {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let ns = Int(ts.tv_nsec) + (milliseconds % 1000) * 1_000_000
        ts.tv_sec += milliseconds / 1000 + ns / 1_000_000_000
        ts.tv_nsec = ns % 1_000_000_000
        return pthread_cond_timedwait(cond, mutex, &ts) == 0
    }
}

/// Threads of our own (`Thread.detachNewThread`): detached, so nothing joins them.
public enum Threads {
    private final class Start {
        let name: String?
        let body: @Sendable () -> Void
        init(name: String?, body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
    }

    /// Runs `body` on a new detached thread with the given stack size (the process's
    /// default when nil) and name (the kernel keeps 15 bytes of it). False when the
    /// thread could not be created; `body` then never runs.
    @discardableResult
    public static func detach(name: String? = nil, stackSize: Int? = nil,
                              _ body: @escaping @Sendable () -> Void) -> Bool {
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
        if let stackSize { pthread_attr_setstacksize(&attr, stackSize) }
        let start = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
        var thread = pthread_t()
        let e = pthread_create(&thread, &attr, { context in
            let start = Unmanaged<Start>.fromOpaque(context!).takeRetainedValue()
            if let name = start.name { _ = sbx_set_thread_name(name) }
            start.body()
            return nil
        }, start)
        if e != 0 { Unmanaged<Start>.fromOpaque(start).release(); return false }
        return true
    }
}
