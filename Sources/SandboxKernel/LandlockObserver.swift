#if canImport(Glibc)
import Glibc
#endif
import CSandbox
import Foundation
import Synchronization

/// Landlock's denials without kernel audit (Docs/denials.md): a BPF program on the
/// entry of the kernel's `landlock_log_denial()` copies each denial of a watched uid
/// (the run's leased uid) into a ring buffer; a thread of its own drains it into the
/// runs' tallies. One per process, opened on first use; the outcome, a refusal
/// included, is kept (a kernel that refuses BPF trampolines refuses every time).
///
/// Complete once the run's processes are gone: the program writes each record inside
/// the denied call, before the call returns, so after the run's init was reaped
/// (its pid namespace empty) every record of the run is in the ring; ``finish(uid:)``
/// drains it.
public final class LandlockObserver: @unchecked Sendable {
    private var observer = sbx_ll_observer()
    private let lock = NSLock()
    // Guarded by `lock`:
    private var tallies: [UInt32: AuditTally] = [:]
    private var recordsRead: UInt64 = 0
    /// Monotonic and wall clocks read together: records carry CLOCK_MONOTONIC.
    private let clockBase: (monoNs: UInt64, wallMs: UInt64)

    private static let instance = Mutex<Result<LandlockObserver, AuditUnavailable>?>(nil)

    public static func shared() -> Result<LandlockObserver, AuditUnavailable> {
        instance.withLock { slot in
            if let slot { return slot }
            let opened = Result { () throws(AuditUnavailable) -> LandlockObserver in try LandlockObserver(rawTracepoint: nil) }
            slot = opened
            return opened
        }
    }

    /// Opens the observer on a thread of its own, so that its cost (the BTF scan, the
    /// verifier: ≈1 ms where the kernel refuses it, ≈12 ms where it loads) overlaps
    /// the run's other set-up; ``shared()`` then waits for it if it is not done.
    public static func prepareInBackground() {
        // Rootless: no CAP_BPF, and no leased uid to watch.
        guard geteuid() == 0, !instance.withLock({ $0 != nil }) else { return }
        _ = sbx_audit_spawn_thread({ _ in _ = LandlockObserver.shared() }, nil)
    }

    /// `rawTracepoint`: the same program on that raw tracepoint instead (tests only:
    /// the ring, the uid filter and the decoder where fentry is refused).
    public init(rawTracepoint: String?) throws(AuditUnavailable) {
        var why = [CChar](repeating: 0, count: 512)
        var opened = sbx_ll_observer()
        let rc = why.withUnsafeMutableBufferPointer { buf in
            if let rawTracepoint {
                return rawTracepoint.withCString { sbx_ll_observer_open(&opened, $0, buf.baseAddress, buf.count) }
            }
            return sbx_ll_observer_open(&opened, nil, buf.baseAddress, buf.count)
        }
        guard rc == 0 else {
            throw AuditUnavailable(reason: String(cString: why))
        }
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        clockBase = (UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec), Clock.realtimeMs())
        observer = opened
        let context = Unmanaged.passRetained(self).toOpaque()
        let spawned = sbx_audit_spawn_thread({ context in
            Unmanaged<LandlockObserver>.fromOpaque(context!).takeRetainedValue().drainLoop()
        }, context)
        if spawned != 0 {
            Unmanaged<LandlockObserver>.fromOpaque(context).release()
            sbx_ll_observer_close(&observer)
            throw AuditUnavailable(reason: "the observer's thread: \(String(cString: strerror(-spawned)))")
        }
    }

    /// Starts recording denials of `uid`, before the run's first process exists.
    public func subscribe(uid: UInt32) -> Result<Void, AuditUnavailable> {
        lock.lock(); defer { lock.unlock() }
        guard tallies[uid] == nil else { return .failure(AuditUnavailable(reason: "uid \(uid) is already being observed")) }
        let rc = sbx_ll_observer_watch(&observer, uid)
        guard rc == 0 else { return .failure(AuditUnavailable(reason: "watching uid \(uid): \(String(cString: strerror(-rc)))")) }
        tallies[uid] = AuditTally()
        return .success(())
    }

    /// Once every process of the run is gone: the run's denials. `lost` if the ring
    /// had no room for some of them; `complete` otherwise.
    public func finish(uid: UInt32) -> AuditTally {
        lock.lock(); defer { lock.unlock() }
        drainLocked()
        // A record of another run still being written holds back those behind it
        // (the ring is consumed in order): it is done within microseconds.
        var spins = 0
        while observer.stopped_busy != 0 && spins < 10_000 { sched_yield(); drainLocked(); spins += 1 }
        var dropped: UInt64 = 0
        let rc = sbx_ll_observer_unwatch(&observer, uid, &dropped)
        var tally = tallies.removeValue(forKey: uid) ?? AuditTally()
        tally.lost = dropped > 0 || rc != 0
        tally.complete = rc == 0
        return tally
    }

    /// Drains now; every record the ring delivered so far, of any uid (tests: only
    /// watched uids' denials reach the ring).
    public func recordsDelivered() -> UInt64 {
        lock.lock(); defer { lock.unlock() }
        drainLocked()
        return recordsRead
    }

    private func drainLoop() {
        while true {
            _ = sbx_ll_observer_wait(&observer, 200)
            lock.lock()
            drainLocked()
            lock.unlock()
        }
    }

    private func drainLocked() {
        let context = Unmanaged.passUnretained(self).toOpaque()
        _ = sbx_ll_observer_drain(&observer, { event, context in
            let me = Unmanaged<LandlockObserver>.fromOpaque(context!).takeUnretainedValue()
            me.record(event!.pointee)
        }, context)
    }

    /// Called with `lock` held (from the drain).
    private func record(_ e: sbx_ll_event) {
        recordsRead += 1
        guard tallies[e.uid] != nil else { return }
        let timeMs = e.mono_ns >= clockBase.monoNs
            ? clockBase.wallMs + (e.mono_ns - clockBase.monoNs) / 1_000_000
            : clockBase.wallMs - min(clockBase.wallMs, (clockBase.monoNs - e.mono_ns) / 1_000_000)
        tallies[e.uid]!.add(Self.record(e, timeMs: timeMs))
    }

    /// The event in the shape of Landlock's own audit record (the same tally and
    /// account code serve both sources).
    public static func record(_ e: sbx_ll_event, timeMs: UInt64) -> LandlockAccessRecord {
        var object = withUnsafeBytes(of: e.object) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if e.object_partial != 0 { object = "…" + object }
        let comm = withUnsafeBytes(of: e.target_comm) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        var r = LandlockAccessRecord(timeMs: timeMs, domain: "", blockers: Self.blockers(request: e.request, access: e.access),
                                     path: nil, opid: nil, ocomm: nil, daddr: nil, port: nil)
        switch e.request {
        case 1, 6: // ptrace, signal: the target process
            if e.target_pid >= 0 { r.opid = e.target_pid; r.ocomm = comm.isEmpty ? nil : comm }
        case 4: r.port = e.port
        default: r.path = object.isEmpty ? nil : object
        }
        return r
    }

    /// Landlock's own names for what was missing (its audit records' `blockers=`).
    static let fsRights = ["execute", "write_file", "read_file", "read_dir", "remove_dir", "remove_file",
                           "make_char", "make_dir", "make_reg", "make_sock", "make_fifo", "make_block",
                           "make_sym", "refer", "truncate", "ioctl_dev"]
    public static func blockers(request: UInt32, access: UInt32) -> [String] {
        switch request {
        case 1: return ["ptrace"]
        case 2: return ["fs.change_topology"]
        case 3:
            let names = fsRights.enumerated().filter { access & (1 << UInt32($0.offset)) != 0 }.map { "fs." + $0.element }
            return names.isEmpty ? ["fs.access"] : names
        case 4:
            var names: [String] = []
            if access & 1 != 0 { names.append("net.bind_tcp") }
            if access & 2 != 0 { names.append("net.connect_tcp") }
            return names.isEmpty ? ["net.access"] : names
        case 5: return ["scope.abstract_unix_socket"]
        case 6: return ["scope.signal"]
        default: return ["landlock.request_\(request)"]
        }
    }
}
