#if canImport(Glibc)
import Glibc
#endif
import SandboxKernel
import SandboxPlan
import SandboxVocabulary

/// The run's denial account (`RunResult.denials`, Docs/denials.md): every fence's
/// refusals gathered into one list a model can act on.
///
/// Sources:
/// - the seccomp notifier (`on_violation` notify/log/kill): each call, as today's
///   `violations`;
/// - the kernel's audit records, read by the process's ``AuditReader`` with kernel
///   audit off: the filter carries SECCOMP_FILTER_FLAG_LOG, so each ERRNO it returns
///   is logged (AUDIT_SECCOMP) with the caller's uid, which is the run's own leased
///   uid; Landlock's records where the kernel writes them (audit on);
/// - the egress firewall's counters (egress runs).
///
/// A record says only (syscall, errno): each rule that must be told apart answers
/// with an errno of its own for that syscall (``SeccompClassifier``). Where a kind
/// cannot be observed, ``notObserved`` says which and why (the result's
/// `notApplied`): never silently.
struct DenialAccount {
    let classifier: SeccompClassifier
    /// Notify mode: the calls the supervisor answered (also `violations`).
    private(set) var violations = ViolationLog()
    private var notifyFirst: [String: UInt64] = [:]
    /// The reader and this run's uid while records are being accounted.
    private var reader: AuditReader?
    /// The Landlock observer, when it accounts this run's Landlock denials.
    private var observer: LandlockObserver?
    private var uid: UInt32?
    private var tally: AuditTally?
    /// Landlock denials are logged (kernel audit on, ABI 7, the reader up): the child
    /// restricts itself with LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON.
    private(set) var landlockLogged = false
    private(set) var notObserved: [String] = []

    init(plan: RunPlan) {
        classifier = SeccompClassifier(plan: plan.seccomp)
        self.plan = plan
    }
    private let plan: RunPlan

    /// Before clone3: subscribe the run's uid to the reader. Returns the filter flag
    /// to add (SECCOMP_FILTER_FLAG_LOG) when the seccomp log is read, else 0.
    /// `auditState` answers the host's audit state when it is needed (a sandbox built
    /// ahead passes the reading it just made and will compare at the take).
    mutating func start(hostUID: UInt32?, auditState readAuditState: () -> Bool? = { AuditReader.kernelAuditState() }) -> UInt32 {
        var seccompKinds = classifier.loggedKinds(onViolation: plan.seccomp.onViolation)
        if plan.seccomp.onViolation != .errno && !seccompKinds.isEmpty {
            // FLAG_LOG logs every action but ALLOW: under notify each notification
            // would cost an audit record the reader only throws away. The built-in
            // refusals reach the supervisor instead (refuseBuiltin).
            seccompKinds = []
        }
        var landlockKinds: [String] = []
        if plan.landlock.abi > 0 { landlockKinds.append(DenialKind.filesystem.rawValue) }
        for scope in plan.landlock.scopes {
            landlockKinds.append(scope == .abstractUnixSocket ? DenialKind.abstractSocket.rawValue
                                 : classifier.signalRule ? "signal (other than kill/tkill/tgkill/rt_sigqueueinfo to PID 1)" : DenialKind.signal.rawValue)
        }
        if (plan.network.mode == .none || plan.network.mode == .loopback) && !classifier.connectAccounted {
            notObserved.append("denials: egress not observed: the seccomp profile does not allow connect(2) unconditionally, so it cannot be handed to the supervisor")
        }
        // Landlock's denials: the BPF observer where the kernel allows it (no audit
        // needed), else Landlock's own audit records (kernel audit on).
        var observerRefusal: String?
        if !landlockKinds.isEmpty, let hostUID {
            switch LandlockObserver.shared().flatMap({ o in o.subscribe(uid: hostUID).map { o } }) {
            case .success(let o):
                observer = o; uid = hostUID
                landlockKinds = []
            case .failure(let why):
                observerRefusal = why.reason
            }
        }
        guard !seccompKinds.isEmpty || !landlockKinds.isEmpty else { return 0 }
        let observerSaid = observerRefusal.map { "; \($0)" } ?? ""
        let auditOff = "kernel audit is off (Landlock logs denials only with it on; the sandbox never turns it on)"
        // The host's audit state, asked at most once for this run, and only if needed
        // (not kept for the process: a server's runs see it as it is when each starts).
        lazy var auditState = readAuditState()

        // Only Landlock's records are wanted, and with kernel audit off Landlock writes
        // none: the reader (two threads and a 32 MiB socket, ~1 ms of a cold start)
        // would wait for records that never come. Said as the reader would say it.
        // (Not when a rule kills or logs: the kernel logs those without FLAG_LOG, and
        // only the reader counts them.)
        if seccompKinds.isEmpty, !classifier.logsUnflagged, hostUID != nil, auditState == false {
            notObserved.append(Self.line(landlockKinds, auditOff + observerSaid))
            return 0
        }

        let observing: Result<AuditReader, AuditUnavailable>
        if let hostUID { observing = AuditReader.shared().flatMap { r in
            r.subscribe(uid: hostUID) ? .success(r) : .failure(AuditUnavailable(reason: r.failure ?? "uid \(hostUID) is already being accounted"))
        } } else {
            observing = .failure(AuditUnavailable(reason: "the command runs as the invoker's uid (process.host_uid = \"invoker\" or a rootless invoker), which other processes share: its audit records cannot be told apart"))
        }
        switch observing {
        case .failure(let why):
            notObserved.append(Self.line(seccompKinds + landlockKinds, why.reason + (landlockKinds.isEmpty ? "" : observerSaid)))
            return 0
        case .success(let r):
            reader = r; uid = hostUID
            if !landlockKinds.isEmpty {
                let state = auditState
                if state != true {
                    notObserved.append(Self.line(landlockKinds, (state == nil
                        ? "Landlock logs denials only with kernel audit on, and its state could not be read"
                        : auditOff) + observerSaid))
                } else if plan.landlock.abi < 7 {
                    notObserved.append(Self.line(landlockKinds, "Landlock ABI \(plan.landlock.abi) < 7 does not log denials"))
                } else {
                    landlockLogged = true
                }
            }
            return seccompKinds.isEmpty ? 0 : 1 << 1 // SECCOMP_FILTER_FLAG_LOG
        }
    }

    static func line(_ kinds: [String], _ reason: String) -> String {
        "denials: \(kinds.joinedText(separator: ", ")) not observed: \(reason)"
    }

    /// Once the run's init was reaped: the audit reader's end marker sent, so that
    /// it travels (through the kernel's audit queue and the reader's thread, on
    /// another CPU) while the supervisor reads the run's statistics; ``finish()``
    /// then waits for it. Without this, `finish` sends it itself.
    mutating func markEnd() {
        guard let reader, uid != nil, case .unsent = endMarker else { return }
        endMarker = .sent(reader.sendMarker())
    }
    private var endMarker = AuditReader.Marker.unsent

    /// Once the run's init was reaped: the reader's records of the run.
    mutating func finish() {
        if let observer, let uid {
            let t = observer.finish(uid: uid)
            if t.lost {
                notObserved.append("denials: some Landlock denials of the run are not listed (the observer's ring was full, the run passed the records one run may have in it, or the kernel skipped the observer): counts are lower bounds")
            }
            if !t.complete {
                notObserved.append("denials: the Landlock account may be incomplete: the observer could not confirm it had every record of the run")
            }
            landlockTally = t
            self.observer = nil
        }
        guard let reader, let uid else { return }
        let t = reader.finish(uid: uid, marker: endMarker)
        if !t.complete {
            notObserved.append("denials: the account may be incomplete: the audit reader did not confirm it had every record of the run"
                               + (reader.failure.map { " (\($0))" } ?? ""))
        }
        if t.lost {
            notObserved.append("denials: the audit socket overflowed during the run: some denials are missing (counts are lower bounds)")
        }
        tally = t
        self.reader = nil
    }
    /// The observer's tally (its `landlock` entries replace the audit reader's).
    private var landlockTally: AuditTally?

    /// connect(2) handed over for the egress account (network modes none and
    /// loopback, SeccompPlan.connectAccountOrigin): records an internet destination
    /// the run has no route to and answers "go on" (FLAG_CONTINUE), so the kernel
    /// answers as without the account (ENETUNREACH). `read(address, length)` reads the
    /// caller's sockaddr while its call is held; it is only counted, never acted on
    /// (the caller could change it). nil: not such a call.
    mutating func accountConnect(_ v: SeccompViolation, atMs: UInt64,
                                 read: (UInt64, Int) -> [UInt8]?) -> SeccompNotifier.Answer? {
        guard isAccountedConnect(v) else { return nil }
        let length = Int(min(v.args[2], 28)) // sockaddr_in6
        if length >= 8, let bytes = read(v.args[1], length), let dest = Self.destination(bytes),
           plan.network.mode == .none || !dest.loopback {
            let key = dest.text
            if connects[key] == nil && connects.count >= AuditTally.maxEntries { connectsDropped += 1 }
            else { connects[key, default: (0, atMs)].count += 1 }
        }
        return .allow
    }

    func isAccountedConnect(_ v: SeccompViolation) -> Bool { classifier.connectAccounted && v.syscall == "connect" }

    /// Notify modes: a built-in refusal the filter handed over (a socket family
    /// outside `socket_families`, a setuid/setgid mode, a signal to PID 1) is
    /// answered as the errno rule would (EAFNOSUPPORT, EPERM) and listed under its
    /// kind, not as a violation. Decided on the registers only. nil: not one.
    mutating func refuseBuiltin(_ v: SeccompViolation, atMs: UInt64) -> SeccompNotifier.Answer? {
        guard let (b, err) = classifier.builtin(v, viaSupervisor: plan.seccomp.onViolation != .errno) else { return nil }
        if let i = builtins.firstIndex(where: { $0.kind == b.kind && $0.what == b.what && $0.detail == b.detail }) {
            builtins[i].count += 1
        } else if builtins.count < AuditTally.maxEntries {
            var d = b
            d.count = 1
            d.first = atMs
            builtins.append(d)
        }
        return .error(err)
    }

    /// Nested: explicit file times the TimesFence refused (EPERM), in any
    /// `on_violation` mode: a built-in refusal, not a call outside the allow-list.
    mutating func refusedTimes(_ v: SeccompViolation, atMs: UInt64) {
        let d = RunResult.Denial(kind: .syscall, what: v.syscall, detail: "explicit times outside the writable binds, or on a file not the command's (EPERM)",
                                 count: 1, first: atMs,
                                 hint: "a nested run sets explicit file times only on its own files beneath an rw bind; times NULL (now, as touch sets them) work anywhere writable")
        if let i = builtins.firstIndex(where: { $0.kind == d.kind && $0.what == d.what && $0.detail == d.detail }) {
            builtins[i].count += 1
        } else if builtins.count < AuditTally.maxEntries {
            builtins.append(d)
        }
    }

    func isBuiltin(_ v: SeccompViolation) -> Bool {
        classifier.builtin(v, viaSupervisor: plan.seccomp.onViolation != .errno) != nil
    }
    /// The built-in refusals the supervisor answered (notify modes).
    private var builtins: [RunResult.Denial] = []

    /// `addr:port` of a sockaddr_in / sockaddr_in6 (nil for other families), and
    /// whether it is a loopback address.
    static func destination(_ b: [UInt8]) -> (text: String, loopback: Bool)? {
        let family = UInt16(b[0]) | UInt16(b[1]) << 8   // sa_family_t, host order (little-endian hosts)
        let port = UInt16(b[2]) << 8 | UInt16(b[3])     // network order
        if family == UInt16(AF_INET), b.count >= 8 {
            return ("\(b[4]).\(b[5]).\(b[6]).\(b[7]):\(port)", b[4] == 127)
        }
        if family == UInt16(AF_INET6), b.count >= 24 {
            let a = Array(b[8..<24])
            var groups: [String] = []
            for i in stride(from: 0, to: 16, by: 2) { groups.append(String(UInt16(a[i]) << 8 | UInt16(a[i + 1]), radix: 16)) }
            let mapped = a[0..<10].allSatisfy { $0 == 0 } && a[10] == 0xff && a[11] == 0xff
            let loopback = a[0..<15].allSatisfy { $0 == 0 } && a[15] == 1 || (mapped && a[12] == 127)
            return ("[\(groups.joinedText(separator: ":"))]:\(port)", loopback)
        }
        return nil
    }

    /// A call the notifier answered, `atMs` after the run started.
    mutating func record(_ v: SeccompViolation, atMs: UInt64) {
        violations.record(syscall: v.syscall, args: v.args)
        if notifyFirst[v.syscall] == nil { notifyFirst[v.syscall] = atMs }
    }
    /// Connects to destinations the run has no network for, by `addr:port`.
    private var connects: [String: (count: Int, first: UInt64)] = [:]
    private var connectsDropped = 0

    /// The account, merged by (kind, what, detail), in kind then name order.
    /// `startedWallMs`: the run's start on CLOCK_REALTIME (audit records' clock).
    func denials(egress: [DeniedDestination], dns: [DNSRefusal] = [], serverNames: [ServerNameRefusal] = [],
                 startedWallMs: UInt64) -> [RunResult.Denial] {
        var out: [RunResult.Denial] = []
        func add(_ d: RunResult.Denial) {
            if let i = out.firstIndex(where: { $0.kind == d.kind && $0.what == d.what && $0.detail == d.detail }) {
                out[i].count += d.count
                out[i].first = [out[i].first, d.first].compactMap { $0 }.min()
            } else { out.append(d) }
        }
        let action = plan.seccomp.onViolation
        for v in violations.sorted {
            let name = v.syscall ?? "?"
            add(RunResult.Denial(kind: .syscall, what: name,
                                 detail: action == .log ? "allowed and logged (on_violation = \"log\")"
                                     : action == .kill ? "the sandbox was killed (on_violation = \"kill\")" : "EPERM (on_violation = \"notify\")",
                                 count: v.count, first: notifyFirst[name],
                                 hint: action == .log ? "\(name) is outside this policy's allow-list (it ran: on_violation = \"log\")"
                                     : "the system call \(name) is not allowed by this policy"))
        }
        if violations.dropped > 0 {
            add(RunResult.Denial(kind: .syscall, what: "(other system calls)",
                                 detail: "calls of system calls past the \(RunResult.Violation.maxEntries)-entry cap",
                                 count: violations.dropped, first: nil, hint: "more system calls were denied than the account lists"))
        }
        for d in builtins { add(d) }
        let none = plan.network.mode == .none
        for (dest, n) in connects {
            add(RunResult.Denial(kind: .egress, what: dest, detail: "connect in network mode \(plan.network.mode.rawValue) (ENETUNREACH)",
                                 count: n.count, first: n.first,
                                 hint: none ? "network is off for this policy (network.mode = \"none\"): no connection can be made"
                                     : "this policy's network is the loopback only (network.mode = \"loopback\")"))
        }
        if connectsDropped > 0 {
            add(RunResult.Denial(kind: .egress, what: "(other destinations)", detail: "connects past the \(AuditTally.maxEntries)-entry cap",
                                 count: connectsDropped, first: nil, hint: "more destinations were tried than the account lists"))
        }
        var merged = tally
        if let landlockTally {
            if merged == nil { merged = AuditTally() }
            merged!.landlock = landlockTally.landlock
            merged!.dropped += landlockTally.dropped
        }
        if let tally = merged {
            for (key, entry) in tally.seccomp {
                var d = classifier.classify(key)
                d.count = entry.count
                d.first = entry.firstMs >= startedWallMs ? entry.firstMs - startedWallMs : 0
                add(d)
            }
            for (key, entry) in tally.landlock {
                var d = Self.landlockDenial(key)
                d.count = entry.count
                d.first = entry.firstMs >= startedWallMs ? entry.firstMs - startedWallMs : 0
                add(d)
            }
            if tally.dropped > 0 {
                add(RunResult.Denial(kind: .syscall, what: "(other denials)",
                                     detail: "denials past the \(AuditTally.maxEntries)-entry cap",
                                     count: tally.dropped, first: nil, hint: "more was denied than the account lists"))
            }
        }
        for e in egress {
            let why = Self.egressWhy(e, plan.network.connections)
            add(RunResult.Denial(kind: .egress, what: "\(e.daddr):\(e.dport)/\(e.proto)", detail: why.detail,
                                 count: Int(clamping: e.packets), first: nil, hint: why.hint))
        }
        // The stub's refusals (also `dnsDenied`, with the reason as a word).
        for r in dns {
            let d = RunResult.DNSDenial(r)
            let why: String
            switch r.reason {
            case .notAllowed where !r.nameIsHostName: why = "not a valid host name: NXDOMAIN, not asked upstream"
            case .notAllowed: why = "not an allowed name: NXDOMAIN, not asked upstream"
            case .recordType: why = "record type not answered"
            case .deniedAddress: why = "answer in network.deny_resolved: left out, not opened"
            case .rateLimited: why = "over the stub's upstream rate: SERVFAIL, not asked upstream"
            case .busy: why = "too many questions in flight: SERVFAIL"
            case .setFull: why = "the rule's address sets (or the stub's name memory) are full: SERVFAIL, nothing opened"
            case .tooManyAddresses: why = "more addresses than one answer may open: the rest left out, not opened"
            case .tooManyConnections: why = "over the stub's 16 TCP connections at once: closed unread"
            }
            // A connection closed unread has no question: it is named by the stub's port.
            let connection = r.reason == .tooManyConnections
            add(RunResult.Denial(kind: .dns, what: connection ? "\(plan.network.stub?.address ?? "stub"):53/tcp" : r.name,
                                 detail: connection ? why : "\(r.type): \(why)",
                                 count: Int(clamping: r.count), first: nil, hint: d.hint))
        }
        // The server name check's resets (also `sniDenied`): a flow to a host rule's
        // port whose TLS server_name / HTTP Host did not earn that destination.
        for r in serverNames {
            let d = RunResult.SNIDenial(r)
            let claimed = r.name.isEmpty ? "no server name" : "server name \(r.name)"
            let why: String
            switch r.reason {
            case .notResolved: why = "not resolved to this address in this run"
            case .notAllowed: why = "not an allowed name on this port"
            case .noName: why = "no TLS server_name or HTTP Host in the first data"
            case .ech: why = "encrypted ClientHello (the real name is hidden)"
            }
            add(RunResult.Denial(kind: .egress, what: "\(r.daddr):\(r.dport)/tcp", detail: "\(claimed): \(why) (reset)",
                                 count: Int(clamping: r.count), first: nil, hint: d.hint))
        }
        let order = DenialKind.allCases
        return out.sorted {
            let a = order.firstIndex(of: $0.kind)!, b = order.firstIndex(of: $1.kind)!
            return a != b ? a < b : $0.what < $1.what
        }
    }

    /// The detail and hint of a destination the egress firewall refused, by the set
    /// it was recorded in: only `not_allowed` is about network.allow.
    static func egressWhy(_ e: DeniedDestination, _ limits: ConnectionLimits?) -> (detail: String, hint: String) {
        let max = limits.map { "network.max_connections = \($0.max)" } ?? "network.max_connections"
        let rate = limits.map { "\($0.perSecond) a second (burst \($0.burst))" } ?? "its rate"
        switch e.reason {
        case .notAllowed:
            return ("packets dropped by the egress firewall",
                    "\(e.daddr) port \(e.dport) is not in this policy's network.allow")
        case .connectionLimit:
            return ("allowed, refused by the connection cap (\(max))",
                    "\(e.daddr) port \(e.dport) is allowed, but the run already had \(max) connections open; close connections (or let them finish) before opening more, or raise network.max_connections")
        case .connectionRate:
            return ("allowed, refused by the new-connection rate: \(rate)",
                    "\(e.daddr) port \(e.dport) is allowed, but the run opened new connections faster than \(rate), the rate \(max) sets (an eighth of it); open them more slowly (reuse connections), or raise network.max_connections")
        case .dnsCheck:
            return ("a datagram to a resolver that failed the DNS checks",
                    "a datagram to the resolver \(e.daddr) port \(e.dport) was not a DNS query (at most 576 bytes, one question, no answers) or DNS went faster than 100 datagrams a second (burst 200); send only DNS queries there, more slowly")
        }
    }

    /// A Landlock denial from its missing right (`fs.read_file`, `scope.signal`…).
    static func landlockDenial(_ key: AuditTally.LandlockKey) -> RunResult.Denial {
        let right = key.blocker
        if right == "scope.signal" {
            return RunResult.Denial(kind: .signal, what: key.object, detail: right, count: 0, first: nil,
                                    hint: "processes outside the sandbox (PID 1, the sandbox init, included) cannot be signalled under this policy")
        }
        if right == "scope.abstract_unix_socket" {
            return RunResult.Denial(kind: .abstractSocket, what: key.object, detail: right, count: 0, first: nil,
                                    hint: "abstract unix sockets outside the sandbox cannot be reached under this policy")
        }
        if right.hasPrefix("net.") {
            return RunResult.Denial(kind: .egress, what: key.object, detail: right, count: 0, first: nil,
                                    hint: "\(key.object): \(right == "net.bind_tcp" ? "binding" : "connecting to") this TCP port is not allowed by this policy")
        }
        let verb = right.hasPrefix("fs.") ? String(right.dropFirst(3)).replacing("_", with: " ") : right
        return RunResult.Denial(kind: .filesystem, what: key.object, detail: right, count: 0, first: nil,
                                hint: "\(key.object): \(verb) is not allowed by this policy")
    }
}

/// Maps a seccomp log record (syscall, errno) to the rule that produced it. The
/// rules that must be told apart answer a syscall with an errno no other rule of the
/// plan gives it: socket(2) EAFNOSUPPORT (a family outside `socket_families`),
/// socket(2) EACCES (network off), EPERM of a mode setter the profile allows (a
/// setuid/setgid bit), EPERM of kill & co. the profile allows (a signal to PID 1).
struct SeccompClassifier {
    let socketFamilies: [SocketFamily]?
    /// connect(2) goes through the supervisor for the egress account.
    let connectAccounted: Bool
    /// The errno of each syscall an unconditional errno rule names, and the default's.
    let errnoByName: [String: UInt32]
    let defaultErrno: UInt32
    /// Syscalls the no-setuid rules guard (the profile allows them otherwise).
    let setuidGuarded: Set<String>
    let signalGuarded: Set<String>
    var signalRule: Bool { !signalGuarded.isEmpty }
    /// The syscalls whose setuid bits or signals to PID 1 the supervisor answers as
    /// the built-in refusal when they reach it. Under "log", every one a no-setuid or
    /// no-signal rule names, whatever its action: an answer left to that mode lets the
    /// call run, so a call the profile does not allow, with a setuid bit, was let run
    /// (red team, session 47: chmod 04755 under a profile without chmod). (The sets
    /// above, for the log, hold only calls the profile allows: there an EPERM is the
    /// built-in's.)
    let setuidAnswered: Set<String>
    let signalAnswered: Set<String>
    /// io_uring_setup is refused by the built-in rule (whatever the profile says).
    let ioUringRefused: Bool
    /// clone(2) with a namespace flag is refused by the built-in rule (unshare denied).
    let namespaceClonesRefused: Bool
    let hasDenyRules: Bool
    /// A rule (or the default) kills or logs: the kernel logs those calls whatever
    /// the filter's flags, so the audit reader sees them in every mode.
    let logsUnflagged: Bool

    init(plan: SeccompPlan) {
        socketFamilies = plan.enabled ? plan.socketFamilies : nil
        connectAccounted = plan.enabled && plan.rules.contains { $0.origin == SeccompPlan.connectAccountOrigin }
        var byName: [String: UInt32] = [:]
        for r in plan.rules where r.action == .errno && r.args.isEmpty {
            for n in r.syscalls where byName[n] == nil { byName[n] = r.errno ?? 1 }
        }
        errnoByName = byName
        defaultErrno = plan.defaultErrno ?? 1
        func guarded(_ origin: String) -> Set<String> {
            Set(plan.rules.filter { $0.origin == origin && $0.action == .allow }.flatMap(\.syscalls))
        }
        setuidGuarded = plan.enabled ? guarded(SeccompPlan.noSetuidBitsOrigin) : []
        signalGuarded = plan.enabled ? guarded(SeccompPlan.noSignalsToInitOrigin) : []
        // Under "log" only: in the other modes such a call, which the profile does not
        // allow either, is answered as the mode answers a violation (EPERM, or the kill).
        func named(_ origin: String) -> Set<String> { Set(plan.rules.filter { $0.origin == origin }.flatMap(\.syscalls)) }
        let log = plan.onViolation == .log
        setuidAnswered = plan.enabled ? (log ? named(SeccompPlan.noSetuidBitsOrigin) : setuidGuarded) : []
        signalAnswered = plan.enabled ? (log ? named(SeccompPlan.noSignalsToInitOrigin) : signalGuarded) : []
        ioUringRefused = plan.enabled && plan.rules.contains { $0.origin == SeccompPlan.noIoUringOrigin }
        namespaceClonesRefused = plan.enabled && plan.rules.contains { $0.origin == SeccompPlan.noNamespaceClonesOrigin && $0.syscalls == ["clone"] }
        hasDenyRules = plan.enabled && (plan.defaultAction != .allow
            || plan.rules.contains { $0.action != .allow && $0.action != .log })
        let unflagged: Set<SeccompAction> = [.kill, .killProcess, .killThread, .log]
        logsUnflagged = plan.enabled && (unflagged.contains(plan.defaultAction) || plan.rules.contains { unflagged.contains($0.action) })
    }

    /// The kinds only the seccomp log can report under `onViolation` (notify mode
    /// reports plain syscall denials through the notifier).
    func loggedKinds(onViolation: ViolationAction) -> [String] {
        var kinds: [String] = []
        if hasDenyRules && onViolation == .errno { kinds.append(DenialKind.syscall.rawValue) }
        if socketFamilies != nil { kinds.append(DenialKind.socketFamily.rawValue) }
        if !setuidGuarded.isEmpty { kinds.append(DenialKind.setuidBit.rawValue) }
        if signalRule { kinds.append("signal (kill/tkill/tgkill/rt_sigqueueinfo to PID 1)") }
        return kinds
    }

    /// A built-in refusal handed to the supervisor (notify modes), from the
    /// registers: the denial (count 0) and the errno to answer.
    func builtin(_ v: SeccompViolation, viaSupervisor: Bool) -> (RunResult.Denial, errno: Int32)? {
        guard viaSupervisor, v.args.count == 6 else { return nil }
        let name = v.syscall
        if name == "socket", socketFamilies != nil, UInt32(truncatingIfNeeded: v.args[2]) == SeccompCompiler.ipprotoMPTCP {
            return (RunResult.Denial(kind: .socketFamily, what: "socket", detail: "IPPROTO_MPTCP (EPROTONOSUPPORT)", count: 0, first: nil,
                                     hint: "MPTCP sockets are refused: Landlock's TCP rules do not cover them; plain TCP works as the policy allows"),
                    EPROTONOSUPPORT)
        }
        if name == "socket" || name == "socketpair", let allowed = socketFamilies {
            let family = UInt32(truncatingIfNeeded: v.args[0])
            guard !allowed.contains(where: { $0.number == family }), !(name == "socketpair" && family == 1) else { return nil }
            let known = SocketFamily.allCases.first { $0.number == family }
            let afName = known.map { "AF_" + $0.rawValue.uppercased() } ?? "address family \(family)"
            return (RunResult.Denial(kind: .socketFamily, what: name, detail: "\(afName) (EAFNOSUPPORT)", count: 0, first: nil,
                                     hint: "the policy forbids creating \(afName) sockets (socket_families allows \(allowed.map(\.rawValue).joinedText(separator: ", ")))"),
                    EAFNOSUPPORT)
        }
        if setuidAnswered.contains(name), let arg = SeccompPlan.modeArgument[name] {
            let bits: UInt64 = 0o6000
            if let flagsArg = SeccompPlan.createFlagsArgument[name], v.args[Int(flagsArg)] & SeccompPlan.createFlags == 0 { return nil }
            guard v.args[Int(arg)] & bits != 0 else { return nil }
            return (RunResult.Denial(kind: .setuidBit, what: name, detail: "a mode with S_ISUID or S_ISGID (EPERM)", count: 0, first: nil,
                                     hint: "setting the setuid or setgid bit is not allowed by this policy"), EPERM)
        }
        if ioUringRefused, name == "io_uring_setup" {
            return (RunResult.Denial(kind: .syscall, what: name, detail: "io_uring (EPERM)", count: 0, first: nil,
                                     hint: "io_uring is refused wherever a seccomp filter is loaded: its operations (open, socket, connect …) would pass the filter's refusals"), EPERM)
        }
        if namespaceClonesRefused, name == "clone", v.args[0] & SeccompPlan.cloneNamespaceMask != 0 {
            return (RunResult.Denial(kind: .syscall, what: name, detail: "a namespace flag (EPERM)", count: 0, first: nil,
                                     hint: "new namespaces are refused under this policy (its deny list has unshare)"), EPERM)
        }
        if signalAnswered.contains(name), v.args[0] == 1 {
            return (RunResult.Denial(kind: .signal, what: name, detail: "to PID 1, the sandbox init (EPERM)", count: 0, first: nil,
                                     hint: "processes outside the sandbox (PID 1, the sandbox init, included) cannot be signalled under this policy"), EPERM)
        }
        return nil
    }

    func classify(_ key: AuditTally.SeccompKey) -> RunResult.Denial {
        let name = SeccompCompiler.syscallName(key.syscall, arch: key.arch)
        // The record carries the action but not the errno (the kernel logs
        // `action`, not the filter's data) nor the arguments: the syscall names the
        // rule, because each rule told apart here is the only one that denies it.
        let action = key.code & 0xffff_0000
        if action == SeccompAuditRecord.errnoAction {
            if (name == "socket" || name == "socketpair") && socketFamilies != nil {
                let allowed = socketFamilies!.map(\.rawValue).joinedText(separator: ", ")
                let mptcp = name == "socket" ? ", or an MPTCP socket (EPROTONOSUPPORT)" : ""
                return RunResult.Denial(kind: .socketFamily, what: name, detail: "address family not in socket_families (EAFNOSUPPORT)\(mptcp)",
                                        count: 0, first: nil,
                                        hint: "this policy allows only \(allowed.isEmpty ? "no" : allowed) sockets; other address families (netlink, packet…) fail with EAFNOSUPPORT")
            }
            if setuidGuarded.contains(name) {
                return RunResult.Denial(kind: .setuidBit, what: name, detail: "a mode with S_ISUID or S_ISGID (EPERM)",
                                        count: 0, first: nil,
                                        hint: "setting the setuid or setgid bit is not allowed by this policy")
            }
            if signalGuarded.contains(name) {
                return RunResult.Denial(kind: .signal, what: name, detail: "to PID 1, the sandbox init (EPERM)", count: 0, first: nil,
                                        hint: "processes outside the sandbox (PID 1, the sandbox init, included) cannot be signalled under this policy")
            }
            if name.hasPrefix("nr_") {
                return RunResult.Denial(kind: .syscall, what: name, detail: "unknown system call number (ENOSYS)", count: 0, first: nil,
                                        hint: "system call number \(key.syscall) is unknown to this sandbox and fails with ENOSYS")
            }
            let errName = Errno(Int32(errnoByName[name] ?? defaultErrno)).name
            return RunResult.Denial(kind: .syscall, what: name, detail: errName, count: 0, first: nil,
                                    hint: "the system call \(name) is not allowed by this policy (it fails with \(errName))")
        }
        let what = action == 0x8000_0000 ? "killed the process" : action == 0 ? "killed the thread"
            : action == 0x0003_0000 ? "SIGSYS (trap)" : action == 0x7ff0_0000 ? "traced" : "action 0x\(String(action, radix: 16))"
        return RunResult.Denial(kind: .syscall, what: name, detail: what, count: 0, first: nil,
                                hint: "the system call \(name) is not allowed by this policy")
    }
}

