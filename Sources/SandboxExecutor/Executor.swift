import Glibc
import SandboxAudit
import SandboxKernel
import SandboxPlan
import SandboxVocabulary
import Synchronization

/// Why a run did not run its command to the end: where it stopped (`kind`, `step`),
/// on what (`subject`: a path, a cgroup file, a policy key), the errno when the
/// kernel gave one, the message people read, and the exit status (125, or 126/127
/// when the command itself could not be executed). `RunResult.error` carries it.
public struct ExecError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Codable, Sendable {
        /// The policy could not be loaded or is invalid.
        case policy
        /// The plan was refused (by the planner, or by the executor before anything
        /// was created): nothing ran.
        case plan
        /// The supervisor's preparation failed: a kernel object could not be made.
        case setup
        /// The sandbox init failed at a step between `clone3` and `execve`.
        case child
        /// `execve` of the command failed (126 not executable, 127 not found).
        case exec
        /// The command was killed for a seccomp violation (`on_violation = "kill"`).
        case violation
    }

    public var kind: Kind
    /// The step that failed: a ``SetupStep`` name, the child's step name, `load`
    /// or `compile` for the policy and the plan.
    public var step: String
    /// What it failed on, when there is one thing: a path, a cgroup file, a key.
    public var subject: String?
    public var errno: Errno?
    /// What people read (stderr): names the step and the subject.
    public var message: String
    public var exitCode: Int32

    public init(kind: Kind, step: String, subject: String? = nil, errno: Errno? = nil,
                message: String, exitCode: Int32 = 125) {
        self.kind = kind; self.step = step; self.subject = subject?.isEmpty == true ? nil : subject
        self.errno = errno; self.message = message; self.exitCode = exitCode
    }

    /// A set-up step that failed (a ``KernelError`` gives the subject and errno); the
    /// message is `<label>: <error>` (label: the step's name unless given; "": none).
    init(_ step: SetupStep, _ error: any Error, label: String? = nil, subject: String? = nil) {
        let kernel = error as? KernelError
        self.init(kind: .setup, step: step.rawValue, subject: subject ?? kernel?.subject, errno: kernel?.errno,
                  message: label == "" ? "\(error)" : "\(label ?? step.rawValue): \(error)")
    }

    /// A set-up step that failed without an errno.
    init(_ step: SetupStep, subject: String? = nil, message: String) {
        self.init(kind: .setup, step: step.rawValue, subject: subject, message: message)
    }

    public var description: String { message }
}

/// The supervisor's set-up steps, in order (see ``Executor``'s `supervise`): the
/// `step` of a set-up error.
public enum SetupStep: String, Sendable, CaseIterable {
    case refuse = "refuse"
    case audit = "audit"
    case bindSources = "bind sources"
    case binary = "binary"
    case runDirectory = "run directory"
    case hostUID = "host uid"
    case bindTrees = "bind trees"
    case cgroup = "resources"
    case landlock = "landlock"
    case seccomp = "seccomp"
    case childSpec = "child spec"
    case signals = "signals"
    case clone = "clone3"
    case idMaps = "id maps"
    case oomScore = "oom score"
    case network = "network"
    case supervise = "supervise"
}

public struct ExecOptions {
    /// Where compiled seccomp programs are cached (by rule digest); nil: no cache.
    public var seccompCacheDir: String?
    /// Where run directories live (`/run/sandbox`, or `$XDG_RUNTIME_DIR/sandbox`).
    public var runBase: String
    /// Put back the attributes of a terminal on stdin/stdout/stderr when the run ends
    /// (the command could leave it without echo, in raw mode). The terminal is the
    /// process's: with several runs at once on one terminal, leave this to one of
    /// them (or to the harness).
    public var restoreTerminal = true
    /// Block INT, TERM, HUP, QUIT, USR1 and USR2 on the run's thread and forward those
    /// that reach it to the sandbox (what the CLI wants: Ctrl-C reaches the command).
    /// A signal sent to the *process* reaches a run only if no thread of the process
    /// leaves it unblocked, and then whichever run reads it first: a harness with
    /// several runs at once should set this to false and forward with
    /// ``Executor/signal(_:)`` (or ``RunHandle/signal(_:)``) to the run it means.
    public var forwardSignals = true
    /// The command's stdin, stdout and stderr, when not this process's 0, 1, 2 (a
    /// server runs each request with its client's descriptors). Borrowed: the caller
    /// keeps them open for the whole of ``Executor/run()`` and closes them after.
    public var stdio: (Int32, Int32, Int32)? = nil
    /// Called once, on the run's thread, with the run's result as soon as it is final
    /// (and on record in the audit log, when the plan has one), before teardown
    /// removes the run's cgroup, run directory and leases: a server replies without
    /// waiting for the cleanup. ``Executor/run()`` returns the same result after
    /// teardown. Nothing of the run is left running by then: its PID namespace (or,
    /// nested, its reaper's sweep) has ended every process.
    public var onResult: ((RunResult) -> Void)? = nil
    /// An egress namespace prepared ahead for this run's ruleset (a server's
    /// `EgressNamespacePool`): taken by the spawner instead of one it made, and its
    /// inside not set up again (`PreparedNamespace`). Given to this run alone; closed
    /// by it. Ignored unless the plan is egress with exactly its ruleset, the run may
    /// take a namespace made ahead, and the init is then found in it.
    public var preparedNetwork: PreparedNamespace? = nil
    public init(runBase: String, seccompCacheDir: String? = nil) {
        self.runBase = runBase; self.seccompCacheDir = seccompCacheDir
    }
}

/// Applies a RunPlan and supervises the run. Makes no policy decisions: everything
/// comes from the plan. Preparation happens here, before the child exists (cgroup,
/// Landlock ruleset, seccomp BPF, run directory); every step registers its undo, so a
/// failure anywhere leaves nothing behind.
///
/// Threads:
/// - **One run per instance.** ``run()`` runs the plan once; a second call returns a
///   125 result without running anything. Make a new `Executor` for each run.
/// - **Any number of instances at once**, on as many threads, in one process: every
///   descriptor a run opens has one owner (`OwnedFD`) and is closed exactly once, so
///   one run never closes another's; run directories, cgroups, uid and address
///   leases are per run id, and the host-wide state (bridge, seccomp cache, lease
///   files) is locked or written atomically.
/// - **Call ``run()`` on a thread that lives as long as the run.** The sandbox
///   init's `PR_SET_PDEATHSIG` fires when the *thread* that cloned it exits, not the
///   process; a pool thread that is retired mid-run kills its sandbox. The euid
///   switch around `clone3` (a leased host uid) and the blocked signals
///   (``ExecOptions/forwardSignals``) are that thread's alone.
/// - **Signals**: ``signal(_:)`` may be called from any thread (also through
///   ``handle``, which is `Sendable`); signals sent to the process are not routed
///   to a particular run (see ``ExecOptions/forwardSignals``).
/// - Process-wide state a run reads and does not change: the working directory
///   (`{cwd}` binds are opened beneath it: do not `chdir` while runs start), the
///   umask (the run directory's mode, which the run's own uid depends on, is set
///   with `chmod` too), the terminal (see ``ExecOptions/restoreTerminal``). SIGPIPE
///   need not be ignored: the one write to the child is made with it held off.
public final class Executor {
    /// `var` only for the digest, filled after clone3 when the caller left it out.
    private(set) var plan: RunPlan
    private(set) var options: ExecOptions
    private var undo = UndoStack()
    private var notApplied: [String]
    private var seccompProgram: SeccompProgram?
    /// Nested: the supervisor's side of explicit file times (step 7, `makeTimesFence`).
    private var timesFence: TimesFence?
    /// Every fence's denials (the notifier's calls, the audit records, the
    /// firewall's counters), bounded: `denials` and `violations` in the result.
    private var account: DenialAccount
    /// The run's start on CLOCK_REALTIME (audit timestamps' clock), for `first`.
    private var startedWallMs: UInt64 = 0
    private var egressDenied: [DeniedDestination] = []
    private var dnsRefusals: (kinds: [DNSRefusal], dropped: UInt64) = ([], 0)
    private var sniRefusals: (kinds: [ServerNameRefusal], dropped: UInt64) = ([], 0)
    /// The syscall that ended the run under `on_violation = "kill"`.
    private var killedFor: String?
    /// Whether the fences were applied to anything: false for a run refused or failed
    /// before clone3, whose result then reports none.
    private var spawned = false
    /// Whether the run got a cgroup of its own (every best-effort limit missing: none).
    private var cgroupMade = false
    /// Set when teardown could not remove something; the run directory then stays.
    private var keepRunDirectory = false
    /// The init did not end `abandonAfterMs` after it was sent its end: a process of
    /// the run is in uninterruptible sleep (a client's stdin on a FUSE mount whose
    /// daemon never answers FLUSH makes any close of it wait so, SIGKILL or not). The
    /// run is then left as a killed supervisor's would be: not waited for, its uid
    /// lease and run directory kept for `sandbox gc`, so a server's bounds are not
    /// held for ever (red team, session 28).
    private var abandoned = false
    static let abandonAfterMs: UInt64 = 10_000
    /// How old an audit state asked ahead may be at the take (``canRun``): about a
    /// request's plan, and no more than the take's own query ever stood before the
    /// command (the `[binary]` check, an egress network's set-up).
    static let auditStateFreshUs: UInt64 = 2_000

    /// Whether an audit state asked at `askedAtUs` tells the state at the take
    /// (`nowUs`) for a sandbox whose build read its own at `builtReadAtUs`: asked
    /// after that reading, and fresh.
    static func mayUseAuditState(askedAtUs: UInt64, builtReadAtUs: UInt64, nowUs: UInt64) -> Bool {
        askedAtUs > builtReadAtUs && nowUs >= askedAtUs && nowUs - askedAtUs <= auditStateFreshUs
    }
    /// Built ahead (``prepareAhead()``): the sandbox waiting for its command, and the
    /// host's kernel audit state when it was built.
    private var prepared: Sandbox?
    /// The run's mount namespace being let go at teardown (`holdMountNamespace`).
    private var mountNamespaceRelease: BackgroundClose?
    /// A cold run's network namespace, made while steps 1–9 run (`supervise`).
    private var networkNamespaceAhead: NetworkNamespaceAhead?
    private var auditStateAtBuild: Bool?
    /// `Clock.monotonicUs()` once `auditStateAtBuild` was read: a query asked
    /// after it tells the state since the build (``canRun(_:auditState:)``).
    private var auditStateReadAtUs: UInt64 = .max
    /// What its init mounted beneath writable binds, as seen once its root was built.
    private var builtMounts: [Int: MountSources.InsideObject?]?
    /// The host uid leased to this run (`process.host_uid = "own"`).
    private var hostUID: UInt32?
    /// What the run created that the plan reports (`plan.reportCreated`).
    private var createdEntries: (paths: [String], total: Int, incomplete: Bool) = ([], 0, false)
    /// What the run directory says about the run (`state.json`), once it exists.
    private var record: RunRecord?
    /// The cgroup layout step 3 probed (when the plan has limits), for step 6.
    private var cgroupHost: CgroupHost?
    /// Shared with other threads: signal the run (``signal(_:)``).
    public let handle: RunHandle
    /// The audit log (`[audit] path`) once this run's start is in it.
    private var audit: AuditLog?
    /// `[binary]`: what was checked (also when refused), for the result and the audit.
    private var binary: CheckedBinary?

    public init(plan: RunPlan, options: ExecOptions) {
        self.plan = plan
        self.options = options
        self.notApplied = plan.notApplied
        self.account = DenialAccount(plan: plan)
        self.handle = RunHandle(end: plan.isNested ? Signal.endRun : Signal.kill)
    }

    /// Runs the plan to completion. Never throws: a set-up failure is a RunResult with
    /// exit code 125 (or 126/127) and `error` set, after everything was undone.
    public func run() -> RunResult {
        let started = Clock.monotonicMs()
        startedWallMs = Clock.realtimeMs()
        guard handle.claim() else { return alreadyRan() }
        // The command inherits stdin/stdout/stderr: a terminal among them gets its
        // attributes back however the run ends (TerminalModes).
        let terminal = options.restoreTerminal ? TerminalModes.save() : TerminalModes()
        defer { terminal.restore() }
        return complete(started: started) { try self.supervise(started: started) }
    }

    private func alreadyRan() -> RunResult {
        RunResult.refused(runId: plan.runId, policy: plan.policy.name, argv: plan.process.argv, error: Self.ranBefore)
    }

    static let ranBefore = ExecError(kind: .plan, step: SetupStep.refuse.rawValue,
                                     message: "this Executor has already run its plan; make a new Executor for each run")

    /// The run's body, then what every run does however it went: its result (a
    /// failure as a 125 result), the audit record, the caller's `onResult`, teardown.
    private func complete(started: UInt64, _ body: () throws -> RunResult) -> RunResult {
        var result: RunResult
        do {
            result = try body()
        } catch let e as ExecError {
            result = failure(namespacesRefused(e), started: started)
        } catch {
            result = failure(ExecError(.supervise, message: "\(error)"), started: started)
        }
        // The prepared namespace's descriptor, whatever happened (the init is in it,
        // or the run failed first): it may not keep the namespace and its veth past
        // the run.
        options.preparedNetwork?.close()
        // The audit record first: it describes the run, not its cleanup, and a result
        // handed out is one that is on record.
        result = endAudit(result)
        options.onResult?(result)
        // The test hook's reaper leaves the rest of the run to the init's exit, which
        // the teardown's kill brings; held off so that the control sees it (tests).
        if TestHooks.statusBeforeSweep { Glibc.usleep(500_000) }
        teardown()
        return result
    }

    // MARK: - A sandbox built ahead of its command (a server's warm path)

    /// Builds the plan's sandbox before its command is known: steps 2–11 as ``run()``
    /// makes them, with the init waiting, its root built, for the command that
    /// ``run(command:stdio:onResult:)`` sends it. The plan's argv, env and search path
    /// are placeholders: what the sandbox is made of comes from the rest of the plan
    /// (``RunPlan/sameSandbox(as:)`` says which request may take it). A failure
    /// leaves nothing behind (teardown) and is returned. Used once: a sandbox
    /// either runs one command or is let go (``discard()``). Needs a server's
    /// spawner (the init must not die with this thread) and no forwarded signals.
    public func prepareAhead() -> ExecError? {
        guard handle.claim() else { return Self.ranBefore }
        // Egress too (since session 38): the init is cloned in a namespace prepared
        // for its ruleset when `options.preparedNetwork` holds one (firewall, lo and
        // eth0 in place, the host end down and detached; else a namespace with only
        // lo, down), and the rest of the network is set up at the take, before the
        // command: the firewall's counters, refusal sets and DNS stub are this run's
        // own, and no packet reaches the sandbox while it waits (one the host queued
        // for its address may arrive once attached, as for any run just started:
        // Docs/network.md, Known limits).
        guard !plan.isNested, !options.forwardSignals else {
            teardown()
            return ExecError(kind: .plan, step: SetupStep.refuse.rawValue,
                             message: "a sandbox built ahead must be namespaced, without forwarded signals")
        }
        if plan.landlock.abi > 0 && plan.process.hostUID == .own { LandlockObserver.prepareInBackground() }
        // Before the denial account reads it (step 7): the account's choices (which
        // records to expect, the filter's log flag) hold only while it stays so.
        auditStateAtBuild = AuditReader.kernelAuditState()
        auditStateReadAtUs = Clock.monotonicUs()
        do {
            let sources = try openBindSources()
            let sandbox = try build(sources: sources, executable: nil, ahead: true)
            prepared = sandbox
            try recordBuiltMounts(sandbox)
            return nil
        } catch {
            teardown()
            return error as? ExecError ?? ExecError(.supervise, message: "\(error)")
        }
    }

    /// Whether `request` may run in the sandbox built ahead: the plan compiled for it
    /// makes exactly this sandbox (``RunPlan/sameSandbox(as:)``: every field but the
    /// command, the run id and the digest) and the init is still waiting.
    private func canRun(_ request: RunPlan, auditState query: AuditStateQuery?) -> Bool {
        guard let sandbox = prepared, request.sameSandbox(as: plan), !sandbox.child.pidfd.hasExited else { return false }
        // The host's audit state as at the build (the account was set up for it), and
        // the mounts on host paths as the plan puts them. The state from `query` when
        // the kernel read it after the build's reading and at most
        // `auditStateFreshUs` ago (asked while the request was planned), else asked
        // now: a request held up between its arrival and the take (a slow policy
        // read) would otherwise take a sandbox on a state since changed (red team,
        // session 42).
        let nowUs = Clock.monotonicUs()
        let now = query.flatMap {
            Self.mayUseAuditState(askedAtUs: $0.askedAtUs, builtReadAtUs: auditStateReadAtUs, nowUs: nowUs) ? $0.answer() : nil
        } ?? AuditReader.kernelAuditState()
        return now == auditStateAtBuild && mountsStillHold(sandbox)
    }

    /// Built ahead: the mounts the init made beneath binds are as they were when its
    /// root was built (``recordBuiltMounts(_:)``), and each `protect` and `pin`
    /// (bound onto itself) sits on the very object the host path names now. The plan
    /// names these places by path only, and a bind — read-only too — shares its
    /// entries with the host, where the host or a command of another run with the
    /// same directory writable can rename, remove or create them after the build:
    /// `rm -rf .git && git init` detaches the protect mount on the old entry, `mv
    /// .git old && mkdir .git` or `mv cache x && mkdir cache` takes a protect or a
    /// tmpfs along with the old one, a masked file saved anew (or one absent at the
    /// build, so not masked then) is the host's file; a sandbox built now would
    /// mount on the new entry, so this one may not run (red team, session 36, three
    /// rounds). Mounts elsewhere in the root are on the init's own tmpfs, which
    /// nothing outside reaches. Seen from the host through the init's root
    /// (resolved inside it, no symlink).
    private func mountsStillHold(_ sandbox: Sandbox) -> Bool {
        guard let built = builtMounts, observeMounts(sandbox) == built else { return false }
        let writable = writableBinds()
        for (i, seen) in built {
            let step = plan.mounts[i]
            guard step.kind == .protect || step.kind == .pin, let seen else { continue }
            // The writable bind the path lies beneath (the innermost), and the host
            // object at the same place beneath its opened source.
            let enclosing = writable.filter { PathText.isBeneath(step.destination, plan.mounts[$0].destination) }
                .max { plan.mounts[$0].destination.utf8.count < plan.mounts[$1].destination.utf8.count }
            guard let b = enclosing, let source = sandbox.sources[b] else { return false }
            let base = plan.mounts[b].destination
            let rest = PathText.same(step.destination, base) ? "" : PathText.remainder(of: step.destination, under: base)
            guard let host = rest.isEmpty ? (source.device, source.inode) : MountSources.identity(beneath: source.fd, rest),
                  host.device == seen.device, host.inode == seen.inode else { return false }
        }
        return true
    }

    private func writableBinds() -> [Int] {
        plan.mounts.indices.filter { plan.mounts[$0].kind == .bind && !plan.mounts[$0].readOnly }
    }

    /// What is at each mount step's destination that lies strictly beneath a bind
    /// (by step index; nil: nothing there), seen from the host.
    private func observeMounts(_ sandbox: Sandbox) -> [Int: MountSources.InsideObject?]? {
        let binds = plan.mounts.filter { $0.kind == .bind }.map(\.destination)
        var seen: [Int: MountSources.InsideObject?] = [:]
        for (i, step) in plan.mounts.enumerated() where step.kind != .symlink {
            guard binds.contains(where: { $0 != step.destination && PathText.isBeneath(step.destination, $0) }) else { continue }
            do { seen[i] = try MountSources.objectInside(pid: sandbox.child.pid, path: step.destination) } catch { return nil }
        }
        return seen
    }

    /// Built ahead: once the init says its root is built (one byte on the command
    /// socket, or EOF if a step failed), what ``mountsStillHold(_:)`` compares with.
    private func recordBuiltMounts(_ sandbox: Sandbox) throws {
        guard let socket = sandbox.command else { throw ExecError(.childSpec, message: "a sandbox built ahead has no command socket") }
        let byte: UInt8?
        do { byte = try FD.readByte(socket.raw, timeoutMs: Self.buildTimeoutMs) } catch { throw ExecError(.clone, error, label: "built ahead") }
        guard byte == UInt8(ascii: "R") else {
            throw ExecError(kind: .child, step: SetupStep.clone.rawValue, message: "the sandbox built ahead did not finish its root (its init failed or took over \(Self.buildTimeoutMs / 1000) s)")
        }
        guard let seen = observeMounts(sandbox) else {
            throw ExecError(kind: .child, step: SetupStep.clone.rawValue, message: "the sandbox built ahead could not be looked at from the host")
        }
        builtMounts = seen
    }

    static let buildTimeoutMs: Int32 = 10_000

    /// Runs `request`'s command in the sandbox built ahead when `canRun` holds
    /// (nil when not: nothing was started, and the caller lets it go and builds one
    /// for the request): its audit start, its
    /// `[binary]` check, then the command sent to the waiting init, supervised as
    /// ``run()`` supervises; the result is `request`'s (under this run's id), as
    /// `run()` would give it. `stdio` is borrowed as ``ExecOptions/stdio`` is.
    public func run(command request: RunPlan, stdio: (Int32, Int32, Int32),
                    onResult: ((RunResult) -> Void)?, auditState: AuditStateQuery? = nil) -> RunResult? {
        // The one check of the take: a second one a moment later could differ (the
        // host changing an entry meanwhile) and would have to refuse a request the
        // first let through (red team, session 36, round 4).
        guard let sandbox = prepared, canRun(request, auditState: auditState) else { return nil }
        let started = Clock.monotonicMs()
        startedWallMs = Clock.realtimeMs()
        options.stdio = stdio
        options.onResult = onResult
        var mine = request
        mine.runId = plan.runId
        plan = mine
        // Nothing runs in the sandbox until the command is sent: a refusal before
        // then reports no fences, as a refusal before clone3 does.
        spawned = false
        return complete(started: started) {
            try refuseRingsAsStdio()
            let executable = try checkBinary(sandbox.sources)             // 2b
            try startAudit()                                              // 1
            var sandbox = sandbox
            // Egress: the host side now (from the namespace prepared for the build,
            // the lease, the bridge and host table ensured, the veth attached), its
            // DNS stub and server name check; the firewall was loaded in the build.
            sandbox.network = try setUpNetwork(sandbox.child, runDir: sandbox.runDir) // 11
            sandbox.startedWall = Clock.fileTimestampNow()
            try sendCommand(sandbox, executable: executable)               // 11
            spawned = true
            return try superviseRun(sandbox, started: started)            // 12–13
        }
    }

    /// Lets a sandbox built ahead go unused: its init killed, everything of it removed.
    public func discard() {
        prepared = nil
        teardown()
    }

    /// 8. Built ahead: the socket pair the command goes over (the child's end in the
    /// spec), and the null device as the init's stdio until the command brings its own.
    private func commandChannel(_ spec: inout ChildSpec) throws -> (parent: OwnedFD, child: OwnedFD) {
        let pair: (OwnedFD, OwnedFD)
        let null: OwnedFD
        do {
            pair = try FD.socketPair(stream: true)
            undo.push { pair.0.close(); pair.1.close() }
            null = try FD.openNullDevice()
        } catch { throw ExecError(.childSpec, error, label: "command socket") }
        undo.push { null.close() }
        spec.commandSocket = pair.1.raw
        spec.stdio = (null.raw, null.raw, null.raw)
        return (pair.0, pair.1)
    }

    /// 11. Built ahead: the command to the waiting init (argv, env, search path, the
    /// checked executable, the client's stdio), then the record and `plan.json` as
    /// a run that was given its command at clone3 writes them.
    private func sendCommand(_ sandbox: Sandbox, executable: BinaryCheck.Opened?) throws {
        var checked: CheckedExec?
        if var e = executable, !TestHooks.execByPath {
            try e.confirm()
            checked = Executor.checkedExec(e)
        }
        guard let socket = sandbox.command, let stdio = options.stdio else {
            throw ExecError(.childSpec, message: "a sandbox built ahead has no command socket")
        }
        let command = ChildCommand(argv: plan.process.argv, env: plan.process.env, searchPath: plan.process.searchPath,
                                   checkedExec: checked, stdio: stdio)
        do { try Child.sendCommand(command, on: socket.raw) } catch { throw ExecError(.childSpec, error, label: "command") }
        socket.close()
        executable?.closeFiles()
        recordRunning(sandbox.runDir, startedNow: true)
    }

    /// Sends `sig` to the sandbox (its init forwards it to the command), from any
    /// thread, as the CLI forwards the signals it receives. False when there is no
    /// child to signal: before `clone3`, and once the run has ended.
    @discardableResult
    public func signal(_ sig: Int32) -> Bool { handle.signal(sig) }

    private func failure(_ e: ExecError, started: UInt64) -> RunResult {
        if plan.digest == nil { plan.digest = try? PlanDigest.digest(of: plan) }
        return makeResult(exitCode: e.exitCode, signal: nil, timedOut: false, started: started,
                   exit: nil, error: e, cgroupStats: nil)
    }

    private func teardown() {
        undo.unwind()
        mountNamespaceRelease?.wait()
        mountNamespaceRelease = nil
    }

    /// A namespaced run refused where namespaces cannot be made (the bind trees need
    /// CAP_SYS_ADMIN, clone3 the namespaces): the error says so, names what the probe
    /// found refused, and that the policy does not accept nested isolation — never a
    /// silent fallback.
    private func namespacesRefused(_ e: ExecError) -> ExecError {
        guard !plan.isNested, [SetupStep.bindTrees, .clone, .idMaps].map(\.rawValue).contains(e.step),
              let why = HostProbe.namespaceBlocker() else { return e }
        var out = e
        out.message = "namespaces cannot be made here (\(why)), and policy \(plan.policy.name) does not accept nested isolation (process.isolation = \"\(plan.isolation?.requested.rawValue ?? "namespaces")\"; \"nested\" or \"namespaces-or-nested\" would run with Landlock, seccomp and the other fences that need no namespace: Docs/policy-reference.md): \(e.message)"
        return out
    }

    // MARK: - The run, step by step

    /// No io_uring instance reaches the command as its stdin, stdout or stderr: the
    /// ring's operations (IORING_OP_OPENAT, _SOCKET …) run past the seccomp filter,
    /// which refuses only io_uring_setup (red team, session 47: a ring an invoker's
    /// wrapper left on fd 0 made an AF_NETLINK socket past socket_families). The
    /// command cannot make or receive one itself (rings are close-on-exec and cannot
    /// pass over SCM_RIGHTS), so its stdio is the only way in.
    private func refuseRingsAsStdio() throws {
        let (i, o, e) = options.stdio ?? (0, 1, 2)
        for (fd, name) in [(i, "stdin"), (o, "stdout"), (e, "stderr")] where FD.isIoUring(fd) {
            throw ExecError(.childSpec, message: "the command's \(name) is an io_uring instance, whose operations would run past the seccomp filter; give it a file, a pipe, a socket or a terminal")
        }
    }

    /// The supervisor's work in order, one step per line (as nsjail's `containProc`;
    /// Docs/architecture.md, "The supervisor's preparation", numbers them the same).
    /// Each step that creates something registers its own undo as it goes, and
    /// `teardown` unwinds them newest first on every path, so a failure at any step
    /// leaves nothing behind.
    private func supervise(started: UInt64) throws -> RunResult {
        try refuseRingsAsStdio()
        // The Landlock observer opens once per process; started now, its cost
        // overlaps steps 1–7 (the account joins it at step 7).
        // Only a run of its own (leased) uid can be told apart by it.
        if plan.landlock.abi > 0 && plan.process.hostUID == .own { LandlockObserver.prepareInBackground() }
        // The run's network namespace, made on another thread meanwhile (most of
        // what CLONE_NEWNET costs the clone); a run that may not take one owned by
        // the initial user namespace makes its own as before.
        if !plan.isNested && Executor.mayTakeNamespaceMadeAhead(plan) {
            networkNamespaceAhead = NetworkNamespaceAhead.start(loopbackUp: plan.network.mode == .loopback)
            undo.push { [unowned self] in networkNamespaceAhead?.close(); networkNamespaceAhead = nil }
        }
        // Refusals from here on are audited: run_start names the checked binary.
        let opened = Result { () throws -> ([Int: OpenedSource], BinaryCheck.Opened?) in
            let sources = try openBindSources()                           // 2
            return (sources, try checkBinary(sources))                    // 2b
        }
        try startAudit()                                                  // 1
        let (sources, executable) = try opened.get()
        let sandbox = try build(sources: sources, executable: executable, ahead: false) // 3–11
        return try superviseRun(sandbox, started: started)                // 12–13
    }

    /// Steps 3–11: the sandbox around the opened sources, its init let go. `ahead`:
    /// built before its command is known (``prepareAhead()``): the init gets a
    /// command socket instead of argv, env and stdio (the null device meanwhile), and
    /// waits on it once its root is built; the record and `plan.json` wait for the
    /// command too.
    private func build(sources: [Int: OpenedSource], executable: BinaryCheck.Opened?, ahead: Bool) throws -> Sandbox {
        let runDir = try makeRunDirectory(sources)                        // 3
        let lease = try leaseHostUID(runDir)                              // 4
        let trees = try prepareTrees(sources, lease: lease)               // 5
        let cgroup = try makeCgroup(runDir)                               // 6
        let landlock = try makeLandlockRuleset(sources)                   // 7
        let (program, notify) = try compileSeccomp()                      // 7
        makeTimesFence(sources)                                           // 7
        let logFlags = startDenialAccount(ahead: ahead)                   // 7
        let pipes = try ChildPipes(undo: &undo)                           // 8
        var spec = childSpec(runDir: runDir, lease: lease, landlock: landlock, seccomp: program) // 8
        if let program, logFlags != 0 {
            spec.seccompFlags |= logFlags
            // The unknown-number filter is stacked with seccomp(2) after the main one;
            // it only keeps those calls out of the log, so where the main filter does
            // not let seccomp through it is left out, not the run (red team, session
            // 47: `deny = ["seccomp"]` failed with "load the seccomp filter: EPERM").
            if plan.seccomp.passesWhatever("seccomp") { spec.seccompUnlogged = program.unknownNumberFilter }
        }
        if account.landlockLogged { spec.landlockRestrictFlags = 1 << 1 } // LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON
        let command = ahead ? try commandChannel(&spec) : nil             // 8
        let signals = try blockSignals()                                  // 9
        try giveDescriptors(to: &spec, sources: sources, trees: trees, cgroup: cgroup, landlock: landlock,
                            notify: notify, pipes: pipes, executable: executable) // 9
        // For "created during the run": birth times on disk come from the same clock.
        let startedWall = Clock.fileTimestampNow()
        let child = try spawn(spec)                                       // 10
        // The child has its own copies now; the parent's are closed by their owners.
        pipes.closeChildEnds(); notify?.child.close(); landlock?.close()  // 11
        cgroup?.closeChildFDs(); for fd in trees.values { fd.close() }    // 11
        networkNamespaceAhead?.close(); networkNamespaceAhead = nil        // 11
        executable?.closeFiles(); command?.child.close()                  // 11
        try writeIDMaps(child, lease: lease)                              // 11
        try preferRunForOOM(child)                                        // 11
        holdMountNamespace(child)                                         // 11
        // Built ahead: the network waits for the take (below), so that no packet
        // reaches the sandbox while it waits: a host end attached meanwhile let any
        // host process put conntrack state in it (a datagram to its port opened the
        // reply path the command used; red team, session 38).
        let network = ahead ? nil : try setUpNetwork(child, runDir: runDir) // 11
        letChildGoOn(pipes, runDir: runDir, recordRun: !ahead)            // 11
        return Sandbox(sources: sources, runDir: runDir, child: child, pipes: pipes, signals: signals,
                       notify: notify, cgroup: cgroup, network: network, command: command?.parent,
                       startedWall: startedWall)
    }

    /// Steps 12–13: the run supervised to its end, and its result.
    private func superviseRun(_ sandbox: Sandbox, started: UInt64) throws -> RunResult {
        let (child, pipes, cgroup, network, sources) = (sandbox.child, sandbox.pipes, sandbox.cgroup, sandbox.network, sandbox.sources)
        let startedWall = sandbox.startedWall
        // Namespaced: the init writes its report (the payload's status, the run's CPU
        // time) once it has killed and reaped every other process of the run, so the
        // run is over then, before the init's own exit; the teardown waits for that
        // (the spawn's undo), not the result.
        let earlyStatus = !plan.isNested ? pipes.status.read : nil
        let ended = try loop(pidfd: child.pidfd, signals: sandbox.signals, notifySocket: sandbox.notify?.parent,
                             status: earlyStatus) // 12
        let timedOut = ended.timedOut
        let exit = ended.exit
        if exit != nil { child.reaped = true } // nothing left to kill by pidfd
        // The run's pid namespace is empty: its last audit records are in flight. The
        // marker behind them travels while the outcome and statistics are read.
        account.markEnd()

        // 13. Why it ended: a set-up failure report, else the payload's wait status;
        // what the run's cgroup, the scan and the firewall counted (the nft sets live
        // in the run's namespace: read before teardown).
        let (report, statusRead) = pipes.readOutcome()
        let reaper = ended.status ?? statusRead
        let stats = cgroup?.stats()
        createdEntries = scanCreated(sources: sources, since: startedWall)
        egressDenied = network?.deniedDestinations() ?? []
        sniRefusals = network?.serverNameRefusals() ?? ([], 0)
        dnsRefusals = network?.dnsRefusals() ?? ([], 0)
        account.finish()
        if let f = ChildFailure(record: report) {
            let e = describe(f)
            return makeResult(exitCode: e.exitCode, signal: nil, timedOut: timedOut, started: started,
                              exit: exit, error: e, cgroupStats: stats, reaper: reaper)
        }
        if let syscall = killedFor {
            // Reported as the kernel's own kill would be: SIGSYS, 128+31.
            return makeResult(exitCode: 128 + 31, signal: 31, timedOut: timedOut, started: started, exit: exit,
                              error: ExecError(kind: .violation, step: "seccomp", subject: syscall,
                                               message: "killed: seccomp violation: \(syscall) (on_violation = \"kill\")",
                                               exitCode: 128 + 31),
                              cgroupStats: stats, reaper: reaper)
        }
        let (code, signal) = Executor.exitStatus(payload: reaper, initExited: exit?.exited ?? true, initStatus: exit?.status ?? 0)
        if reaper == nil, let exit, !exit.exited, !timedOut, !handle.isCancelled {
            // Killed by a signal we did not send (the OOM killer, an RLIMIT_CPU it
            // inherited, a kill from outside) before it could report the command's
            // status: the command's exit is unknown, and nested, what it left may
            // still run — a sandbox failure, not the command's signal (red team 5).
            let what = plan.isolation?.mode == .nested
                ? "the run's reaper was killed by signal \(exit.status) before it reported the command's status; processes the command left may still be running"
                    + (cgroup == nil ? " (there is no run cgroup to end them)" : " (the run's cgroup ends them at teardown)")
                : "the sandbox init was killed by signal \(exit.status) before it reported the command's status (its PID namespace ended every process of the run)"
            return makeResult(exitCode: 125, signal: nil, timedOut: timedOut, started: started, exit: exit,
                              error: ExecError(kind: .child, step: "reaper", subject: "signal \(exit.status)", message: what),
                              cgroupStats: stats, reaper: reaper)
        }
        return makeResult(exitCode: code, signal: signal, timedOut: timedOut, started: started,
                          exit: exit, error: nil, cgroupStats: stats, reaper: reaper)
    }

    // MARK: - The steps

    /// 3. The run directory and its lock, held for the supervisor's life, and the run
    /// record (`starting`; written here, or with the leased uid at step 4). Left for
    /// `sandbox gc` (lock released) if a kernel object of the run could not be
    /// removed; gc retries under the lock.
    private func makeRunDirectory(_ sources: [Int: OpenedSource]) throws -> RunDirectory {
        let runDir: RunDirectory
        do { runDir = try RunDirectory.create(base: options.runBase, id: plan.runId) } catch {
            throw ExecError(.runDirectory, error)
        }
        undo.push { [unowned self] in if self.keepRunDirectory { runDir.release() } else { runDir.remove() } }
        record = RunRecord(runId: plan.runId, policy: plan.policy.name, planDigest: plan.digest ?? "",
                           argv: plan.process.argv, started: Clock.unixSeconds(), state: .starting,
                           writable: RunRecord.writableSources(plan, sources))
        // Every cgroup directory step 6 may make is known now and recorded with the
        // rest, so step 6 need not replace state.json again (each write is a rename,
        // journalled where /run is not a tmpfs); step 4 adds a leased uid. The record
        // exists from here on (or step 4): `ps`, `gc` and the run's own traces find it
        // by it.
        if plan.resources.needsCgroup {
            var host = CgroupHost.probe()
            host.nestUnderInvoker = true
            cgroupHost = host
            let planned = RunCgroup.plannedDirectories(runId: plan.runId, host: host)
            if !planned.isEmpty { record?.cgroups = planned }
        }
        // A run with a uid to lease writes its record first at step 4, with the uid
        // (nothing of the run exists before then): one rename of state.json fewer.
        if plan.process.hostUID != .own {
            do { try updateRecord(runDir) { _ in } } catch { throw ExecError(.runDirectory, error) }
        }
        return runDir
    }

    /// 4. A root invoker's command runs as a host uid of its own (`process.host_uid =
    /// "own"`): recorded in the run record first (the record's first write), so gc
    /// can release it, then taken.
    private func leaseHostUID(_ runDir: RunDirectory) throws -> UidLease? {
        guard plan.process.hostUID == .own else { return nil }
        do {
            let lease = try UidLease.acquire(directory: UidLease.directory(runBase: options.runBase), runId: plan.runId) {
                uid throws(KernelError) in try self.updateRecord(runDir) { $0.hostUID = uid }
            }
            hostUID = lease.uid
            // An abandoned run's processes may still hold the uid: gc releases it.
            undo.push { [unowned self] in if self.abandoned { self.keepRunDirectory = true } else { lease.release() } }
            return lease
        } catch { throw ExecError(.hostUID, error) }
    }

    /// 6. The run's cgroup with every limit written, before the child exists. Nested
    /// in the invoker's own cgroups where it has them (v1), so limits the invoker is
    /// under still bound the run. Every directory `create` may make is recorded for
    /// gc (which may run in another cgroup and cannot derive them) BEFORE any is
    /// made, so a supervisor killed at any point of set-up leaves none unrecorded.
    private func makeCgroup(_ runDir: RunDirectory) throws -> RunCgroup? {
        guard plan.resources.needsCgroup else { return nil }
        do {
            // Probed, and its directories recorded, by step 3 (makeRunDirectory).
            guard let host = cgroupHost else { throw KernelError(operation: "create run cgroup", subject: "", detail: "no cgroup host probed") }
            let cgroup = try RunCgroup.create(runId: plan.runId, limits: plan.resources.cgroupLimits,
                                              bestEffort: Set(plan.resources.bestEffort), host: host)
            undo.push { [unowned self] in if !cgroup.remove().isEmpty { self.keepRunDirectory = true } }
            notApplied += cgroup.notAppliedDescriptions
            cgroupMade = !cgroup.directories.isEmpty
            return cgroup
        } catch {
            // The cgroup facility throws KernelErrors: the file, errno and data
            // written go into the result's error object as they are.
            throw ExecError(.cgroup, error)
        }
    }

    /// 7. The Landlock ruleset, with every rule on a host path (bind sources by their
    /// fds); the child only restricts itself with it.
    private func makeLandlockRuleset(_ sources: [Int: OpenedSource]) throws -> LandlockRuleset? {
        guard plan.landlock.abi > 0 else { return nil }
        let ruleset: LandlockRuleset
        do { ruleset = try LandlockRuleset(spec: plan.landlock.kernelSpec(sources: sources, mounts: plan.mounts)) } catch {
            throw ExecError(.landlock, error)
        }
        undo.push { ruleset.close() }
        return ruleset
    }

    /// 7. The seccomp BPF (cached by the plan's `rulesDigest`) and, when the filter
    /// can notify, the socketpair the listener comes back over: `parent` is the
    /// supervisor's end, `child` goes to the child.
    private func compileSeccomp() throws -> (SeccompProgram?, notify: (parent: OwnedFD, child: OwnedFD)?) {
        guard plan.seccomp.enabled else { return (nil, nil) }
        let program: SeccompProgram
        do { program = try SeccompCompiler.compile(plan.seccomp.kernelSpec, cacheDir: options.seccompCacheDir) } catch {
            throw ExecError(.seccomp, error)
        }
        seccompProgram = program
        if !program.unresolvedSyscalls.isEmpty {
            // Only names the compiler could drop without allowing more (see
            // SeccompCompiler): listed so the result says exactly what the filter holds.
            notApplied.append("seccomp: left out of allow rules (unknown to this libseccomp): "
                              + program.unresolvedSyscalls.joinedText(separator: ", "))
        }
        guard program.usesNotify else { return (program, nil) }
        let pair: (OwnedFD, OwnedFD)
        do { pair = try FD.socketPair() } catch { throw ExecError(.seccomp, error) }
        undo.push { pair.0.close(); pair.1.close() }
        return (program, (pair.0, pair.1))
    }

    /// 7. Nested: what answers utimensat with explicit times (TimesFence), from the
    /// rw binds' sources opened in step 2.
    private func makeTimesFence(_ sources: [Int: OpenedSource]) {
        guard plan.seccomp.explicitTimesViaSupervisor == true else { return }
        let roots = plan.mounts.indices.filter { plan.mounts[$0].kind == .bind && !plan.mounts[$0].readOnly }
            .compactMap { sources[$0] }
        timesFence = TimesFence(writableRoots: roots, uid: plan.process.uid)
    }

    /// 7. The denial account: the run's leased uid subscribed to the process's audit
    /// reader before the run's first process exists (DenialAccount). Returns the
    /// seccomp filter flags that make the filter's denials logged.
    private func startDenialAccount(ahead: Bool) -> UInt32 {
        // Built ahead: the state read just before the build (and compared again at the
        // take), not a second AUDIT_GET microseconds later.
        let flags = ahead ? account.start(hostUID: hostUID, auditState: { [auditStateAtBuild] in auditStateAtBuild })
                          : account.start(hostUID: hostUID)
        undo.push { [unowned self] in self.account.finish() } // a failed start: unsubscribe
        return flags
    }

    /// Whether a run of `plan` may be cloned inside a network namespace made ahead
    /// (a server's spawner's, or one prepared for its egress ruleset): owned by the
    /// initial user namespace, where a kept capability that acts on the network
    /// namespace (net_bind_service, net_broadcast, net_admin, net_raw; sys_admin: a
    /// sysfs of its own, setns) would not act. Not nested (no namespaces there).
    public static func mayTakeNamespaceMadeAhead(_ plan: RunPlan) -> Bool {
        let networkCapabilities: UInt64 = 1 << 10 | 1 << 11 | 1 << 12 | 1 << 13 | 1 << 21
        return !plan.isNested && plan.capabilities.keepMask & networkCapabilities == 0
    }

    /// 8. The child's spec (`ChildSpec` → flat C `sbx_spec`), every value but the
    /// descriptors and the mounts that carry them (step 9).
    private func childSpec(runDir: RunDirectory, lease: UidLease?, landlock: LandlockRuleset?,
                           seccomp: SeccompProgram?) -> ChildSpec {
        var spec = ChildSpec()
        // The child always gets a network namespace of its own: from clone3 (owned by
        // the run's user namespace when it has one), or one a server's spawner made
        // ahead (below); egress sets it up before the child goes on.
        spec.cloneFlags = ChildSpec.newNamespaces | ChildSpec.newNet
        spec.testStatusBeforeSweep = TestHooks.statusBeforeSweep
        if plan.isNested {
            // No namespaces can be made here: a plain clone that is the command.
            spec.cloneFlags = 0
            spec.nested = true
        } else if let userns = plan.process.userNamespace {
            spec.cloneFlags |= ChildSpec.newUser
            spec.uidMap = userns.uidMap
            spec.gidMap = userns.gidMap
        } else if let lease {
            spec.cloneFlags |= ChildSpec.newUser
            spec.userNamespaceOwner = lease.uid
        }
        spec.loopbackUp = plan.network.mode == .loopback
        // A namespace a server's spawner made ahead is owned by the initial user
        // namespace, where a kept capability that acts on the network namespace
        // (bind below 1024, raw sockets, interface changes; sys_admin: a sysfs of
        // its own, setns) would not act. Egress may take one: the supervisor sets it
        // up from the init's pidfd either way, as root of the initial user
        // namespace, and the command has even less hold on a namespace its own user
        // namespace does not own.
        spec.premadeNetworkNamespaceOK = Executor.mayTakeNamespaceMadeAhead(plan)
        if spec.premadeNetworkNamespaceOK, plan.network.mode == .egress, let prepared = options.preparedNetwork,
           prepared.ruleset == plan.network.nftRuleset {
            spec.preparedNetworkNamespace = prepared.netns.raw
        }
        // A cold run's namespace made meanwhile (`supervise`), lo already up in it
        // when the plan asks: the init could not (its user namespace does not own it).
        if spec.premadeNetworkNamespaceOK, spec.cloneFlags & ChildSpec.newNet != 0, let ahead = networkNamespaceAhead,
           ahead.loopbackUp == spec.loopbackUp, let fd = ahead.take() {
            spec.joinNetworkNamespace = fd
            spec.loopbackUp = false
        }
        spec.staging = runDir.staging
        spec.hostname = plan.process.hostname
        spec.rlimits = plan.process.rlimits.map { ($0.resource, $0.soft, $0.hard) }
        spec.uid = plan.process.uid
        spec.gid = plan.process.gid
        spec.newSession = plan.process.newSession
        spec.workdir = plan.process.workdir
        spec.argv = plan.process.argv
        spec.env = plan.process.env
        spec.searchPath = plan.process.searchPath
        spec.stdio = options.stdio
        spec.capKeep = plan.capabilities.keepMask
        spec.landlockInner = landlock?.innerRules ?? []
        if let seccomp {
            spec.seccompFilter = seccomp.filter
            spec.seccompFence = seccomp.fence
            if seccomp.usesNotify { spec.seccompFlags |= 1 << 3 } // SECCOMP_FILTER_FLAG_NEW_LISTENER
        }
        return spec
    }

    /// 9. Signals: blocked on this thread and read from a signalfd, so none is lost
    /// between clone and the event loop; the child resets its mask.
    private func blockSignals() throws -> SignalChannel? {
        guard options.forwardSignals else { return nil }
        let channel: SignalChannel
        do { channel = try SignalChannel(Signal.forwarded) } catch { throw ExecError(.signals, error, label: "") }
        undo.push { channel.close() }
        return channel
    }

    /// 9. The child's descriptors, as the plain numbers the C child takes: read from
    /// their owners now, and the parent's copies closed by the same owners right
    /// after clone3 (and by the undo entries if it fails, once either way). The
    /// plan's mount steps are translated in order (a bind tree by its fd, a `file`
    /// step with its text).
    private func giveDescriptors(to spec: inout ChildSpec, sources: [Int: OpenedSource], trees: [Int: OwnedFD],
                                 cgroup: RunCgroup?, landlock: LandlockRuleset?,
                                 notify: (parent: OwnedFD, child: OwnedFD)?, pipes: ChildPipes,
                                 executable: BinaryCheck.Opened?) throws {
        spec.mounts = try plan.mounts.enumerated().map { i, m in
            if let tree = trees[i] { return .moveFD(fd: tree.raw, destination: m.destination) }
            return try Executor.childMount(m, source: sources[i], network: plan.network)
        }
        guard spec.mounts.count <= ChildSpec.maxMounts else {
            throw ExecError(kind: .plan, step: SetupStep.childSpec.rawValue, subject: "filesystem",
                            message: "filesystem: \(spec.mounts.count) mounts; at most \(ChildSpec.maxMounts) are supported")
        }
        spec.cgroupFD = cgroup?.cloneIntoFD ?? -1
        spec.cgroupJoinFDs = cgroup?.joinFDs ?? []
        spec.landlockFD = landlock?.fd ?? -1
        spec.notifySocket = notify?.child.raw ?? -1
        spec.syncFD = pipes.sync.read.raw
        spec.errorFD = pipes.errors.write.raw
        spec.statusFD = pipes.status.write.raw
        if var e = executable, !TestHooks.execByPath {
            try e.confirm()
            TestHooks.pauseBeforeClone() // debug builds only: the child's check is left
            spec.checkedExec = Executor.checkedExec(e)
        }
    }

    /// The child's form of a confirmed `[binary]` check: the file to exec (a script's
    /// checked interpreter), its stamp and fence, and the script beside it.
    static func checkedExec(_ e: BinaryCheck.Opened) -> CheckedExec {
        let exec = e.interpreter ?? e.command
        return CheckedExec(fd: exec.fd, stamp: exec.stamp, leased: exec.fence == .lease, view: e.view, argv: e.argv,
                           script: e.interpreter == nil ? nil : (e.command.fd, e.command.stamp))
    }

    /// 10. clone3. From here the child exists; its pidfd is the only handle to it.
    /// The undo kills it (unless reaped) and closes the pidfd.
    private func spawn(_ spec: ChildSpec) throws -> SandboxInit {
        let child: (pid: Int32, pidfd: Int32)
        do { child = try Child.spawn(spec) } catch {
            if plan.process.userNamespace != nil, error.isUserNamespaceDenied {
                let why = HostProbe.userNamespaceBlocker().map { " (\($0))" } ?? ""
                throw ExecError(kind: .setup, step: SetupStep.clone.rawValue, subject: error.subject, errno: error.errno,
                                message: "user namespaces are not available to this user\(why); rootless runs need them — enable unprivileged user namespaces or run as root")
            }
            throw ExecError(.clone, error, label: "")
        }
        spawned = true
        let sandboxInit = SandboxInit(pid: child.pid, pidfd: Pidfd(fd: child.pidfd))
        undo.push { [handle, unowned self] in
            handle.ended()
            if !sandboxInit.reaped {
                sandboxInit.pidfd.signal(handle.end)
                // Bounded: after the status (``loop``) the init is only exiting, but
                // its namespace's end waits for every process in it, one a host
                // process put there by setns too (red team, session 42: stuck closing
                // a file of a FUSE daemon that never answers, it held a server's
                // teardown for ever). Past the bound the run is left for `gc`.
                if !self.abandoned {
                    if sandboxInit.pidfd.waitExited(timeoutMs: Int32(Self.abandonAfterMs)) {
                        _ = try? sandboxInit.pidfd.wait()
                    } else {
                        self.abandoned = true
                    }
                }
            }
            sandboxInit.pidfd.close()
        }
        handle.started(sandboxInit.pidfd)
        return sandboxInit
    }

    /// 11. The child waits for the sync byte; until then it has done nothing. With a
    /// leased uid, its user namespace's maps (only a privileged writer in the parent
    /// namespace may map another uid than its own).
    private func writeIDMaps(_ child: SandboxInit, lease: UidLease?) throws {
        guard let lease else { return }
        let maps = (uid: "\(plan.process.uid) \(lease.uid) 1\n", gid: "\(plan.process.gid) \(lease.uid) 1\n")
        do { try MountSources.writeIDMaps(pid: child.pid, uidMap: maps.uid, gidMap: maps.gid) } catch {
            throw ExecError(.idMaps, error, label: "host uid")
        }
    }

    /// 11. Namespaced: the init's `oom_score_adj` 1000 before the sync byte, so the
    /// init and everything of the run (which inherits it) are the OOM killer's first
    /// choice, never this supervisor, which must live to report (red team 5, B: a
    /// command of small processes made the OOM killer take the supervisor first). The
    /// init's death ends the PID namespace, so the run ends whole. Written here, not by
    /// the init: one that took a leased uid is not dumpable, and its /proc files are
    /// root's. Nested, the payload writes its own (the reaper keeps 0 to sweep).
    private func preferRunForOOM(_ child: SandboxInit) throws {
        guard plan.isolation?.mode != .nested else { return }
        // The init is our unreaped child: its pid cannot name another process yet.
        do { try MountSources.writeOOMScoreAdj(pid: child.pid, 1000) } catch {
            throw ExecError(.oomScore, error)
        }
    }

    /// 11. Namespaced: a reference to the init's mount namespace, let go at teardown.
    /// The last reference's release unmounts the run's whole tree — an expedited RCU
    /// grace period, then every superblock of the run (its /proc, tmpfs, /dev) shut
    /// down — and when the init's exit makes it, the kernel does it before it tells
    /// the supervisor the init has ended: the result waited for it. Held here, the
    /// init's exit only drops a reference; the unmounting happens at teardown, after
    /// the result is out (a server's reply does not wait for it). No process is in the
    /// namespace by then: the init's PID namespace took every process with it. Without
    /// the ioctl (older kernels) the run only loses the saving.
    private func holdMountNamespace(_ child: SandboxInit) {
        guard !plan.isNested, let ns = try? MountSources.mountNamespace(pidfd: child.pidfd.fd) else { return }
        // Without a server (its reply does not wait for teardown), the release runs on
        // a thread of its own while the rest of the teardown (the init's end, cgroups,
        // the run directory) goes on; `teardown` waits for it.
        undo.push { [unowned self] in
            if Child.spawnerRunning { ns.close() } else { mountNamespaceRelease = BackgroundClose(ns) }
        }
    }

    /// 11. Egress: the child's own network namespace (from its pidfd) joined to the
    /// host bridge, its nft ruleset loaded before any interface is up.
    private func setUpNetwork(_ child: SandboxInit, runDir: RunDirectory) throws -> EgressNetwork? {
        guard plan.network.mode == .egress else { return nil }
        guard let ruleset = plan.network.nftRuleset else {
            throw ExecError(kind: .plan, step: SetupStep.network.rawValue, message: "network: egress plan without a ruleset")
        }
        do {
            let netns = try MountSources.networkNamespace(pidfd: child.pidfd.fd)
            defer { netns.close() }
            var config = EgressConfig(runId: plan.runId, runDir: runDir.path, nftRuleset: ruleset)
            config.netnsFD = netns.raw
            config.prepared = options.preparedNetwork
            config.stub = plan.network.stub.map(DNSStubConfig.init(plan:))
            let network = try EgressNetwork.setUp(config)
            undo.push { network.tearDown() }
            return network
        } catch { throw ExecError(.network, error) }
    }

    /// 11. One byte on the sync pipe: the child may go on (a child already gone,
    /// killed before it read this, is seen at waitid). While it builds its root: the
    /// plan's digest (if the caller left it for now), the record (`running`) and the
    /// plan (`plan.json`) in the run directory.
    private func letChildGoOn(_ pipes: ChildPipes, runDir: RunDirectory, recordRun: Bool) {
        _ = FD.writeAllWithoutSIGPIPE(pipes.sync.write.raw, [1])
        pipes.sync.write.close()
        if recordRun { recordRunning(runDir) }
    }

    /// The plan's digest (if the caller left it for now), the record (`running`, with
    /// the command) and the plan (`plan.json`) in the run directory.
    private func recordRunning(_ runDir: RunDirectory, startedNow: Bool = false) {
        // Encoding the plan here overlaps with the child building its root instead of
        // delaying it.
        var json: [UInt8]?
        if plan.digest == nil, let (digest, bytes) = try? PlanDigest.digestAndJSON(of: plan) {
            plan.digest = digest; json = bytes
        }
        try? updateRecord(runDir) { [plan] in
            $0.state = .running; $0.planDigest = plan.digest ?? ""; $0.argv = RunRecord.cut(plan.process.argv)
            // Built ahead: the run starts with its command, not with its build.
            if startedNow { $0.started = Clock.unixSeconds() }
        }
        let bytes = json ?? plan.canonicalJSON()
        try? runDir.write("plan.json", String(decoding: bytes, as: UTF8.self) + "\n")
    }

    /// Changes the run record and writes it (atomically) to the run directory.
    private func updateRecord(_ runDir: RunDirectory, _ change: (inout RunRecord) -> Void) throws(KernelError) {
        guard var r = record else { return }
        change(&r)
        record = r
        try r.write(to: runDir)
    }

    /// The exit status `sandbox exec` returns, and the signal that ended the command:
    /// from the payload's wait status (in the report the init writes on the status
    /// pipe), else from the init's own end (`waitid`'s code and status).
    static func exitStatus(payload: ReaperReport?, initExited: Bool, initStatus: Int32) -> (code: Int32, signal: Int32?) {
        if let payload {
            let ws = payload.waitStatus
            if ws & 0x7f == 0 { return ((ws >> 8) & 0xff, nil) }
            return (128 + (ws & 0x7f), ws & 0x7f)
        }
        // The init exited without a payload status: it failed before forking.
        if initExited { return (initStatus == 0 ? 125 : initStatus, nil) }
        return (128 + initStatus, initStatus)
    }

    /// How supervision ended: the init's exit, or (``loop``'s `status`) the payload's
    /// status the init wrote once the rest of the run was gone, before its own exit.
    private struct Ended {
        var timedOut: Bool
        var exit: Pidfd.Exit?
        var status: ReaperReport?
    }

    /// 12. Until the run is over: the init's exit (pidfd), or, when `status` is given,
    /// the reaper's report (the payload's status, the run's CPU time) on it. poll() on the pidfd, the signalfd,
    /// the seccomp listener and the status pipe; the timeout sends SIGTERM, then
    /// SIGKILL after the grace period (which takes down the whole pid namespace, as
    /// the init is its PID 1; nested, `Signal.endRun`, on which the reaper kills the
    /// command and every process it left).
    private func loop(pidfd: Pidfd, signals: SignalChannel?, notifySocket: OwnedFD?, status: OwnedFD?) throws -> Ended {
        var timedOut = false
        var statusFD = status?.raw ?? -1
        if statusFD >= 0 { FD.setNonBlocking(statusFD) }
        var termDeadline: UInt64? = plan.process.timeoutMs.map { Clock.monotonicMs() + $0 }
        var killDeadline: UInt64? = nil
        var notifier: SeccompNotifier? = nil
        defer { notifier?.close() }
        // When the run was sent its end (by this loop, or by a cancel from another
        // thread, which does not wake the poll: looked at every second).
        var endSentAt: UInt64? = nil

        while true {
            // Fixed slots: 0 pidfd, 1 signals, 2 notify socket (until the listener
            // arrives), 3 listener, 4 the status pipe.
            let fds = [pidfd.fd, signals?.fd ?? -1, notifySocket?.raw ?? -1, notifier?.fd ?? -1, statusFD]
            let now = Clock.monotonicMs()
            if endSentAt == nil, handle.isCancelled { endSentAt = now }
            if let sent = endSentAt, now >= sent + Self.abandonAfterMs {
                abandoned = true
                throw ExecError(kind: .child, step: "reaper", subject: "uninterruptible",
                                message: "the run did not end \(Self.abandonAfterMs / 1000) s after it was killed: a process of it sleeps uninterruptibly in the kernel (for example closing a file of a FUSE filesystem whose daemon does not answer); its uid lease, cgroup and run directory are left for `sandbox gc`")
            }
            var wait: Int32 = 1000
            if let d = killDeadline ?? termDeadline { wait = min(wait, Int32(clamping: d > now ? d - now : 0)) }
            let events: [PollEvents]
            do { events = try Poll.wait(fds, timeoutMs: wait) } catch { throw ExecError(.supervise, error, label: "") }

            if !events[0].isEmpty { return Ended(timedOut: timedOut, exit: try waitExit(pidfd)) }
            if statusFD >= 0, !events[4].isEmpty {
                // Written in one piece (below PIPE_BUF); anything else (EOF: the init
                // is gone without a status) is the pidfd's to tell.
                if let report = ReaperReport(FD.readAll(statusFD, max: ReaperReport.size)) {
                    return Ended(timedOut: timedOut, exit: nil, status: report)
                }
                statusFD = -1
            }
            if let signals, !events[1].isEmpty { for sig in signals.pending() { pidfd.signal(sig) } }
            if let socket = notifySocket, socket.isOpen, !events[2].isEmpty {
                if let fd = FD.receiveFD(socket) { notifier = SeccompNotifier(listener: fd, arch: plan.seccomp.arch) }
                socket.close() // one listener per run; the undo entry finds it closed
            }
            if let n = notifier, !events[3].isEmpty {
                let kill = plan.seccomp.onViolation == .kill
                let answer: SeccompNotifier.Answer = kill ? .none : plan.seccomp.onViolation == .log ? .allow : .deny
                // Explicit file times first (nested): answered by the TimesFence, and
                // accounted (as a built-in refusal) only when it refused them.
                if events[3].contains(.readable), let (v, given) = n.handleOne(decide: { v in
                    let at = Clock.realtimeMs() - startedWallMs
                    if let times = timesFence?.answer(v, notifier: n) {
                        if times == .deny { account.refusedTimes(v, atMs: at) }
                        return times
                    }
                    return account.accountConnect(v, atMs: at) { n.readCaller(v, address: $0, length: $1) }
                        ?? account.refuseBuiltin(v, atMs: at) ?? answer
                }), timesFence?.handles(v) != true, !account.isAccountedConnect(v), !account.isBuiltin(v) {
                    record(v)
                    if given == .none && killedFor == nil {
                        // The call stays blocked in the kernel; the sandbox dies first.
                        killedFor = v.syscall
                        pidfd.signal(handle.end)
                        endSentAt = endSentAt ?? Clock.monotonicMs()
                    }
                } else if events[3].contains(.hangup) {
                    n.close(); notifier = nil
                }
            }

            let t = Clock.monotonicMs()
            if let d = killDeadline, t >= d {
                pidfd.signal(handle.end)
                endSentAt = endSentAt ?? t
                killDeadline = nil
                termDeadline = nil
            } else if let d = termDeadline, t >= d, killDeadline == nil {
                timedOut = true
                pidfd.signal(Signal.term)
                killDeadline = t + plan.process.graceMs
                termDeadline = nil
            }
        }
    }

    private func waitExit(_ pidfd: Pidfd) throws -> Pidfd.Exit {
        do { return try pidfd.wait() } catch { throw ExecError(.supervise, error, label: "") }
    }

    private func record(_ v: SeccompViolation) {
        account.record(v, atMs: Clock.realtimeMs() - startedWallMs)
    }

    // MARK: - Checks before anything is created

    /// 2b. `[binary]`: the command found as the sandbox would find it, opened once
    /// from its bind source, every rule run on that descriptor (BinaryCheck.swift);
    /// the child `execveat`s it. Refused: 126 (not found: 127), nothing started.
    private func checkBinary(_ sources: [Int: OpenedSource]) throws -> BinaryCheck.Opened? {
        guard plan.binary.isActive else { return nil }
        var check = BinaryCheck(plan: plan, sources: sources)
        if plan.binary.requireRootOwned {
            check.writable = try BinaryCheck.writablePlaces(plan: plan, sources: sources, runBase: options.runBase)
        }
        let opened = try check.run(record: &binary)
        undo.push { opened.closeFiles() }
        // Debug builds only: a test swaps or rewrites the file here.
        TestHooks.pauseAfterBinaryCheck()
        return opened
    }

    /// `run_start`, before anything of the run exists: a run the policy wants audited
    /// does not start unless its start is on record (RunAudit.swift).
    private func startAudit() throws {
        guard let path = plan.audit.path else { return }
        if plan.digest == nil { plan.digest = try? PlanDigest.digest(of: plan) }
        do {
            let log = try AuditLog.open(path: path, keyFile: plan.audit.keyFile, invoker: plan.host.invokerUID)
            try log.start(RunAudit.start(plan, binary: binary))
            audit = log
        } catch {
            throw ExecError(kind: .setup, step: SetupStep.audit.rawValue, subject: (error as any Error as? AuditError)?.subject,
                            message: "\(error); the command was not started")
        }
    }

    /// `run_end` (and the run's denials) once the run is over and before its teardown (the
    /// record describes the run, not its cleanup), whatever the outcome. A run
    /// whose end cannot be recorded reports 125: the account the caller asked for is
    /// incomplete.
    private func endAudit(_ result: RunResult) -> RunResult {
        guard let log = audit else { return result }
        defer { log.close(); audit = nil }
        do {
            try log.end(runId: result.runId, exitCode: result.exitCode, result: result, denials: RunAudit.denials(result))
            return result
        } catch {
            var r = result
            r.error = RunResult.Failure(ExecError(kind: .setup, step: SetupStep.audit.rawValue,
                                                  subject: (error as any Error as? AuditError)?.subject,
                                                  message: "\(error); the command ran and exited \(result.exitCode), but its end is not on record"))
            r.exitCode = 125
            return r
        }
    }

    /// 2. Opens every bind source (by index in `plan.mounts`) once, before anything is
    /// created (the child and Landlock use these fds, never the paths again), with no symlink on its
    /// path — sources at or under the working directory from the supervisor's own cwd
    /// fd — and checks each is the object the planner saw. An optional source that is
    /// absent has no entry.
    private func openBindSources() throws -> [Int: OpenedSource] {
        var opened: [Int: OpenedSource] = [:]
        var cwd: OpenedSource?
        defer { cwd?.close() }
        do {
            for (i, step) in plan.mounts.enumerated() where step.kind == .bind {
                let location: BindSourceLocation
                if let relative = step.cwdRelative {
                    if cwd == nil { cwd = try MountSources.openWorkingDirectory() }
                    location = .beneath(directoryFD: cwd!.fd, relative: relative)
                } else {
                    location = .absolute(step.source ?? "")
                }
                let source: OpenedSource?
                do { source = try MountSources.open(location, optional: step.optional) } catch {
                    throw ExecError(kind: .setup, step: SetupStep.bindSources.rawValue, subject: step.source ?? error.subject,
                                    errno: error.errno, message: "\(step.summary): \(MountSources.explain(error))")
                }
                guard let source else {
                    // An optional source the plan found (and recorded) is gone: the
                    // sandbox would quietly lack a bind its plan, digest and audit
                    // record list (red team, session 42: a command of the run before
                    // renamed it away, and back before the next request's plan).
                    if let want = step.sourceIdentity {
                        throw ExecError(.bindSources, subject: step.source, message: "\(step.summary): the source changed after the plan was made (it was \(want), it is now missing); refused: a concurrent run may have renamed or removed it")
                    }
                    continue
                }
                opened[i] = source
                if let want = step.sourceIdentity, want.device != source.device || want.inode != source.inode {
                    throw ExecError(.bindSources, subject: step.source, message: "\(step.summary): the source changed after the plan was made (it was \(want), it is now device \(source.device) inode \(source.inode)); refused: a concurrent run may have renamed or swapped it")
                }
            }
        } catch {
            for s in opened.values { s.close() }
            throw error
        }
        undo.push { for s in opened.values { s.close() } }
        return opened
    }

    /// After the run: entries named in `plan.reportCreated` created beneath each
    /// writable directory bind, walked from the supervisor's own source fds. A walk cut
    /// short by its bound is said in `notApplied`.
    private func scanCreated(sources: [Int: OpenedSource], since: (sec: Int64, nsec: UInt32))
        -> (paths: [String], total: Int, incomplete: Bool) {
        guard !plan.reportCreated.isEmpty else { return ([], 0, false) }
        var found: [String] = []
        var total = 0
        var incomplete = false
        for (i, step) in plan.mounts.enumerated() where step.kind == .bind && !step.readOnly {
            guard let source = sources[i], source.isDirectory else { continue }
            for name in plan.reportCreated {
                let r = CreatedEntryScan.scan(rootFD: source.fd, rootPath: step.destination, name: name, since: since)
                total += r.total
                found += r.created.prefix(CreatedEntryScan.maxReported - found.count)
                if !r.complete {
                    incomplete = true
                    notApplied.append("filesystem: the scan for \(name) created under \(step.destination) is incomplete (it met its bound of 50 000 directories or depth 64, another filesystem, or a directory it could not open or examine, after \(r.entriesSeen) entries); what lies there is not reported")
                }
            }
        }
        return (found.sorted(), total, incomplete)
    }

    /// 5. A root invoker's binds as detached trees made from the checked source fds
    /// (index in `plan.mounts` → mount fd). With a leased uid, writable ones are
    /// idmapped: the invoker's uid and gid on disk are the run's uid in the mount.
    /// Rootless runs have none (the child clones from paths it checks itself).
    private func prepareTrees(_ sources: [Int: OpenedSource], lease: UidLease?) throws -> [Int: OwnedFD] {
        guard plan.process.userNamespace == nil, !plan.isNested else { return [:] }
        var trees: [Int: OwnedFD] = [:]
        var idmap: OwnedFD?
        defer { idmap?.close() }
        do {
            for (i, source) in sources.sorted(by: { $0.key < $1.key }) {
                let step = plan.mounts[i]
                var userns: Int32 = -1
                if let lease, !step.readOnly {
                    if idmap == nil {
                        do {
                            idmap = try MountSources.makeUserNamespace(
                                uidMap: "\(plan.host.invokerUID) \(lease.uid) 1\n", gidMap: "\(plan.host.invokerGID) \(lease.uid) 1\n")
                        } catch { throw ExecError(.bindTrees, error, label: "host uid") }
                    }
                    userns = idmap?.raw ?? -1
                }
                do { trees[i] = try MountSources.prepareTree(source, readOnly: step.readOnly, userNamespaceFD: userns) } catch {
                    if error.operation == "idmap" {
                        throw ExecError(kind: .setup, step: SetupStep.bindTrees.rawValue, subject: step.source, errno: error.errno, message: "\(step.summary): \(error.errno?.message ?? "\(error)"): this filesystem cannot be idmapped, so the run's own uid could not write there as you; set process.host_uid = \"invoker\" to run as your own uid (see `sandbox doctor`)")
                    }
                    throw ExecError(.bindTrees, error, label: step.summary, subject: step.source)
                }
            }
        } catch {
            for fd in trees.values { fd.close() }
            throw error
        }
        undo.push { for fd in trees.values { fd.close() } }
        return trees
    }

    // MARK: - Results

    /// The child's report `{step, index, errno}` as an error: kind `child` (or `exec`
    /// for execve) with the child's step name, and the plan's object at `index` as
    /// the subject (the mount, the rlimit) where the step has one.
    private func describe(_ f: ChildFailure) -> ExecError {
        let errno = Errno(f.errno)
        let err = errno.message
        func child(_ subject: String?, _ message: String, step: String = f.stepName) -> ExecError {
            ExecError(kind: .child, step: step, subject: subject, errno: errno, message: message)
        }
        if f.isExecutableChanged {
            let path = f.index == 1 ? binary?.path : binary?.interpreter?.path ?? binary?.path
            return ExecError(kind: .exec, step: f.stepName, subject: path, errno: errno,
                             message: "[binary] \(path ?? plan.process.argv[0]) was written to after its check (its ctime or size changed, or its read lease was broken); not run",
                             exitCode: 126)
        }
        if f.isExec {
            let code: Int32 = f.isNotFound ? 127 : 126
            return ExecError(kind: .exec, step: f.stepName, subject: plan.process.argv[0], errno: errno,
                             message: "\(plan.process.argv[0]): \(err)", exitCode: code)
        }

        if f.isChdir {
            return child(plan.process.workdir, "chdir \(plan.process.workdir): \(err)")
        }
        if f.isSecondListener {
            // Never run without the listener: what it answers would be left open.
            var needs: [String] = []
            if plan.seccomp.explicitTimesViaSupervisor == true { needs.append("explicit file times (nested_without = [\"timestamps\"] accepts that gap)") }
            if plan.seccomp.rules.contains(where: { $0.origin == SeccompPlan.connectAccountOrigin }) { needs.append("the connect account (network none or loopback)") }
            if plan.seccomp.onViolation != .errno { needs.append("on_violation = \"\(plan.seccomp.onViolation.rawValue)\"") }
            return child("seccomp", "load the seccomp filter: \(err): a seccomp filter above this process (another sandbox's, a runtime's) already has a user-notification listener, and the kernel allows one per filter chain; this run's filter needs its own for \(needs.joinedText(separator: ", ")). Not run")
        }
        if f.isRlimit, f.index >= 0, Int(f.index) < plan.process.rlimits.count {
            let l = plan.process.rlimits[Int(f.index)]
            return child(l.name, "setrlimit \(l.name) = \(l.soft == UInt64.max ? "unlimited" : String(l.soft)): \(err)")
        }
        if f.isMount, f.index >= 0, Int(f.index) < plan.mounts.count {
            // The mount steps have no name of their own in the child's list.
            let m = plan.mounts[Int(f.index)]
            func mount(_ message: String) -> ExecError { child(m.destination, message, step: "mount") }
            if f.isSymlinkLoop, m.kind == .protect {
                return mount("\(m.summary): is a symlink; protect covers real files and directories only (a link could be replaced by a writable one)")
            }
            if f.isSourceChanged {
                return mount("\(m.summary): the source changed between the supervisor's check and the mount; refused: a concurrent run may have renamed or swapped it")
            }
            if f.isSymlinkLoop, m.kind == .bind {
                return mount("\(m.summary): a symlink was swapped onto its path after the supervisor's check; refused")
            }
            return mount("\(m.summary): \(err)")
        }
        return child(nil, "\(f.stepName): \(err)")
    }

    /// The run's one CPU figure (see `RunResult.cpuUserMs`): the cgroup's account
    /// when it has both times, which counts every task of the run; else the rusage of
    /// the reaped tree, a lower bound (what was reaped without a wait is not in it);
    /// nil source when nothing ran.
    static func cpuTime(cgroup: CgroupStats?, rusage: (userMs: UInt64, systemMs: UInt64)?)
        -> (userMs: UInt64, systemMs: UInt64, source: RunResult.CPUSource?) {
        if let user = cgroup?.cpuUserUs, let system = cgroup?.cpuSystemUs { return (user / 1000, system / 1000, .cgroup) }
        if let rusage { return (rusage.userMs, rusage.systemMs, .rusage) }
        return (0, 0, nil)
    }

    private func makeResult(exitCode: Int32, signal: Int32?, timedOut: Bool, started: UInt64,
                            exit: Pidfd.Exit?, error: ExecError?, cgroupStats: CgroupStats?,
                            reaper: ReaperReport? = nil) -> RunResult {
        // The reaper's report when it wrote one (what it reaped once it had killed
        // the rest of the run), else the init's own end (what it reaped).
        let rusage = reaper.map { ($0.cpuUserUs / 1000, $0.cpuSystemUs / 1000) } ?? exit.map { ($0.cpuUserMs, $0.cpuSystemMs) }
        let cpu = Executor.cpuTime(cgroup: cgroupStats, rusage: rusage)
        var result = RunResult(
            runId: plan.runId, policy: plan.policy.name, planDigest: plan.digest ?? "",
            argv: plan.process.argv, exitCode: exitCode, signal: signal, timedOut: timedOut,
            wallMs: Clock.monotonicMs() - started,
            cpuUserMs: cpu.userMs, cpuSystemMs: cpu.systemMs,
            error: error.map(RunResult.Failure.init), notApplied: notApplied,
            fences: !spawned ? .none : RunResult.Fences(
                landlockABI: plan.landlock.abi, seccompRules: plan.seccomp.enabled ? plan.seccomp.rules.count : 0,
                seccompInstructions: seccompProgram?.instructionCount ?? 0,
                seccompAction: plan.seccomp.enabled ? plan.seccomp.onViolation.rawValue : nil,
                seccompCacheHit: seccompProgram?.cacheHit, capabilitiesKept: plan.capabilities.keep,
                noNewPrivs: true),
            violations: account.violations.sorted,
            egressDenied: egressDenied.map { RunResult.EgressDenial(daddr: $0.daddr, dport: $0.dport, proto: $0.proto, packets: $0.packets, reason: $0.reason) },
            resources: cgroupStats.map {
                RunResult.ResourceUsage(oomKilled: $0.oomKilled, pidsLimitHit: $0.pidsLimitHit,
                                        memoryPeakBytes: $0.memoryPeakBytes, throttledUs: $0.throttledUs)
            })
        result.cpuSource = cpu.source
        result.isolation = plan.isolation.map { spawned ? $0.atRunTime(cgroup: cgroupMade) : $0 }
        result.hostUID = spawned ? hostUID : nil
        result.binary = binary
        result.violationsTotal = account.violations.total
        result.violationsDropped = account.violations.dropped
        if spawned {
            result.denials = account.denials(egress: egressDenied, dns: plan.network.stub != nil ? dnsRefusals.kinds : [],
                                             serverNames: plan.network.stub != nil ? sniRefusals.kinds : [],
                                             startedWallMs: startedWallMs)
            result.notApplied += account.notObserved
        }
        if spawned, plan.network.stub != nil {
            result.dnsDenied = dnsRefusals.kinds.map(RunResult.DNSDenial.init)
            result.dnsDeniedDropped = dnsRefusals.dropped
            if plan.network.stub?.names.contains(where: { $0.proto == "tcp" }) == true {
                result.sniDenied = sniRefusals.kinds.map(RunResult.SNIDenial.init)
                result.sniDeniedDropped = sniRefusals.dropped
            }
        }
        result.createdEntries = createdEntries.paths
        result.createdEntriesTotal = createdEntries.total
        result.createdEntriesIncomplete = createdEntries.incomplete
        return result
    }

    /// The child's form of a plan step: a bind takes the source fd opened for it (-1:
    /// an optional source that is absent), a `.file` step the plan's text.
    static func childMount(_ m: MountStep, source: OpenedSource?, network: NetworkPlan) throws -> ChildSpec.Mount {
        switch m.kind {
        case .bind:
            // The child resolves the same location again in its own mount namespace and
            // must find the object opened here (a fd cannot be cloned across namespaces).
            let location = source == nil ? nil : m.cwdRelative ?? m.source
            return .bind(source: location, beneathCwd: m.cwdRelative != nil,
                         identity: (source?.device ?? 0, source?.inode ?? 0),
                         destination: m.destination, readOnly: m.readOnly)
        case .tmpfs: return .tmpfs(destination: m.destination, options: m.options ?? "mode=0755", readOnly: m.readOnly)
        case .proc: return .proc(destination: m.destination)
        case .dev: return .dev(destination: m.destination)
        case .symlink: return .symlink(target: m.source ?? "", destination: m.destination)
        case .protect: return .protect(destination: m.destination, optional: m.optional)
        case .pin: return .pin(destination: m.destination)
        case .mask: return .mask(destination: m.destination)
        case .file:
            guard let file = m.inMemoryFile, let text = network.text(of: file) else {
                throw ExecError(kind: .plan, step: SetupStep.childSpec.rawValue, subject: m.destination,
                                message: "\(m.summary): the plan has no text for it")
            }
            return .file(content: text, destination: m.destination)
        }
    }
}

// The kernel layer has its own spec types (it does not depend on the planner); these
// are the one place plan values are translated into them.
extension LandlockPlan {
    /// Rules on bind sources use the fds the supervisor opened for the mounts (the
    /// inode that is mounted is the one the rule is on); a rule whose optional source
    /// was absent is left out.
    func kernelSpec(sources: [Int: OpenedSource], mounts: [MountStep]) -> LandlockSpec {
        var byDestination: [String: Int] = [:]
        for (i, m) in mounts.enumerated() where m.kind == .bind { byDestination[m.destination] = i }
        let pathRules = rules.compactMap { r -> LandlockSpec.PathRule? in
            guard r.hostPath != nil else { return LandlockSpec.PathRule(path: r.path, hostPath: nil, access: r.access) }
            // A host path that is no bind's (a nested run's device nodes): opened by path.
            guard let i = byDestination[r.path] else { return LandlockSpec.PathRule(path: r.path, hostPath: r.hostPath, access: r.access) }
            guard let source = sources[i] else { return nil }
            return LandlockSpec.PathRule(path: r.path, hostPath: r.hostPath, hostFD: source.fd, access: r.access)
        }
        return LandlockSpec(abi: abi, handledAccessFS: handledAccessFS, rules: pathRules,
                            connectTCP: connectTCP, bindTCP: bindTCP, scopes: scopes)
    }
}

extension SeccompPlan {
    var kernelSpec: SeccompSpec {
        var spec = SeccompSpec(arch: arch, defaultAction: defaultAction, defaultErrno: defaultErrno,
                    rules: rules.map { r in
                        SeccompSpec.Rule(syscalls: r.syscalls, action: r.action, errno: r.errno,
                                         args: r.args.map { SeccompSpec.Arg(index: $0.index, op: $0.op, value: $0.value, valueTwo: $0.valueTwo) },
                                         origin: r.origin)
                    },
                    socketFamilies: socketFamilies, rulesDigest: rulesDigest)
        spec.socketFamiliesViaSupervisor = onViolation != .errno // covered by rulesDigest
        spec.syscallNumbers = syscallNumbers.mapValues { Int32($0) }
        spec.refusedIoctls = refusedIoctls?.map(\.number) ?? []
        spec.namespaceFlags = namespaceFence == true ? SeccompPlan.cloneNamespaceMask : 0
        return spec
    }
}

extension ResourcePlan {
    var cgroupLimits: CgroupLimits {
        CgroupLimits(memoryBytes: memoryBytes, swapBytes: swapBytes, pids: pids, cpuQuotaUs: cpuQuotaUs,
                     cpuPeriodUs: cpuPeriodUs, ioWeight: ioWeight)
    }
}

/// The part of an ``Executor`` other threads may use while it runs (`Sendable`):
/// signal the sandbox. The run's thread publishes the child's pidfd after `clone3`
/// and withdraws it at teardown; sending goes through the pidfd's owner, so it never
/// races its `close`.
public final class RunHandle: Sendable {
    private struct State {
        var claimed = false
        var cancelled = false
        var pidfd: Pidfd?
    }
    private let state = Mutex(State())
    /// What ends the run: SIGKILL to the init, whose end takes down its PID namespace;
    /// nested, `Signal.endRun`, on which the reaper ends every process of the run.
    let end: Int32

    init(end: Int32) { self.end = end }

    /// Sends `sig` to the sandbox init (which forwards it to the command). False when
    /// there is no child: before `clone3`, or once the run has ended.
    @discardableResult
    public func signal(_ sig: Int32) -> Bool {
        state.withLock { $0.pidfd?.signal(sig) ?? false }
    }

    /// Ends the run, whenever it is called: SIGKILL to the sandbox init now, or, if
    /// the child does not exist yet, the moment `clone3` made it (the end of the init
    /// ends every process of the sandbox; teardown then runs as for any run).
    public func cancel() {
        state.withLock { s in
            s.cancelled = true
            s.pidfd?.signal(end)
        }
    }

    /// Whether ``cancel()`` was called.
    public var isCancelled: Bool { state.withLock { $0.cancelled } }

    /// Whether the sandbox's child exists now (between `clone3` and teardown).
    public var isRunning: Bool { state.withLock { $0.pidfd != nil } }

    /// The first call wins: an Executor runs once.
    func claim() -> Bool {
        state.withLock { s in
            if s.claimed { return false }
            s.claimed = true
            return true
        }
    }

    func started(_ pidfd: Pidfd) {
        state.withLock { s in
            s.pidfd = pidfd
            if s.cancelled { pidfd.signal(end) }
        }
    }
    func ended() { state.withLock { $0.pidfd = nil } }
}

/// What steps 3–11 made (``Executor``'s `build`): the sandbox whose init runs, or
/// (built ahead) waits for its command on `command`.
private struct Sandbox {
    let sources: [Int: OpenedSource]
    let runDir: RunDirectory
    let child: SandboxInit
    let pipes: ChildPipes
    let signals: SignalChannel?
    let notify: (parent: OwnedFD, child: OwnedFD)?
    let cgroup: RunCgroup?
    /// Built ahead: nil until the take (``Executor/run(command:stdio:onResult:)``).
    var network: EgressNetwork?
    /// Built ahead: the supervisor's end of the command socket, until the command is sent.
    let command: OwnedFD?
    /// For "created during the run" (the scan's lower bound on birth times).
    var startedWall: (sec: Int64, nsec: UInt32)
}

/// The sandbox init after `clone3`: its pid (for the id maps), its pidfd (the only
/// handle to it) and whether it was reaped (then the undo does not kill it).
private final class SandboxInit {
    let pid: Int32
    let pidfd: Pidfd
    var reaped = false
    init(pid: Int32, pidfd: Pidfd) { self.pid = pid; self.pidfd = pidfd }
}

/// The child's three close-on-exec pipes: `sync` (the supervisor's go-ahead),
/// `errors` (a failed step's `{step, index, errno}`; EOF means execve succeeded),
/// `status` (the payload's wait status). Each end has one owner; the undo entry
/// closes whatever is still open.
private struct ChildPipes {
    let sync: (read: OwnedFD, write: OwnedFD)
    let errors: (read: OwnedFD, write: OwnedFD)
    let status: (read: OwnedFD, write: OwnedFD)

    init(undo: inout UndoStack) throws {
        func make(_ what: String, _ undo: inout UndoStack) throws -> (read: OwnedFD, write: OwnedFD) {
            do {
                let p = try FD.pipe()
                undo.push { p.read.close(); p.write.close() }
                return p
            } catch { throw ExecError(.childSpec, error, label: "\(what) pipe", subject: "\(what) pipe") }
        }
        sync = try make("sync", &undo)
        errors = try make("error", &undo)
        status = try make("status", &undo)
    }

    /// After clone3: the ends the child has its own copies of.
    func closeChildEnds() {
        for fd in [sync.read, errors.write, status.write] { fd.close() }
    }

    /// Once the init has exited: the child's failure record (12 bytes, or none) and
    /// the reaper's report (the payload's wait status and the run's CPU time, or none).
    func readOutcome() -> (report: [UInt8], status: ReaperReport?) {
        FD.setNonBlocking(errors.read.raw)
        let report = FD.readAll(errors.read.raw, max: 12)
        errors.read.close()
        FD.setNonBlocking(status.read.raw)
        let bytes = FD.readAll(status.read.raw, max: ReaperReport.size)
        status.read.close()
        return (report, ReaperReport(bytes))
    }
}
