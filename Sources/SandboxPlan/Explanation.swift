import SandboxPolicy

/// `sandbox explain`: the plan as a reviewer reads it — what can be read, written,
/// executed and reached, what is denied, and the limits.
public enum Explanation {
    /// - Parameter host: the facts the plan was compiled with, to show policy paths
    ///   with their templates (`{cwd}`, `{home}`…) expanded as the plan used them.
    public static func text(for plan: RunPlan, policy: Policy, host: HostFacts) -> String {
        let paths = Context(policy: policy, host: host, runId: plan.runId)
        var out: [String] = []
        func line(_ s: String = "") { out.append(s) }
        func list(_ items: [String]) -> String { items.isEmpty ? "nothing" : items.joinedText(separator: ", ") }

        line("Policy \"\(plan.policy.name)\" (from \(plan.policy.sources.joinedText(separator: " ← ")))")
        line("Plan digest (for this host and command): \(plan.digest ?? "-")")
        if let iso = plan.isolation {
            line()
            line("Isolation: \(iso.mode.rawValue) (\(iso.reason))")
            if iso.mode == .nested {
                line("  no namespaces and no private root: where the sections below speak of the sandbox's own root, /proc, /dev,")
                line("  hostname or network namespace, these layers say what this run has instead:")
                for l in iso.layers { line("  \(l.applied ? "applied" : "ABSENT ") \(l.name): \(l.how)") }
                if !iso.accepted.isEmpty { line("  accepted absent (process.nested_without): \(list(iso.accepted.map(\.rawValue)))") }
            }
        }
        line()
        line("Filesystem — the sandbox sees only these paths, on an otherwise empty read-only root:")
        let binds = plan.mounts.filter { $0.kind == .bind }
        // A bind with a dst shows where it comes from.
        func shown(_ m: MountStep) -> String {
            guard let source = m.source, source != m.destination else { return m.destination }
            return "\(m.destination) (from \(source))"
        }
        let ro = binds.filter(\.readOnly).map(shown)
        let rw = binds.filter { !$0.readOnly }.map(shown)
        line("  read and execute:  \(list(ro))")
        line("  read and write:    \(list(rw))")
        let tmp = plan.mounts.filter { $0.kind == .tmpfs }.map(\.destination)
        line("  private scratch:   \(list(tmp)) (empty tmpfs, gone after the run)")
        let links = plan.mounts.filter { $0.kind == .symlink }.map { "\($0.destination) → \($0.source ?? "")" }
        if !links.isEmpty { line("  symlinks:          \(list(links))") }
        let protect = plan.mounts.filter { $0.kind == .protect }.map(\.destination)
        line("  read-only again:   \(list(protect))\(policy.filesystem.protect.isEmpty ? "" : " (protect: \(policy.filesystem.protect.joinedText(separator: ", ")))")")
        let masks = plan.mounts.filter { $0.kind == .mask }.map(\.destination)
        if !masks.isEmpty { line("  hidden (masked):   \(list(masks))") }
        if !policy.filesystem.socketScanSkip.isEmpty {
            line("  unix sockets under read-only paths are hidden; not searched (socket_scan_skip, vouched socket-free): \(list(policy.filesystem.socketScanSkip.map { (try? paths.expand($0, key: "filesystem.socket_scan_skip")) ?? $0.raw }))")
        }
        for f in plan.mounts where f.kind == .file {
            line("  in memory, read-only: \(f.destination) (from \(f.origin); never a host file)")
        }
        line("  always: a private /proc (this run's processes only) and a minimal /dev")
        line("  everything else of the host (e.g. /home, /root, /var, the host's /tmp) is absent")
        line()

        line("Process:")
        let p = plan.process
        let who = p.uid == plan.host.invokerUID ? "the invoking user (uid \(p.uid))" : "uid \(p.uid)"
        if plan.host.rootless {
            line("  runs as \(who), gid \(p.gid), in a user namespace; keeps your supplementary groups (an unprivileged user namespace cannot drop them; they show as \"nogroup\" inside)")
        } else {
            line("  runs as \(who), gid \(p.gid), no supplementary groups")
        }
        line("  hostname \"\(p.hostname)\", working directory \(p.workdir)")
        let envNames = Set(p.env.map { String($0.prefix { $0 != "=" }) }).union(policy.process.envPass).sorted()
        line("  environment: only \(list(envNames)) (passed from yours when set there, or set by the policy)")
        if let t = p.timeoutMs {
            line("  time limit: \(Explanation.duration(t)) wall clock, then SIGTERM, SIGKILL \(Explanation.duration(p.graceMs)) later")
        } else {
            line("  time limit: none")
        }
        line("  \(p.newSession ? "own session: no controlling terminal (TIOCSTI cannot reach yours)" : "shares your terminal session")")
        line()

        line("Kernel fences:")
        if plan.landlock.abi > 0 {
            line("  Landlock ABI \(plan.landlock.abi) (\(plan.landlock.mode.rawValue)): file access limited to the paths above, independent of the mounts")
            if let c = plan.landlock.connectTCP { line("    TCP connect only to ports: \(list(c.map(String.init)))") }
            if let b = plan.landlock.bindTCP { line("    TCP bind only to ports: \(list(b.map(String.init)))") }
            if !plan.landlock.scopes.isEmpty { line("    scoped: \(list(plan.landlock.scopes.map(\.rawValue))) (no reaching outside the sandbox)") }
        } else {
            line("  Landlock: \(plan.landlock.mode == .off ? "off (policy)" : "not available on this host")")
        }
        if plan.seccomp.enabled {
            let deny = plan.seccomp.rules.filter { $0.origin == "seccomp.deny" }.flatMap(\.syscalls)
            line("  seccomp: \(plan.seccomp.profile.map { "profile \($0), " } ?? "")\(plan.seccomp.rules.count) rules, other syscalls: \(plan.seccomp.defaultAction.rawValue)")
            switch plan.seccomp.onViolation {
            case .log:
                line("    DRY RUN (on_violation = \"log\"): these and all other filtered calls are ALLOWED and only counted: \(list(deny))")
            case .kill:
                line("    always denied: \(list(deny))")
                line("    on violation: the whole sandbox is killed (SIGSYS) and the result names the call")
            case .notify:
                line("    always denied: \(list(deny))")
                line("    on violation: EPERM, and each call is listed in the result")
            case .errno:
                line("    always denied: \(list(deny))")
                line("    on violation: EPERM")
            }
            if let fam = plan.seccomp.socketFamilies { line("    socket families: \(list(fam.map(\.rawValue))) (others fail with EAFNOSUPPORT)") }
            if plan.seccomp.explicitTimesViaSupervisor == true {
                line("    utimensat with explicit times: set by the supervisor only on the command's files beneath an rw bind, else EPERM (times NULL, \"now\", run in the kernel; utime, utimes, futimesat with explicit times: EPERM)")
            }
            if let ioctls = plan.seccomp.refusedIoctls {
                line("    ioctl commands refused (EPERM, a second filter on the low 32 bits of cmd): \(list(ioctls.map(\.name)))")
            }
            line("    only \(plan.seccomp.arch) syscalls; 32-bit and x32 entry points kill the process")
        } else {
            line("  seccomp: none")
        }
        line("  capabilities: \(plan.capabilities.keep.isEmpty ? "none (all dropped)" : "only \(list(plan.capabilities.keep))"); no_new_privs set (setuid binaries gain nothing)")
        line()

        line("Network:")
        switch plan.network.mode {
        case .none: line("  none: a private network namespace with no interfaces up")
        case .loopback: line("  loopback only: 127.0.0.1 inside the sandbox's own namespace (not the host's)")
        case .egress:
            line("  egress through a firewall inside the sandbox's namespace; everything else is dropped and reported")
            line("  DNS only to: \(list(plan.network.dns))")
            for a in plan.network.allow { line("  allow \(a.proto) to \(a.cidr) ports \(list(a.ports.map(String.init)))") }
            if let stub = plan.network.stub {
                for n in stub.names {
                    let what = n.host.wildcard ? "names below \(n.host.base) (not \(n.host.base) itself)" : n.host.description
                    line("  allow \(n.proto) to \(what) ports \(list(n.ports.map(String.init))): the addresses it resolves to, for the answer's TTL (\(stub.ttl.min)–\(stub.ttl.max) s; nft sets \(n.set4), \(n.set6))")
                    if n.host.wildcard {
                        // Red-team F4: any sub-label is asked upstream, so the zone's servers see it.
                        line("    note: every name below \(n.host.base) is asked upstream, so the run can send data to \(n.host.base)'s DNS servers in the labels (at most 100 questions a second); allow a wildcard only for a zone you trust")
                    }
                }
                line("  DNS stub at \(stub.address):53 (udp, tcp), the only resolver: asks \(list(stub.upstream)) (\(stub.upstreamSource)) only for these names; any other name gets NXDOMAIN without being sent on; HTTPS/SVCB and other record types are refused; DNS (53, 853) to any other address is dropped")
                line("  an answer in \(list(stub.denyResolved)) (network.deny_resolved and the fixed ranges) opens nothing")
                if let check = stub.serverNameCheck {
                    let covered = check.rules.map { "\($0.host) \(list($0.ports.map(String.init)))" }
                    line("  server name check on the TCP ports of host rules (\(list(covered))): the first data of each connection must name, in its TLS server_name or a plain HTTP Host, a name that resolved to that address in this run and is allowed on that port; a mismatched name, a connection without one and an encrypted ClientHello (ECH) are reset and listed in sniDenied")
                }
            }
            line("  no broad rule opens this host's addresses, the sandbox bridge (other runs), link-local (cloud metadata), loopback or multicast; only a rule naming the address exactly")
            let rate = plan.network.connections.map { ", and at most \($0.perSecond) new ones a second (burst \($0.burst))" } ?? ""
            line("  at most \(policy.network.maxConnections) connections at once (network.max_connections)\(rate); new ones over either are refused (connection_limit, connection_rate in egressDenied)")
        }
        line()

        line("Limits:")
        let r = plan.resources
        line("  memory: \(r.memoryBytes.map(Explanation.bytes) ?? "unlimited")\(r.memoryBytes != nil ? " (swap \(Explanation.bytes(r.swapBytes ?? 0)))" : "")")
        line("  processes: \(r.pids.map(String.init) ?? "unlimited")")
        if let q = r.cpuQuotaUs, let per = r.cpuPeriodUs {
            line("  cpu: \(Double(q) / Double(per)) cores")
        } else { line("  cpu: unlimited") }
        if let io = r.ioWeight { line("  io weight: \(io)") }
        for l in p.rlimits { line("  rlimit \(l.name): \(l.soft == UInt64.max ? "unlimited" : String(l.soft))") }
        if !r.bestEffort.isEmpty { line("  may be skipped if the host lacks them: \(list(r.bestEffort))") }
        if let log = plan.audit.path {
            line()
            line("Audit: each run is recorded in \(log) before it starts and when it ends, hash-chained (\(plan.audit.keyFile.map { "HMAC-SHA256, key \($0)" } ?? "SHA-256, no key")); a run whose start cannot be recorded does not start")
        }
        if plan.binary.isActive {
            let b = plan.binary
            let rules = [b.requireRootOwned ? "owned by root or the invoker" : nil,
                         b.rejectWritable ? "not group- or world-writable, nor any directory above it" : nil,
                         b.rejectSetuid ? "not setuid or setgid" : nil].compactMap { $0 }
            line()
            line("Binary: the command (and a #! script's interpreter) is found as the sandbox sees it, opened once and run from that descriptor; refused with 126 unless it is \(rules.isEmpty ? "as pinned" : rules.joinedText(separator: "; "))")
            for (path, digest) in b.pin.sorted(by: { $0.key < $1.key }) { line("  pin \(path) = \(digest)") }
        }
        if !plan.notApplied.isEmpty {
            line()
            line("NOT APPLIED on this host (best-effort):")
            for n in plan.notApplied { line("  - \(n)") }
        }
        return out.joinedText(separator: "\n")
    }

    static func duration(_ ms: UInt64) -> String {
        if ms % 3_600_000 == 0 { return "\(ms / 3_600_000)h" }
        if ms % 60_000 == 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }

    static func bytes(_ b: UInt64) -> String {
        let units: [(UInt64, String)] = [(1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        for (size, name) in units where b >= size && b % size == 0 { return "\(b / size) \(name)" }
        return "\(b) B"
    }
}
