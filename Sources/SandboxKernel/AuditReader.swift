#if canImport(Glibc)
import Glibc
#endif
import CSandbox
import FoundationEssentials
import Synchronization

/// What the audit reader collected for one run: bounded whatever the run does.
public struct AuditTally: Sendable {
    public struct Entry: Sendable, Equatable {
        public var count: Int
        /// The first record's time, ms since the epoch (the kernel's stamp).
        public var firstMs: UInt64
    }
    public struct SeccompKey: Hashable, Sendable {
        public var arch: UInt32
        public var syscall: Int32
        public var code: UInt32
    }
    /// A Landlock denial: the missing right and the object (path, `pid N (comm)`, port).
    public struct LandlockKey: Hashable, Sendable {
        public var blocker: String
        public var object: String
    }
    public var seccomp: [SeccompKey: Entry] = [:]
    public var landlock: [LandlockKey: Entry] = [:]
    /// Records counted in no entry: distinct keys past ``maxEntries``.
    public var dropped = 0
    /// The kernel's own count of the run's Landlock denials, from the `deallocated`
    /// records that arrived before the run's end (0: none arrived yet).
    public var landlockKernelTotal: UInt64 = 0
    /// The reader's socket overflowed while the run was accounted: records were lost.
    public var lost = false
    /// The end marker arrived: every record the run's processes caused is in.
    public var complete = false
    /// Distinct entries per run, each kind; past it, records are only counted.
    public static let maxEntries = 256

    public init() {}

    mutating func add(_ r: SeccompAuditRecord) {
        let key = SeccompKey(arch: r.arch, syscall: r.syscall, code: r.code)
        if seccomp[key] != nil { seccomp[key]!.count += 1 }
        else if seccomp.count < Self.maxEntries { seccomp[key] = Entry(count: 1, firstMs: r.timeMs) }
        else { dropped += 1 }
    }

    mutating func add(_ r: LandlockAccessRecord) {
        let object: String
        if let path = r.path { object = path }
        else if let pid = r.opid { object = "pid \(pid)" + (r.ocomm.map { " (\($0))" } ?? "") }
        else if let port = r.port { object = (r.daddr.map { "\($0):" } ?? "port ") + "\(port)" }
        else { object = "" }
        for blocker in r.blockers {
            let key = LandlockKey(blocker: blocker, object: object)
            if landlock[key] != nil { landlock[key]!.count += 1 }
            else if landlock.count < Self.maxEntries { landlock[key] = Entry(count: 1, firstMs: r.timeMs) }
            else { dropped += 1 }
        }
    }
}

extension Clock {
    /// CLOCK_REALTIME in ms: the clock of the kernel's audit timestamps.
    public static func realtimeMs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }
}

/// Why the reader cannot observe anything here.
public struct AuditUnavailable: Error, Sendable, Equatable {
    public var reason: String
    public init(reason: String) { self.reason = reason }
}

/// The one reader of kernel audit records per process (Docs/denials.md): a
/// NETLINK_AUDIT socket in the read-log multicast group, which delivers every record
/// the kernel emits WITHOUT kernel audit being enabled (and nothing here enables it),
/// read by a thread of its own and routed to the runs being accounted by uid
/// (``AuditDemux``). Started on first use; serves any number of concurrent runs.
///
/// Knowing a run's records are all in: after the run's init was reaped (its pid
/// namespace is empty then: no process of the run can make another call),
/// ``finish(uid:)`` has the marker thread make one call its own filter logs. The
/// kernel queues audit records in one FIFO (kauditd) and multicast delivers them in
/// that order, so once the reader sees that marker, every record the run caused was
/// delivered before it.
public final class AuditReader: @unchecked Sendable {
    private let fd: Int32
    private let markerFD: Int32
    private let cond = Condition()
    // Guarded by `cond`:
    private var demux: AuditDemux
    private var tallies: [UInt32: AuditTally] = [:]
    /// The marker thread's answer, read before the first token (`markerChecked`).
    private var markerReady: Int32
    private var markerChecked = false
    private var markersSent: UInt64 = 0
    private var markersSeen: UInt64 = 0
    private var recordsRead: UInt64 = 0
    private var broken: String?

    private static let instance = Mutex<Result<AuditReader, AuditUnavailable>?>(nil)

    /// Kernel audit on (`AUDIT_GET` enabled ≠ 0): Landlock logs denials only then.
    /// nil: the state could not be read (AUDIT_GET needs CAP_AUDIT_CONTROL).
    /// Asked afresh on every call (one netlink round trip): kept for the process, a
    /// long-lived `serve` would go on saying what the host's audit was when it
    /// started, and with audit turned off since, claim to observe Landlock's denials
    /// that the kernel no longer logs. A run asks once (`DenialAccount.start`).
    public static func kernelAuditState(status: () -> (ok: Bool, enabled: UInt32) = readStatus) -> Bool? {
        let (ok, enabled) = status()
        return ok ? enabled != 0 : nil
    }

    /// AUDIT_GET sent now, its answer read later (``AuditStateQuery/answer()``).
    public static func askAuditState() -> AuditStateQuery { AuditStateQuery() }

    /// AUDIT_GET itself (`kernelAuditState`'s default; tests pass their own).
    @usableFromInline static func readStatus() -> (ok: Bool, enabled: UInt32) {
        var enabled: UInt32 = 0, lost: UInt32 = 0
        return (sbx_audit_status(&enabled, &lost) == 0, enabled)
    }

    /// The process's reader, started on the first call (the outcome, failure
    /// included, is kept: a host without CAP_AUDIT_READ does not retry every run).
    public static func shared() -> Result<AuditReader, AuditUnavailable> {
        instance.withLock { slot in
            if let slot { return slot }
            let started = Result { () throws(AuditUnavailable) -> AuditReader in try AuditReader() }
            slot = started
            return started
        }
    }

    /// The receive buffer: a flood of denials (20 000 in a fraction of a second)
    /// must not overflow it while the reader thread waits for the CPU.
    static let receiveBuffer: Int32 = 32 << 20

    private init() throws(AuditUnavailable) {
        let rc = sbx_audit_open_reader(Self.receiveBuffer)
        guard rc >= 0 else {
            let e = -rc
            throw AuditUnavailable(reason: e == EPERM
                ? "no CAP_AUDIT_READ (a rootless or capability-dropped supervisor cannot read audit records)"
                : "the audit netlink socket: \(String(cString: strerror(e)))")
        }
        var ready: Int32 = -1
        let marker = sbx_audit_marker_start(&ready)
        guard marker >= 0 else {
            Glibc.close(rc)
            throw AuditUnavailable(reason: "the marker thread: \(String(cString: strerror(-marker)))")
        }
        fd = rc
        markerFD = marker
        markerReady = ready
        demux = AuditDemux(markerPid: getpid(), markerSyscall: sbx_audit_marker_syscall(),
                           nativeArch: sbx_audit_native_arch())
        let context = Unmanaged.passRetained(self).toOpaque()
        let spawned = sbx_audit_spawn_thread({ context in
            Unmanaged<AuditReader>.fromOpaque(context!).takeRetainedValue().readLoop()
        }, context)
        if spawned != 0 {
            Unmanaged<AuditReader>.fromOpaque(context).release()
            // The marker thread ends when its token pipe closes.
            Glibc.close(ready); Glibc.close(marker); Glibc.close(rc)
            throw AuditUnavailable(reason: "the reader thread: \(String(cString: strerror(-spawned)))")
        }
    }

    /// Starts accounting records of `uid` (a run's leased uid), before the run's
    /// first process exists. False: the reader stopped, or `uid` is taken.
    public func subscribe(uid: UInt32) -> Bool {
        cond.lock(); defer { cond.unlock() }
        guard broken == nil, tallies[uid] == nil else { return false }
        tallies[uid] = AuditTally()
        demux.subscribe(uid)
        return true
    }

    /// Once every process of the run is gone: sends the marker (see the type's
    /// comment) that ``finish(uid:marker:stallMs:)`` waits for, so the caller can
    /// read the run's statistics while it travels through the kernel and the
    /// reader's thread. Its token, or nil if it could not be sent (the tally is then
    /// incomplete).
    public func sendMarker() -> UInt64? {
        cond.lock(); defer { cond.unlock() }
        return sendMarkerLocked()
    }

    private func sendMarkerLocked() -> UInt64? {
        if !markerChecked {
            // Started without waiting (sbx_audit_marker_start); by now it has had the
            // whole run to put its filter in.
            markerChecked = true
            let rc = sbx_audit_marker_ready(markerReady)
            markerReady = -1
            if rc < 0, broken == nil { broken = "the marker thread's seccomp filter: \(String(cString: strerror(-rc)))" }
        }
        markersSent += 1
        if markersSent & 0xffff == 0 { markersSent += 1 } // token 0 would be errno 0
        let mine = markersSent
        var token = UInt16(truncatingIfNeeded: mine)
        let sent = broken == nil && withUnsafeBytes(of: &token) { Glibc.write(markerFD, $0.baseAddress, 2) } == 2
        return sent ? mine : nil
    }

    /// Waits for the records still in flight: those before `marker` (``sendMarker()``;
    /// `.unsent` sends one now), then stops accounting `uid` and returns its tally.
    /// `complete` is false if the marker was not sent or did not arrive (the reader
    /// stalled for `stallMs` or stopped), `lost` if the socket overflowed meanwhile.
    public func finish(uid: UInt32, marker: Marker = .unsent, stallMs: UInt64 = 2000) -> AuditTally {
        cond.lock(); defer { cond.unlock() }
        let token: UInt64?
        switch marker {
        case .unsent: token = sendMarkerLocked()
        case .sent(let t): token = t
        }
        let sent = token != nil
        let mine = token ?? 0
        var lastProgress = (recordsRead, Clock.monotonicMs())
        while sent, broken == nil, markersSeen < mine {
            cond.wait(milliseconds: 50)
            let now = Clock.monotonicMs()
            if recordsRead != lastProgress.0 { lastProgress = (recordsRead, now) }
            else if now - lastProgress.1 >= stallMs { break }
        }
        var tally = tallies.removeValue(forKey: uid) ?? AuditTally()
        tally.complete = sent && markersSeen >= mine
        if !tally.complete && broken == nil && recordsRead == 0 {
            // Not one record in all this time, not even the marker: the group
            // delivers nothing here (a supervisor outside the initial network
            // namespace gets silence, not an error). Later runs say so at once.
            broken = "no audit record arrived (is the supervisor outside the initial network namespace?)"
        }
        demux.unsubscribe(uid)
        return tally
    }

    /// The end marker of a run, as ``finish(uid:marker:stallMs:)`` takes it.
    public enum Marker: Sendable { case unsent, sent(UInt64?) }

    /// Why the reader stopped, if it did.
    public var failure: String? { cond.lock(); defer { cond.unlock() }; return broken }

    private func readLoop() {
        let size = 64 << 10
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        defer { buffer.deallocate() }
        while true {
            let n = recv(fd, buffer, size, 0)
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                cond.lock()
                if e == ENOBUFS {
                    // The kernel dropped records for this socket: every run accounted
                    // now may miss some.
                    for uid in tallies.keys { tallies[uid]!.lost = true }
                    cond.unlock()
                    continue
                }
                broken = "recv on the audit socket: \(String(cString: strerror(e)))"
                cond.broadcast(); cond.unlock()
                return
            }
            deliver(UnsafeRawBufferPointer(start: buffer, count: n))
        }
    }

    /// Each netlink message of one datagram (nlmsghdr: len u32, type u16, flags u16,
    /// seq u32, pid u32; then the text, NLMSG-aligned to 4).
    private func deliver(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        var routed: [AuditDemux.Routed] = []
        cond.lock(); defer { cond.unlock() }
        while offset + 16 <= bytes.count {
            let length = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            let type = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt16.self)
            guard length >= 16, offset + length <= bytes.count else { break }
            recordsRead += 1
            var text = UnsafeRawBufferPointer(rebasing: bytes[(offset + 16)..<(offset + length)])
            while let last = text.last, last == 0 || last == 0x0a { text = UnsafeRawBufferPointer(rebasing: text.dropLast()) }
            var event: AuditEvent?
            if type == AuditRecordParser.seccompType {
                // The hot path (a flood is thousands a second): a record of a run
                // being accounted goes straight to its tally.
                guard let r = AuditRecordParser.parseSeccomp(text) else { offset += (length + 3) & ~3; continue }
                if r.pid != demux.markerPid, tallies[r.uid] != nil {
                    if r.action != SeccompAuditRecord.notifyAction { tallies[r.uid]!.add(r) }
                    offset += (length + 3) & ~3
                    continue
                }
                event = .seccomp(r)
            } else if type == AuditRecordParser.landlockAccessType || type == AuditRecordParser.landlockDomainType {
                event = AuditRecordParser.parse(type: type, text: String(decoding: text, as: UTF8.self)[...])
            }
            if let event {
                routed = demux.route(event)
                for r in routed { apply(r) }
            }
            offset += (length + 3) & ~3
        }
        cond.broadcast()
    }

    private func apply(_ r: AuditDemux.Routed) {
        switch r {
        case .seccomp(let uid, let record):
            // A USER_NOTIF record is the notifier's to count (the supervisor answers
            // it and lists it in `violations`); counting it here too would double it.
            if record.action == SeccompAuditRecord.notifyAction { return }
            tallies[uid]?.add(record)
        case .landlock(let uid, let record): tallies[uid]?.add(record)
        case .landlockTotal(let uid, _, let n): tallies[uid]?.landlockKernelTotal += n
        case .marker(let token):
            // Markers are sent in order and arrive in order: the next one not yet
            // seen whose low 16 bits are `token`.
            var seq = markersSeen + 1
            while UInt16(truncatingIfNeeded: seq) != token, seq < markersSent { seq += 1 }
            if seq <= markersSent { markersSeen = seq }
        }
    }
}

/// `AuditReader.kernelAuditState()` in two halves: the kernel reads its state when
/// the query is sent (``init()``), and answers from a thread it starts for each
/// query (kthread creation: about 0.1 ms), which runs on another CPU while the
/// caller works until it reads the answer. One answer, read once.
public final class AuditStateQuery: @unchecked Sendable {
    private let lock = Mutex<(fd: Int32, answer: Bool??)>((-1, nil))
    /// `Clock.monotonicUs()` just before the state was read: the query tells the
    /// state at some moment after it.
    public let askedAtUs: UInt64

    fileprivate init() {
        askedAtUs = Clock.monotonicUs()
        let fd = sbx_audit_status_request()
        lock.withLock { $0.fd = fd }
    }

    /// The state (`enabled != 0`), or nil if it could not be read.
    public func answer() -> Bool? {
        lock.withLock { s in
            if let known = s.answer { return known }
            var enabled: UInt32 = 0, lost: UInt32 = 0
            let ok = s.fd >= 0 && sbx_audit_status_reply(s.fd, &enabled, &lost) == 0
            s.fd = -1 // closed by the reply, whatever it said
            let state: Bool? = ok ? enabled != 0 : nil
            s.answer = .some(state)
            return state
        }
    }

    deinit {
        lock.withLock { s in if s.fd >= 0 { Glibc.close(s.fd) } }
    }
}
