#if canImport(Glibc)
import Glibc
#endif
import CSandbox
import FoundationEssentials
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
    private let lock = Lock()
    // Guarded by `lock`:
    private var tallies: [UInt32: AuditTally] = [:]
    /// Per watched uid: when it was subscribed (CLOCK_MONOTONIC ns; a record older
    /// than that belongs to an earlier run of the uid) and the program's recursion
    /// misses then.
    private var since: [UInt32: (monoNs: UInt64, misses: UInt64)] = [:]
    private var recordsRead: UInt64 = 0
    /// Monotonic and wall clocks read together: records carry CLOCK_MONOTONIC.
    private let clockBase: (monoNs: UInt64, wallMs: UInt64)

    private static let instance = Mutex<Result<LandlockObserver, AuditUnavailable>?>(nil)

    /// The ring's size: 2 MiB (≈1 500 records between two drains) for a process that
    /// runs one sandbox; `sandbox serve` sets 8 MiB before its first run.
    nonisolated(unsafe) public static var ringBytes: UInt32 = 2 << 20
    /// Records one run may put in the ring (past it: counted, as lost, for that run
    /// only). A process running one sandbox has no other run to protect; `serve` sets
    /// 1 024 (≈1.5 MiB of its 8 MiB ring).
    nonisolated(unsafe) public static var perRunCap: UInt32 = .max

    /// The process's observer. A refusal the kernel will repeat (EPERM, ENOENT,
    /// ENOTSUP, EINVAL: no trampolines, no function, another layout) is kept; a
    /// passing one (E2BIG: 38 programs on the function already, ENOMEM, EMFILE) is
    /// tried again at the next run.
    ///
    /// A lasting refusal is also remembered for the boot (``RememberedRefusal``), so
    /// the next `sandbox exec` does not pay the BTF scan and the verifier (≈1 ms of CPU
    /// and a TLB shootdown per run) to hear it again; `fresh` (doctor) asks the kernel.
    public static func shared(fresh: Bool = false) -> Result<LandlockObserver, AuditUnavailable> {
        instance.withLock { slot in
            if let slot, !fresh || (try? slot.get()) != nil { return slot }
            if !fresh, let remembered = RememberedRefusal.read() {
                let refusal = AuditUnavailable(reason: remembered + " (remembered for this boot; `sandbox doctor` asks the kernel again)")
                slot = .failure(refusal)
                return .failure(refusal)
            }
            do throws(Refusal) {
                let o = try LandlockObserver(rawTracepoint: nil, fakeCwdRequest: false, ringBytes: ringBytes, perRunCap: perRunCap)
                slot = .success(o)
                RememberedRefusal.forget()
                return .success(o)
            } catch {
                let refusal = AuditUnavailable(reason: error.reason)
                if [EPERM, ENOENT, ENOTSUP, EINVAL].contains(error.errno) {
                    slot = .failure(refusal)
                    RememberedRefusal.write(error.reason)
                }
                return .failure(refusal)
            }
        }
    }

    /// The kernel's lasting refusal of the observer, kept in `/run/sandbox` (root's
    /// run directory base: the observer is root's only) for as long as it holds: the
    /// same boot, kernel and effective capabilities (a root with CAP_BPF dropped must
    /// not speak for one that has it). Only denial reporting depends on it — Landlock
    /// enforces either way — and a run that reads it says so in its reason.
    enum RememberedRefusal {
        static let path = "/run/sandbox/.landlock-observer-refused"

        /// boot id, kernel release and CapEff: what the refusal was heard under.
        static func key() -> String? {
            guard let boot = RunDirectory.read("/proc/sys/kernel/random/boot_id")?.split(separator: "\n").first else { return nil }
            var u = utsname()
            uname(&u)
            let release = withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            return "\(boot) \(release) \(String(HostFeatures.effectiveCapabilities(), radix: 16))"
        }

        /// The reason, if a refusal was heard under the same key. The file must be
        /// root's, mode 0600, a regular file (O_NOFOLLOW): nothing else may speak here.
        static func read(at path: String = path) -> String? {
            guard geteuid() == 0, let key = key() else { return nil }
            let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            var st = stat()
            guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_uid == 0,
                  st.st_mode & 0o077 == 0, st.st_size < 4096 else { return nil }
            var buf = [UInt8](repeating: 0, count: Int(st.st_size))
            guard Glibc.read(fd, &buf, buf.count) == buf.count else { return nil }
            let lines = String(decoding: buf, as: UTF8.self).split(separator: "\n")
            guard lines.count == 2, lines[0] == key else { return nil }
            return String(lines[1])
        }

        /// Written whole, then renamed into place (FD.writeAtomically): a reader sees
        /// the old file or the new one. Best effort: without it the next run asks the
        /// kernel.
        static func write(_ reason: String, at path: String = path) {
            guard geteuid() == 0, let key = key() else { return }
            if path == Self.path, mkdir("/run/sandbox", 0o711) == 0 { chmod("/run/sandbox", 0o711) }
            let text = "\(key)\n\(reason.split(separator: "\n").joined(separator: " "))\n"
            try? FD.writeAtomically(path, Array(text.utf8), mode: 0o600)
        }

        static func forget(at path: String = path) { unlink(path) }
    }

    /// Why the observer did not open, and the errno that says whether it would again.
    public struct Refusal: Error {
        public var reason: String
        public var errno: Int32
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
    /// `fakeCwdRequest` (tests, with a raw tracepoint): each record is a stand-in
    /// denial — read_file on the caller's working directory — built from the kernel's
    /// own objects, so the path walk and the decoder meet real data.
    public init(rawTracepoint: String?, fakeCwdRequest: Bool = false, ringBytes: UInt32 = 2 << 20,
                perRunCap: UInt32 = .max) throws(Refusal) {
        var why = [CChar](repeating: 0, count: 512)
        var opened = sbx_ll_observer()
        let rc = why.withUnsafeMutableBufferPointer { buf in
            if let rawTracepoint {
                return rawTracepoint.withCString {
                    sbx_ll_observer_open(&opened, $0, fakeCwdRequest ? 1 : 0, ringBytes, perRunCap, buf.baseAddress, buf.count)
                }
            }
            return sbx_ll_observer_open(&opened, nil, 0, ringBytes, perRunCap, buf.baseAddress, buf.count)
        }
        guard rc == 0 else {
            throw Refusal(reason: String(cString: why), errno: -rc)
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
            throw Refusal(reason: "the observer's thread: \(String(cString: strerror(-spawned)))", errno: -spawned)
        }
    }

    /// Starts recording denials of `uid`, before the run's first process exists.
    public func subscribe(uid: UInt32) -> Result<Void, AuditUnavailable> {
        lock.lock(); defer { lock.unlock() }
        guard tallies[uid] == nil else { return .failure(AuditUnavailable(reason: "uid \(uid) is already being observed")) }
        let rc = sbx_ll_observer_watch(&observer, uid)
        guard rc == 0 else { return .failure(AuditUnavailable(reason: "watching uid \(uid): \(String(cString: strerror(-rc)))")) }
        tallies[uid] = AuditTally()
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        since[uid] = (UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec), sbx_ll_observer_misses(&observer))
        return .success(())
    }

    /// Once every process of the run is gone: the run's denials. `lost`: some are
    /// not in it (the ring had no room, the run passed its cap of records, or
    /// the kernel skipped the program meanwhile); `complete` false: records of the run
    /// may still have been on their way (see `unwatchFailed` too).
    public func finish(uid: UInt32) -> AuditTally {
        lock.lock(); defer { lock.unlock() }
        drainLocked()
        // A record of another run still being written holds back those behind it
        // (the ring is consumed in order); it is done within microseconds unless its
        // writer was preempted. Past ~10 ms the account says it may be incomplete.
        var spins = 0
        while observer.stopped_busy != 0 && spins < 10_000 { sched_yield(); drainLocked(); spins += 1 }
        var lost: UInt64 = 0
        let rc = sbx_ll_observer_unwatch(&observer, uid, &lost)
        var tally = tallies.removeValue(forKey: uid) ?? AuditTally()
        let start = since.removeValue(forKey: uid)
        let misses = sbx_ll_observer_misses(&observer)
        tally.lost = lost > 0 || misses == UInt64.max || start.map { misses > $0.misses } ?? false
        tally.complete = rc == 0 && observer.stopped_busy == 0
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
        // A record from before the uid's subscription is an earlier run's.
        guard tallies[e.uid] != nil, let start = since[e.uid], e.mono_ns >= start.monoNs else { return }
        let timeMs = e.mono_ns >= clockBase.monoNs
            ? clockBase.wallMs + (e.mono_ns - clockBase.monoNs) / 1_000_000
            : clockBase.wallMs - min(clockBase.wallMs, (clockBase.monoNs - e.mono_ns) / 1_000_000)
        tallies[e.uid]!.add(Self.record(e, timeMs: timeMs))
    }

    /// The event in the shape of Landlock's own audit record (the same tally and
    /// account code serve both sources).
    public static func record(_ e: sbx_ll_event, timeMs: UInt64) -> LandlockAccessRecord {
        // A path that is not exact carries its own "…" (a missing top, a cut name).
        let object = withUnsafeBytes(of: e.object) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
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
