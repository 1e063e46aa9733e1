import CSandbox
import Dispatch
import FoundationEssentials
import Glibc
import SandboxKit
import Synchronization

/// `sandbox serve`: a long-lived supervisor that runs each request of its clients in
/// a fresh sandbox exactly as `exec` would (same loader, planner, executor, result),
/// with the client's stdio, directory and environment. Docs/serve.md has the
/// protocol and the security model.
///
/// Threads: the caller's thread accepts (and reads the stop signals); one thread
/// per connection reads its requests; one thread per run, which lives as long as the
/// run (the init's PDEATHSIG is tied to it) and has a working directory of its own
/// (`unshare(CLONE_FS)`), the client's.
public final class Server: @unchecked Sendable {
    /// Every bound keeps the server's descriptors below 1024: libnftables waits on
    /// its netlink socket with select(), which aborts the process on a descriptor
    /// past FD_SETSIZE (``DescriptorBudget``).
    public struct Limits: Sendable {
        /// A request line longer than this ends the connection (framing is lost).
        public var maxLineBytes = 256 * 1024
        /// Runs of one connection at once; past it the server reads no more of that
        /// connection until one ends (back-pressure, not an error).
        public var maxInFlightPerConnection = 16
        /// Runs at once in the server; past it, the same back-pressure.
        public var maxRunning = 32
        /// Connections at once; one more gets an error line and is closed.
        public var maxConnections = 64
        /// Sandboxes built ahead of their command at once (``WarmSandboxes``); 0:
        /// none, every run builds its own when it comes.
        public var sandboxesBuiltAhead = WarmSandboxes.defaultCapacity
        /// Descriptors the runs may hold at once (``DescriptorBudget``): what is
        /// left below 1024 after the connections (one each, and the four of the
        /// request each reader may hold while it waits), the server's own (~40),
        /// room for libnftables' netlink sockets, and the egress namespaces made
        /// ahead (``EgressNamespacePool/descriptors``).
        public var runDescriptors = 1024 - 64 * 5 - 128 - EgressNamespacePool.descriptors
        public init() {}
    }

    let limits: Limits
    /// `--group`: members may connect; nil: only the server's own uid.
    let group: UInt32?
    let uid = geteuid()
    /// The server's own PID namespace (nsfs device and inode): only peers in it are served.
    let pidNamespace = ownPIDNamespace()
    /// The server's, fixed at start: every run's policy search path and run base.
    let searchPath: [String]
    let runBase: String
    let policies: PolicyCache
    /// The unix-socket searches, shared by the runs' plans while nothing they rest on
    /// changed (the build ahead and the request each plan).
    let hostView = HostViewMemo()
    let serverEnvironment: [String: String]
    private let inFlight = Mutex(0)
    /// Requests being run (``inFlight`` without the threads that build ahead).
    private let requestsRunning = Mutex(0)
    /// Building ahead pays only where a core is idle meanwhile: with more requests
    /// running than half the cores, the next sandbox is built when its request comes
    /// (a build ahead would only take the CPU from the runs; measured, 16 clients on
    /// 2 cores lost throughput with it).
    private let buildAheadBelow = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) / 2)
    private let descriptors: DescriptorBudget
    private let running: DispatchSemaphore
    private let connections = Mutex<[ObjectIdentifier: Connection]>([:])
    /// Egress namespaces made ahead for the last egress rulesets; used only while
    /// the spawner runs (it is what enters them).
    let egressNamespaces = EgressNamespacePool()
    /// Sandboxes built ahead for the last requests' client, policy and directory;
    /// used only while the spawner runs (the inits must not die with the thread
    /// that built them).
    let warm: WarmSandboxes

    public init(group: UInt32?, limits: Limits = Limits()) throws(ServeError) {
        // Many runs share the process's Landlock observer: a larger ring.
        LandlockObserver.ringBytes = 8 << 20
        LandlockObserver.perRunCap = 1024
        self.group = group
        self.limits = limits
        running = DispatchSemaphore(value: limits.maxRunning)
        descriptors = DescriptorBudget(total: limits.runDescriptors)
        warm = WarmSandboxes(capacity: limits.sandboxesBuiltAhead)
        let probe = HostProbe.probe()
        serverEnvironment = probe.environment
        searchPath = PolicyLoader.defaultSearchPath()
        policies = PolicyCache(searchPath: searchPath)
        do { runBase = try RunSteps.runBase(probe) } catch { throw ServeError(error.message) }
    }

    /// Serves on `path` until SIGINT, SIGTERM or SIGHUP; then cancels every run, waits
    /// for their teardown and removes the socket. `ready` is called once clients can
    /// connect.
    public func serve(path: String, ready: () -> Void = {}) throws(ServeError) {
        // Where this server was started from, read now: still trusted after an
        // upgrade renames the file away (``LoadedLibraries/executableAtStart``).
        _ = LoadedLibraries.executableAtStart
        // Blocked here, before any thread exists, so every thread inherits the mask
        // and only this signalfd sees them.
        let signals: SignalChannel
        do { signals = try SignalChannel([SIGINT, SIGTERM, SIGHUP]) } catch { throw ServeError("\(error)") }
        defer { signals.close() }
        // Every sandbox init is cloned by a spawner forked now, while this process is
        // one thread holding nothing of any client (sandbox_spawner.h): an init copied
        // from the busy server shares its pages copy-on-write with the server's
        // threads. Without one (it could not start), inits are cloned here: the same
        // sandbox, slower under load.
        let spawner = sbx_spawner_start()
        if spawner < 0 { fputs("sandbox serve: no spawner (\(String(cString: strerror(-spawner)))); sandboxes are cloned by the server itself\n", stderr) }
        // Stopped once the runs have ended (below); its inits are this process's own.
        defer { sbx_spawner_stop(); egressNamespaces.drain() }
        let socket = try ListeningSocket(path: path, group: group)
        defer { socket.remove() }
        ready()
        accepting: while true {
            guard let events = try? Poll.wait([socket.fd.raw, signals.fd], timeoutMs: -1) else { continue }
            if !events[1].isEmpty, !signals.pending().isEmpty { break accepting }
            guard events[0].contains(.readable) else { continue }
            let fd = sbx_serve_accept(socket.fd.raw)
            if fd < 0 { continue }
            accept(fd)
        }
        socket.remove()
        warm.stop()
        let all = connections.withLock { Array($0.values) }
        // The readers see EOF and let go; the runs' threads close each connection.
        for c in all { c.cancelAll(); shutdown(c.fd, Int32(SHUT_RDWR)) }
        // Teardown of the cancelled runs (cgroup kill, run directory, leases).
        let deadline = Clock.monotonicMs() + 30_000
        while inFlight.withLock({ $0 }) > 0 && Clock.monotonicMs() < deadline { usleep(10_000) }
    }

    /// A new connection: its peer checked, then its own reading thread.
    private func accept(_ fd: Int32) {
        var uid: UInt32 = 0, gid: UInt32 = 0, pid: Int32 = 0
        guard sbx_serve_peer(fd, &uid, &gid, &pid) == 0 else { Glibc.close(fd); return }
        let connection = Connection(fd: fd, peer: Peer(uid: uid, gid: gid, pid: pid),
                                    maxInFlight: limits.maxInFlightPerConnection)
        if let why = refusal(of: connection.peer, fd: fd) {
            connection.send(ServeReply.refused(.init(id: "null", subject: "peer", step: "peer", why), peer: connection.peer))
            connection.release(request: false)
            return
        }
        let admitted = connections.withLock { c -> Bool in
            guard c.count < limits.maxConnections else { return false }
            c[ObjectIdentifier(connection)] = connection
            return true
        }
        guard admitted else {
            connection.send(ServeReply.refused(.init(id: "null", step: "limit", "the server has \(limits.maxConnections) connections open; try again later"), peer: connection.peer))
            connection.release(request: false)
            return
        }
        startThread { self.read(connection) }
    }

    /// Who may be served (Docs/serve.md, security model): the server's own uid; with
    /// `--group`, members of that group too, but only by a server that is not root
    /// (their runs are the server's uid's: a non-root server lends what that uid can
    /// do, which the group was given by its owner). A root server serves root only:
    /// runs on behalf of another uid (its policies, its directory's access, its idmap)
    /// are not implemented, so another uid could gain root's reach through them.
    private func refusal(of peer: Peer, fd: Int32) -> String? {
        // SO_PEERCRED cannot tell a sandboxed command from its owner (a run of the
        // server's own uid, or a root run with `host_uid = "invoker"`, that reaches the
        // socket): it would ask for any policy, directory and command and so leave its
        // sandbox. Every run but a nested one has a PID namespace of its own, so a
        // peer outside the server's is never served (nor any message from outside it:
        // ``read``).
        guard let own = pidNamespace else {
            return "pid \(peer.pid) may not use this server: the server's own PID namespace cannot be read (/proc/self/ns/pid)"
        }
        let r = sbx_serve_peer_in_pidns(fd, own.dev, own.ino)
        guard r >= 0 else {
            return "pid \(peer.pid) may not use this server: its PID namespace cannot be read (SO_PEERPIDFD, then its fdinfo or PIDFD_GET_PID_NAMESPACE: \(String(cString: strerror(-r))))"
        }
        guard r == 1 else {
            return "pid \(peer.pid) may not use this server: it is not in the server's PID namespace (a sandboxed command is never served)"
        }
        if peer.uid == uid { return nil }
        guard let group else {
            return "uid \(peer.uid) may not use this server: it serves uid \(uid) only (start it with --group to admit a group)"
        }
        if uid == 0 {
            return "uid \(peer.uid) may not use this server: a server running as root serves root only (run a server as that user)"
        }
        var groups = [UInt32](repeating: 0, count: 256)
        let n = sbx_serve_peer_groups(fd, &groups, Int32(groups.count))
        if peer.gid == group || (n > 0 && groups[..<Int(n)].contains(group)) { return nil }
        return "uid \(peer.uid) may not use this server: not in group \(group)"
    }

    /// Every bit of a CPU mask set: no restriction (the kernel intersects it with the
    /// CPUs possible and the cpuset).
    static let everyCPU: sbx_cpumask = {
        var m = sbx_cpumask()
        withUnsafeMutableBytes(of: &m) { for i in $0.indices { $0[i] = 0xFF } }
        return m
    }()

    /// Whether `mask` holds as many CPUs as are online (so it was read from a thread
    /// not restricted to some of them).
    static func coversEveryOnlineCPU(_ mask: sbx_cpumask) -> Bool {
        var mask = mask
        let count = withUnsafeBytes(of: &mask) { $0.reduce(0) { $0 + $1.nonzeroBitCount } }
        return count == Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }

    /// The descriptors of a request: stdin, stdout, stderr and the working directory.
    static let descriptorsPerRequest = 4

    /// The connection's reading loop: lines and the descriptors sent with them. A
    /// line's descriptors are those that came with its first byte: the kernel ends a
    /// read at a message that carries descriptors, so they belong to the first line
    /// that starts in that read (a read may begin with the rest of an earlier line).
    /// Descriptors with no line starting beside them end the connection; a line with
    /// another count than four is refused (``handle``).
    private func read(_ connection: Connection) {
        var buffer: [UInt8] = []
        var lineFDs: [OwnedFD] = []   // those of the line in `buffer`, not yet complete
        var lineCount = 0             // how many came with it; -1: more than 16
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        let tooLong = ServeReply.refused(.init(id: "null", step: "request", "a request line is longer than \(limits.maxLineBytes) bytes; the connection is closed"), peer: connection.peer)
        defer {
            for fd in lineFDs { fd.close() }
            connection.cancelAll()
            connections.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(connection)) }
            // The runs' threads close the connection once the last one has replied
            // (or found the client gone).
            connection.release(request: false)
        }
        while true {
            var fds = [Int32](repeating: -1, count: 16)
            var nfds: Int32 = 0, truncated: Int32 = 0, sender: Int32 = 0
            let own = pidNamespace ?? (dev: 0, ino: 0)
            let n = chunk.withUnsafeMutableBytes { b in
                sbx_serve_recv(connection.fd, b.baseAddress, b.count, &fds, 16, &nfds, &truncated, own.dev, own.ino, &sender)
            }
            if n <= 0 { return }   // EOF or error: the client is gone
            // Who wrote it, not only who connected: a connection the client handed to
            // a sandboxed command (as a descriptor of a run of another server, or
            // through a socket it passed) would let the command ask for any policy.
            guard sender == 1, pidNamespace != nil else {
                for fd in fds[..<Int(nfds)] { Glibc.close(fd) }
                let why = sender == -ESRCH ? "its sender has exited (a client must stay until its requests are read)"
                    : sender < 0 ? "its sender's PID namespace cannot be read (SCM_PIDFD, then its fdinfo or PIDFD_GET_PID_NAMESPACE: \(String(cString: strerror(-sender))))"
                    : truncated != 0 ? "it carried more descriptors than a request may (16)"
                    : "it was sent by a process outside the server's PID namespace (a sandboxed command holding the client's connection)"
                connection.send(ServeReply.refused(.init(id: "null", subject: "peer", step: "peer", "a message on this connection is refused: \(why); the connection is closed"), peer: connection.peer))
                return
            }
            var received: [OwnedFD]? = nfds > 0 || truncated != 0 ? fds[..<Int(nfds)].map { OwnedFD($0) } : nil
            let receivedCount = truncated != 0 ? -1 : Int(nfds)
            if let r = received, !buffer.isEmpty {
                // Mid-line: they must be the next line's, and it must start in this read.
                guard let nl = chunk[..<n].firstIndex(of: UInt8(ascii: "\n")), nl < n - 1 else {
                    for fd in r { fd.close() }
                    connection.send(ServeReply.refused(.init(id: "null", subject: "descriptors", "descriptors arrived in the middle of a request line; send them with its first byte; the connection is closed"), peer: connection.peer))
                    return
                }
            } else if let r = received {
                lineFDs = r
                lineCount = receivedCount
                received = nil
            }
            buffer += chunk[..<n]
            while let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                if nl > limits.maxLineBytes {
                    for fd in received ?? [] { fd.close() }
                    connection.send(tooLong)
                    return
                }
                handle(buffer[..<nl], descriptors: lineFDs, count: lineCount, on: connection)
                buffer.removeSubrange(...nl)
                // The next line: the descriptors of this read if they were not the
                // first line's, else none.
                lineFDs = received ?? []
                lineCount = received == nil ? 0 : receivedCount
                received = nil
            }
            if buffer.count > limits.maxLineBytes { connection.send(tooLong); return }
        }
    }

    /// Whether `fd` is a unix socket whose other end is this process's: the
    /// credentials a connection's client end holds of its peer are the listener's
    /// (this server's, from listen()).
    static func isConnectionToThisServer(_ fd: Int32) -> Bool {
        var uid: UInt32 = 0, gid: UInt32 = 0, pid: Int32 = 0
        return sbx_serve_peer(fd, &uid, &gid, &pid) == 0 && pid == getpid()
    }

    /// One request line: refused at once, or run on a thread of its own.
    private func handle(_ line: ArraySlice<UInt8>, descriptors: [OwnedFD], count: Int, on connection: Connection) {
        let request: ServeRequest
        switch ServeRequest.parse(line) {
        case .failure(let r):
            for fd in descriptors { fd.close() }
            connection.send(ServeReply.refused(r, peer: connection.peer))
            return
        case .success(let r): request = r
        }
        guard count == Self.descriptorsPerRequest else {
            for fd in descriptors { fd.close() }
            let got = count < 0 ? "more than 16" : "\(count)"
            connection.send(ServeReply.refused(.init(id: request.id, subject: "descriptors", "the request came with \(got) descriptors; send exactly four with its first byte (SCM_RIGHTS): stdin, stdout, stderr and the working directory"), peer: connection.peer, argv: request.argv))
            return
        }
        // A connection to this server among them (a client whose stdin was closed when
        // it connected sends its own connection as the command's stdin) would let the
        // command send requests of its own, under any policy, as that client: refused.
        if let i = descriptors.firstIndex(where: { Self.isConnectionToThisServer($0.raw) }) {
            for fd in descriptors { fd.close() }
            connection.send(ServeReply.refused(.init(id: request.id, subject: "descriptors", "descriptor \(i) of the request (\(["stdin", "stdout", "stderr", "the working directory"][i])) is a connection to this server: a command holding it could send requests of its own; give the command another (e.g. /dev/null)"), peer: connection.peer, argv: request.argv))
            return
        }
        let stdio = Array(descriptors.prefix(3))
        let directory = descriptors[3]
        // Back-pressure: this connection is not read while it is at its bound, nor
        // any while the server is at its own.
        connection.slots.wait()
        running.wait()
        connection.retain()
        inFlight.withLock { $0 += 1 }
        requestsRunning.withLock { $0 += 1 }
        // The run's thread starts on this CPU, which this reader leaves at once for its
        // next read. A new thread is otherwise placed on the idlest CPU, and waking an
        // idle one took 1.4–2.0 ms here (median; a virtual CPU halted in the host),
        // against 0.2 ms pinned (uprobes, Docs/benchmarks.md, session 37). The thread
        // takes back this reader's affinity as its first step.
        var affinity = sbx_cpumask()
        let pinned = sbx_affinity_get(&affinity) == 0 && sbx_affinity_pin_here() == 0
        // What is read back is the mask cut to the CPUs online now; set again as it
        // is, it would leave out a CPU brought online later (and, from Linux 6.2, stay
        // as the thread's requested mask). A mask of every online CPU was no
        // restriction at all: all bits are put back instead (the kernel keeps them
        // within the cpuset).
        if pinned, Self.coversEveryOnlineCPU(affinity) { affinity = Self.everyCPU }
        defer { if pinned { _ = sbx_affinity_set(&affinity) } }
        let readerAffinity = affinity
        startThread {
            if pinned { var mask = readerAffinity; _ = sbx_affinity_set(&mask) }
            // The reply goes out as soon as the result is final (before the run's
            // teardown, which this thread still does before the run stops counting
            // against the bounds); a run refused before it started replies here.
            var replied = false
            let reply = { (result: RunResult) in
                guard !replied else { return }
                replied = true
                connection.send(ServeReply.line(id: request.id, peer: connection.peer, result: result))
            }
            let result = self.run(request, stdio: stdio, directory: directory, connection: connection, reply: reply)
            reply(result)
            self.inFlight.withLock { $0 -= 1 }
            self.requestsRunning.withLock { $0 -= 1 }
            self.running.signal()
            connection.slots.signal()
            connection.release()
            // Last, holding no bound: closing a client's file can wait for ever (a
            // FUSE daemon that never answers FLUSH; red team, session 28), and then
            // only this thread waits.
            for fd in descriptors { fd.close() }
        }
    }

    /// One run, on its own thread, as `exec` would make it in the client's directory
    /// (`directory`, the fourth descriptor) with `request.env`: the same steps
    /// (RunSteps), a fresh Executor.
    func run(_ request: ServeRequest, stdio: [OwnedFD], directory: OwnedFD, connection: Connection,
             reply: @escaping (RunResult) -> Void = { _ in }) -> RunResult {
        let runId = RunSteps.newRunId()
        var label = request.policy
        func refused(_ e: ExecError) -> RunResult { .refused(runId: runId, policy: label, argv: request.argv, error: e) }
        // Admitted after back-pressure: a client gone meanwhile gets nothing started.
        if connection.isClosed {
            return refused(ExecError(kind: .plan, step: "cancelled", message: "the client disconnected before the run started"))
        }
        // This thread's working directory becomes the client's; the server's and the
        // other runs' are untouched.
        let r = sbx_serve_unshare_fs()
        guard r == 0 else {
            return refused(ExecError(kind: .setup, step: "cwd", subject: request.cwd, errno: Errno(-r), message: "unshare(CLONE_FS): \(String(cString: strerror(-r)))"))
        }
        // The directory the client holds, not one looked up again by its path: the
        // executor opens `{cwd}` binds beneath this thread's working directory, as
        // `exec` does beneath its own.
        guard fchdir(directory.raw) == 0 else {
            let e = errno
            return refused(ExecError(kind: .plan, step: "cwd", subject: request.cwd, errno: Errno(e), message: "cwd: the fourth descriptor\(request.cwd.map { " (\($0))" } ?? ""): \(String(cString: strerror(e)))"))
        }
        // Watched from before this request's plan, which the next sandbox built
        // ahead is made from (``build(_:directory:from:)``): a mount change from here
        // until that build is done lets it go, as one during a build of its own plan.
        // Only while few requests run (a build waits for that, ``prepareAhead``): the
        // descriptor it holds for the run's life is not among those the budget counts.
        let mountWatch = warm.capacity > 0 && sbx_spawner_running() == 1
            && requestsRunning.withLock({ $0 }) <= buildAheadBelow ? try? MountEvents() : nil
        // A sandbox built ahead waits for this client, policy and directory: the
        // host's audit state its take compares is asked now and answered while the
        // plan is compiled (the kernel answers from a thread it starts per query).
        let earlyKey = mountWatch != nil ? warmKey(request, directory: directory, peer: connection.peer) : nil
        let auditState = earlyKey.flatMap { warm.isReady($0) ? AuditReader.askAuditState() : nil }
        let probe = hostProbe(for: request)
        do {
            let policy = try policies.load(request.policy, relativeTo: probe.cwd)
            label = policy.name
            let host = hostFacts(probe, network: policy.network.mode)
            let plan = try RunSteps.plan(policy, argv: request.argv, runId: runId, host: host, digest: false)
            if let dir = request.resultDirectory {
                try RunSteps.checkResultDirectory(dir, path: request.resultPath ?? dir, plan: plan)
            }
            var options = RunSteps.options(runBase: runBase)
            options.stdio = (stdio[0].raw, stdio[1].raw, stdio[2].raw)
            options.forwardSignals = false    // the server's signals are its own
            options.restoreTerminal = false   // the client's terminal is the client's
            // A sandbox built ahead for this client, policy and directory, if the
            // plan makes exactly it; and the next one built once this one's result is
            // out — while the client reads it and the run is torn down, not while the
            // command starts (started before, the build took the CPU this request's
            // own take and command were waiting for: 1.6 ms of its 6).
            let warmKey = warmable(plan) ? earlyKey ?? self.warmKey(request, directory: directory, peer: connection.peer) : nil
            var buildNext = warmKey != nil
            // Made into the next build's plan on the build's thread, after the reply.
            var reusable = mountWatch.map { PlanToBuildFrom(plan, mounts: $0) }
            let replied = { (result: RunResult) in
                reply(result)
                if buildNext, let warmKey {
                    buildNext = false
                    self.prepareAhead(warmKey, request: request, directory: directory, from: reusable.take())
                }
            }
            options.onResult = replied        // the client need not wait for the teardown
            if let warmKey, let built = warm.take(warmKey),
               let result = runBuiltAhead(built, plan: plan, stdio: stdio, connection: connection, auditState: auditState,
                                          reply: replied) {
                return result
            }
            // Its descriptors, counted from the plan, must fit below FD_SETSIZE beside
            // the other runs' (``DescriptorBudget``): else it waits.
            let need = DescriptorBudget.estimate(mounts: plan.mounts.count)
            guard descriptors.acquire(need, while: { !connection.isClosed }) else {
                return refused(ExecError(kind: .plan, step: "cancelled", message: "the client disconnected before the run started"))
            }
            defer { descriptors.release(need) }
            // An egress namespace prepared for this ruleset, when the run can take
            // one (its descriptors are among the run's own, counted above).
            if plan.network.mode == .egress, let ruleset = plan.network.nftRuleset,
               Executor.mayTakeNamespaceMadeAhead(plan), sbx_spawner_running() == 1 {
                options.preparedNetwork = egressNamespaces.take(ruleset: ruleset)
            }
            let executor = Executor(plan: plan, options: options)
            guard let key = connection.register(executor.handle) else {
                return refused(ExecError(kind: .plan, step: "cancelled", message: "the client disconnected before the run started"))
            }
            defer { connection.unregister(key) }
            return executor.run()
        } catch {
            return refused(error)
        }
    }

    /// Whether a run of `plan` may use a sandbox built ahead: namespaced, with the
    /// spawner running. Egress too: the take sets its network up (``build(_:directory:)``).
    private func warmable(_ plan: RunPlan) -> Bool {
        !plan.isNested && sbx_spawner_running() == 1
    }

    private func warmKey(_ request: ServeRequest, directory: OwnedFD, peer: Peer) -> WarmSandboxes.Key? {
        var st = stat()
        guard fstat(directory.raw, &st) == 0, let mount = MountSources.mountID(directory.raw) else { return nil }
        return .init(peerUID: peer.uid, policy: request.policy, device: UInt64(st.st_dev), inode: UInt64(st.st_ino),
                     mount: mount)
    }

    /// The request's command in `built`, with the same result as in a sandbox built
    /// for it (``run(_:stdio:directory:connection:reply:)``); nil when `built` may not
    /// run it (let go here: the caller builds one).
    private func runBuiltAhead(_ built: WarmSandboxes.Sandbox, plan: RunPlan, stdio: [OwnedFD], connection: Connection,
                               auditState: AuditStateQuery?, reply: @escaping (RunResult) -> Void) -> RunResult? {
        defer { descriptors.release(built.descriptors) }
        guard let key = connection.register(built.executor.handle) else {
            built.discard()
            return .refused(runId: plan.runId, policy: plan.policy.name, argv: plan.process.argv,
                            error: ExecError(kind: .plan, step: "cancelled", message: "the client disconnected before the run started"))
        }
        defer { connection.unregister(key) }
        guard let result = built.run(plan, stdio: (stdio[0].raw, stdio[1].raw, stdio[2].raw), onResult: reply,
                                     auditState: auditState) else {
            built.discard()
            return nil
        }
        built.mounts.close()
        return result
    }

    /// Builds the next sandbox for `key` on a thread of its own, as this request's
    /// would be built but with a placeholder command, when there is room
    /// (``WarmSandboxes``); the thread then waits until a request takes it, or lets
    /// it go.
    private func prepareAhead(_ key: WarmSandboxes.Key, request: ServeRequest, directory: OwnedFD,
                              from reused: PlanToBuildFrom? = nil) {
        guard requestsRunning.withLock({ $0 }) <= buildAheadBelow, warm.reserve(key) else { return }
        let dir = fcntl(directory.raw, F_DUPFD_CLOEXEC, 0)
        guard dir >= 0 else { warm.abandon(key); return }
        let owned = OwnedFD(dir)
        inFlight.withLock { $0 += 1 }
        startThread {
            defer { self.inFlight.withLock { $0 -= 1 } }
            let built = self.build(request, directory: owned, from: reused)
            guard let built else { owned.close(); self.warm.abandon(key); return }
            guard self.warm.offer(built, for: key) else {
                owned.close()
                built.discard()
                self.descriptors.release(built.descriptors)
                return
            }
            // Topped up to the capacity, one build after another: a client that
            // sends its next request as soon as it has a result finds a sandbox
            // built a whole request earlier, not one still being built.
            self.prepareAhead(key, request: request, directory: owned)
            owned.close()
            if self.warm.waitTakenOrWithdraw(built, for: key) {
                built.discard()
                self.descriptors.release(built.descriptors)
            }
        }
    }

    /// The sandbox `request` would get, built ahead of its command, or nil (it
    /// could not be: the next request builds its own, as without this). From the
    /// plan `reused` holds (the request's own, compiled moments ago: one plan a
    /// request instead of two) or, without it, from a plan of its own.
    private func build(_ request: ServeRequest, directory: OwnedFD, from reused: PlanToBuildFrom? = nil) -> WarmSandboxes.Sandbox? {
        // Watched from before the plan: a mount change during the build counts too.
        // Only a directory on a mount of the server's own namespace, whose changes
        // that watch sees (a client's namespace of its own is not watched).
        guard let mounts = reused?.mounts ?? (try? MountEvents()) else { return nil }
        var done = false
        defer { if !done { mounts.close() } }
        let table = FileSystemLocation.table()
        guard MountSources.isInOwnNamespace(directory.raw),
              sbx_serve_unshare_fs() == 0, fchdir(directory.raw) == 0 else { return nil }
        let plan: RunPlan
        if let reused {
            guard let p = reused.plan(runId: RunSteps.newRunId()) else { return nil }
            plan = p
        } else {
            let probe = hostProbe(for: request)
            guard let policy = try? policies.load(request.policy, relativeTo: probe.cwd),
                  let compiled = try? RunSteps.plan(policy, argv: PlanToBuildFrom.placeholder, runId: RunSteps.newRunId(),
                                                    host: hostFacts(probe, network: policy.network.mode), digest: false)
            else { return nil }
            plan = compiled
        }
        guard warmable(plan) else { return nil }
        let need = DescriptorBudget.estimate(mounts: plan.mounts.count)
        guard descriptors.acquire(need, while: { false }) else { return nil }
        var options = RunSteps.options(runBase: runBase)
        options.forwardSignals = false
        options.restoreTerminal = false
        // An egress sandbox gets a namespace prepared for its ruleset here, off any
        // request's path (firewall, lo and eth0 in place, the host end down and
        // detached: no packet reaches it while it waits; the take attaches it). Its own,
        // not one from `egressNamespaces`, whose rule (a ruleset is prepared for from
        // its second request on) a build after every request would defeat: every
        // policy a client used once would get namespaces made, and a client cycling
        // through policies would have them made and closed unused (red team, session
        // 32). Without one, the take sets the whole network up.
        if plan.network.mode == .egress, let ruleset = plan.network.nftRuleset,
           Executor.mayTakeNamespaceMadeAhead(plan) {
            options.preparedNetwork = try? PreparedNamespace.make(ruleset: ruleset)
        }
        let executor = Executor(plan: plan, options: options)
        // The mounts its binds' trees are made of, with their unique ids; then none
        // may have changed since the table was read (else what it cloned, or the ids
        // just read, are of no one table, and it is let go at once).
        let failed = executor.prepareAhead() != nil
        let trees = table.trees(at: WarmSandboxes.Sandbox.bindSources(plan)).withUniqueIDs()
        guard !failed, !mounts.changed else {
            executor.discard()
            descriptors.release(need)
            return nil
        }
        done = true
        return WarmSandboxes.Sandbox(executor: executor, descriptors: need, mounts: mounts, table: trees)
    }

    /// The planner's view of the host for a run of this server: `exec`'s, with the
    /// server's shared memo of the host (``hostView``).
    private func hostFacts(_ probe: HostProbe, network: NetworkMode) -> HostFacts {
        var host = RunSteps.hostFacts(probe, network: network)
        host.files = HostFiles(memo: hostView)
        return host
    }

    /// The host as the request's run sees it: this thread's directory (the client's),
    /// the client's environment and home.
    private func hostProbe(for request: ServeRequest) -> HostProbe {
        var probe = HostProbe.probe()
        probe.environment = environment(for: request)
        let home = probe.environment["HOME"] ?? "/"
        probe.home = home.hasPrefix("/") ? home : "/"
        return probe
    }

    /// The client's environment, but the server's `SANDBOX_POLICY_PATH` and
    /// `XDG_RUNTIME_DIR`: the policy search path and the run base (and so what the
    /// planner counts as trusted) are the server's, whatever a client sends.
    private func environment(for request: ServeRequest) -> [String: String] {
        var env = request.env
        for key in ["SANDBOX_POLICY_PATH", "XDG_RUNTIME_DIR"] { env[key] = serverEnvironment[key] }
        return env
    }

    private func startThread(_ body: @escaping @Sendable () -> Void) {
        Threads.detach(stackSize: 4 << 20, body)
    }
}

/// The descriptors runs may hold at once: every bound keeps the server's descriptors
/// below 1024, because libnftables waits on its netlink socket with select(), which
/// aborts the process on a descriptor past FD_SETSIZE (a soft RLIMIT_NOFILE above
/// 1024 does not help; it only lets the number be reached). A run's need grows with
/// its binds (the source and the prepared tree of each, Landlock's rule fds): a
/// client asking for many runs with many binds waits here instead of pushing the
/// server's descriptors past 1024.
final class DescriptorBudget: Sendable {
    /// Guards `free`; a release wakes the waiters. (A 5 ms poll was 0.08 ms of the
    /// server's CPU per request at 16 in flight, and woke a waiter up to 5 ms late.)
    private let condition = Condition()
    nonisolated(unsafe) private var free: Int
    private let total: Int

    init(total: Int) { self.total = total; free = total }

    /// What a run holds at most: 2 per bind while it is set up (the source and its
    /// prepared tree; one stays for the run's life), and about 32 of its own (pipes,
    /// pidfd, cgroup, Landlock, seccomp, network namespace, the client's four;
    /// measured: 123 for a run of 100 binds). Capped at the total, so the largest
    /// plan still runs (alone).
    static func estimate(mounts: Int) -> Int { 2 * mounts + 32 }

    /// How long a waiter sleeps before it asks `waiting()` again: a client that
    /// disconnects wakes no one, so its waiting request notices within this.
    static let recheckMilliseconds = 50

    /// Takes `n` (at most the total); waits while they are not free and `waiting()`
    /// holds. False if it stopped waiting.
    func acquire(_ n: Int, while waiting: () -> Bool) -> Bool {
        let n = min(n, total)
        condition.lock()
        defer { condition.unlock() }
        while free < n {
            // Asked holding this lock: `waiting` reads the connection's state, never
            // this budget.
            if !waiting() { return false }
            condition.wait(milliseconds: Self.recheckMilliseconds)
        }
        free -= n
        return true
    }

    func release(_ n: Int) {
        condition.lock()
        free += min(n, total)
        condition.broadcast()
        condition.unlock()
    }

    /// Tests: what is free now.
    var available: Int { condition.lock(); defer { condition.unlock() }; return free }
}

/// A request's plan, to build the next sandbox ahead from instead of compiling the
/// same plan again a few milliseconds later (0.7 ms of the server's CPU a request),
/// with the mount watch opened before it was compiled: the build lets itself go on
/// any mount change since then, as a build of its own plan does on one since before
/// that plan. Everything else a plan reads of the host (files, identities, the
/// policy) the take checks again: it compiles the taking request's plan and compares
/// (``RunPlan/sameSandbox(as:)``), and sees what the init mounted beneath binds from
/// the host, however long ago the plan was made.
struct PlanToBuildFrom {
    private let request: RunPlan
    let mounts: MountEvents

    /// The command a sandbox built ahead is planned with until its own arrives.
    static let placeholder = ["sandbox-built-ahead"]

    init(_ request: RunPlan, mounts: MountEvents) {
        self.request = request
        self.mounts = mounts
    }

    /// The plan that compiling the request's policy for a run `runId` with the
    /// placeholder command gives: the request's, but for those two fields (the
    /// command goes nowhere else in a plan). nil when the request's plan depends on
    /// its run id (a `{run_id}` template: its paths are that run's, and no other plan
    /// is the same sandbox), so that no sandbox is built on another run's paths; its
    /// canonical form holds the id nowhere else otherwise.
    func plan(runId: String) -> RunPlan? {
        var bare = request
        bare.runId = ""
        let id = Array(request.runId.utf8)
        guard !id.isEmpty, !bare.canonicalJSON().contains(subsequence: id) else { return nil }
        var p = request
        p.runId = runId
        p.process.argv = Self.placeholder
        return p
    }
}

extension Array where Element == UInt8 {
    func contains(subsequence needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= count else { return needle.isEmpty }
        let first = needle[0]
        var i = 0
        while i + needle.count <= count {
            if self[i] == first, self[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }
}

/// This process's PID namespace (nsfs device and inode), as `sbx_serve_peer_in_pidns`
/// compares a peer's: the server serves only clients in it, and a client sends only
/// to a server in it.
func ownPIDNamespace() -> (dev: UInt64, ino: UInt64)? {
    var st = stat()
    return stat("/proc/self/ns/pid", &st) == 0 ? (UInt64(st.st_dev), UInt64(st.st_ino)) : nil
}
