import Foundation
import Testing
import SandboxExecutor
import SandboxKernel
import SandboxPlan
import SandboxPolicy

/// The library as a harness embeds it: many `Executor`s at once, each on a thread of
/// its own, in one process (this one, as root). Every descriptor a run opens has one
/// owner and is closed once; before that, a second `close` of a number another run
/// had reused made runs fail with `waitid pidfd N: Bad file descriptor`, a broken
/// seccomp listener hand-over, EBADF on `cgroup.procs`, or a wrong exit code.
@Suite struct ConcurrencyTests {
    static let threads = 16
    /// Runs per thread (SANDBOX_CONCURRENCY_RUNS overrides).
    static let runsPerThread = Int(ProcessInfo.processInfo.environment["SANDBOX_CONCURRENCY_RUNS"] ?? "") ?? 63

    /// What one run does and what its result must say.
    enum Job: CustomStringConvertible {
        /// `exit code` under a policy (agent with a memory limit, strict, base, and
        /// agent-net: an egress network of its own).
        case exit(policy: String, code: Int32)
        /// on_violation = "notify": a denied unshare(2) is answered EPERM and listed;
        /// then `exit code`.
        case notify(code: Int32)
        /// The payload kills itself: 128 + 9.
        case killed
        /// `sleep 30` under a 1 s timeout: SIGTERM, 143 (137 if it came too early).
        case timeout
        /// `sleep 30`, ended from another thread with `Executor.signal(SIGTERM)`.
        case signalled

        var description: String {
            switch self {
            case .exit(let p, let c): return "\(p): exit \(c)"
            case .notify(let c): return "notify: exit \(c)"
            case .killed: return "kill -9 $$"
            case .timeout: return "timeout"
            case .signalled: return "Executor.signal"
            }
        }
    }

    struct Outcome {
        var thread: Int, index: Int, job: Job, runId: String, result: RunResult?, planError: String?
    }

    final class Collector: @unchecked Sendable { // guarded by lock
        let lock = NSLock()
        var outcomes: [Outcome] = []
        func add(_ o: Outcome) { lock.lock(); outcomes.append(o); lock.unlock() }
        var count: Int { lock.lock(); defer { lock.unlock() }; return outcomes.count }
        var snapshot: [Outcome] { lock.lock(); defer { lock.unlock() }; return outcomes }
    }

    /// Wrapper policies over the shipped ones, working in `ws` instead of the test
    /// process's cwd (the executor opens `{cwd}` binds from the process's own cwd,
    /// which a test must not chdir).
    static func policies(ws: String) -> [String: String] {
        let agent = Harness.policy("""
            version = 1
            name = "conc-agent"
            extends = ["agent"]
            [process]
            workdir = "\(ws)"
            [filesystem]
            rw = ["!{cwd}", "\(ws)"]
            [resources]
            memory = "256MiB"
            """, in: ws, name: "conc-agent.toml")
        let notify = Harness.policy("""
            version = 1
            name = "conc-notify"
            extends = ["conc-agent.toml"]
            [seccomp]
            on_violation = "notify"
            """, in: ws, name: "conc-notify.toml")
        let timeout = Harness.policy("""
            version = 1
            name = "conc-timeout"
            extends = ["conc-agent.toml"]
            [process]
            timeout = "1s"
            grace = "2s"
            """, in: ws, name: "conc-timeout.toml")
        let net = Harness.policy("""
            version = 1
            name = "conc-net"
            extends = ["agent-net", "conc-agent.toml"]
            """, in: ws, name: "conc-net.toml")
        let strict = Harness.policy("""
            version = 1
            name = "conc-strict"
            extends = ["strict"]
            [process]
            workdir = "/"
            [filesystem]
            ro = ["!{cwd}"]
            """, in: ws, name: "conc-strict.toml")
        return ["agent": agent, "notify": notify, "timeout": timeout, "strict": strict, "base": "base", "net": net]
    }

    static func hostFacts() -> HostFacts {
        let probe = HostProbe.probe()
        var facts = HostFacts(arch: probe.arch, kernelRelease: probe.kernelRelease, landlockABI: probe.landlockABI,
                              invokerUID: probe.uid, invokerGID: probe.gid, cwd: probe.cwd, home: probe.home,
                              environment: probe.environment, files: HostFiles())
        facts.cwdIdentity = MountSources.workingDirectoryIdentity().map { FileIdentity(device: $0.device, inode: $0.inode) }
        facts.runBase = "/run/sandbox"
        return facts
    }

    static func newRunId() -> String {
        (0..<6).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    /// The job of run `index` on thread `t`: every thread gets a mix; exit codes are
    /// distinct per thread and run.
    static func job(thread t: Int, index i: Int) -> Job {
        let code = Int32(1 + (t * runsPerThread + i) % 120)
        switch i {
        case 0 where t % 4 == 0: return .timeout
        case 0 where t % 4 == 1: return .signalled
        case 1: return .exit(policy: "net", code: code)
        default: break
        }
        switch (t + i) % 6 {
        case 0, 1: return .exit(policy: "agent", code: code)
        case 2: return .notify(code: code)
        case 3: return .exit(policy: "strict", code: code)
        case 4: return .exit(policy: "base", code: code)
        default: return i % 2 == 0 ? .killed : .exit(policy: "agent", code: code)
        }
    }

    /// Anonymous-inode descriptors only a run opens (pidfd, signalfd, the Landlock
    /// ruleset, the seccomp listener) that are open in this process now.
    static func runDescriptors() -> [String] {
        let dir = "/proc/self/fd"
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).compactMap { name in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/\(name)") else { return nil }
            let kinds = ["pidfd", "signalfd", "landlock", "seccomp"]
            return kinds.contains(where: target.contains) ? "\(name) -> \(target)" : nil
        }
    }

    @Test func sixteenExecutorsOnSixteenThreads() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let paths = Self.policies(ws: ws)
        let loader = PolicyLoader(searchPath: [Harness.repoRoot + "/Policies"],
                                  profileSearchPath: [Harness.repoRoot + "/Profiles/seccomp"])
        var loaded: [String: Policy] = [:]
        for (key, path) in paths {
            loaded[key] = try loader.load(path: try loader.resolve(nameOrPath: path, relativeTo: ws))
        }
        let policies = loaded
        let compiler = PlanCompiler(host: Self.hostFacts())
        let netPlan = try compiler.compile(policies["net"]!, argv: ["true"], runId: Self.newRunId(), digest: false)
        #expect(netPlan.network.mode == .egress && netPlan.resources.needsCgroup, "the net runs have no egress network or no cgroup")
        let collector = Collector()
        let descriptorsBefore = Self.runDescriptors()
        let started = Date()

        let done = DispatchGroup()
        for t in 0..<Self.threads {
            done.enter()
            // A thread of its own for the whole of its runs: PDEATHSIG is per thread.
            let thread = Thread {
                defer { done.leave() }
                for i in 0..<Self.runsPerThread {
                    let job = Self.job(thread: t, index: i)
                    let (policyKey, argv): (String, [String]) = {
                        switch job {
                        case .exit(let p, let c): return (p, ["sh", "-c", "exit \(c)"])
                        case .notify(let c): return ("notify", ["sh", "-c", "unshare -r true 2>/dev/null; exit \(c)"])
                        case .killed: return ("agent", ["sh", "-c", "kill -9 $$"])
                        case .timeout: return ("timeout", ["sleep", "30"])
                        case .signalled: return ("agent", ["sleep", "30"])
                        }
                    }()
                    let runId = Self.newRunId()
                    let plan: RunPlan
                    do { plan = try compiler.compile(policies[policyKey]!, argv: argv, runId: runId, digest: false) } catch {
                        collector.add(Outcome(thread: t, index: i, job: job, runId: runId, result: nil, planError: "\(error)"))
                        continue
                    }
                    var options = ExecOptions(runBase: "/run/sandbox", seccompCacheDir: "/run/sandbox/.seccomp-cache")
                    options.restoreTerminal = false
                    // Half the threads as a harness should run them, half as the CLI does.
                    options.forwardSignals = t % 2 == 0
                    let executor = Executor(plan: plan, options: options)
                    var signaller: Thread?
                    let finished = NSCondition()
                    final class Flag: @unchecked Sendable { var done = false } // guarded by `finished`
                    let flag = Flag()
                    if case .signalled = job {
                        // Until the run ends: the sandbox init forwards signals only
                        // once it is the reaper, so the first may come too early.
                        signaller = Thread {
                            finished.lock()
                            while !flag.done {
                                finished.unlock()
                                _ = executor.signal(SIGTERM)
                                finished.lock()
                                _ = finished.wait(until: Date().addingTimeInterval(0.2))
                            }
                            finished.unlock()
                        }
                        signaller?.start()
                    }
                    let result = executor.run()
                    finished.lock(); flag.done = true; finished.broadcast(); finished.unlock()
                    collector.add(Outcome(thread: t, index: i, job: job, runId: runId, result: result, planError: nil))
                }
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        // A run that never ends (two helpers each holding the other's pipe, as
        // before) fails the test instead of hanging the suite.
        let allEnded = done.wait(timeout: .now() + .seconds(300)) == .success
        let seconds = Date().timeIntervalSince(started)
        #expect(allEnded, "runs still going after 300 s: \(collector.count) of \(Self.threads * Self.runsPerThread) ended")

        // Every result exactly right.
        let outcomes = collector.snapshot
        var failures: [String] = []
        for o in outcomes {
            guard let r = o.result else { failures.append("t\(o.thread)#\(o.index) \(o.job): plan: \(o.planError ?? "")"); continue }
            var wrong: [String] = []
            if let e = r.error { wrong.append("error \(e.message)") }
            switch o.job {
            case .exit(_, let c):
                if r.exitCode != c || r.signal != nil { wrong.append("exit \(r.exitCode) signal \(String(describing: r.signal))") }
            case .notify(let c):
                if r.exitCode != c { wrong.append("exit \(r.exitCode)") }
                if !r.violations.contains(where: { $0.syscall == "unshare" }) {
                    wrong.append("violations \(r.violations.map { $0.syscall ?? "?" })")
                }
            case .killed:
                if r.exitCode != 137 || r.signal != 9 { wrong.append("exit \(r.exitCode) signal \(String(describing: r.signal))") }
            case .timeout:
                // 143: SIGTERM forwarded by the init; 137 only if the timeout fired
                // before the init forwards signals (SIGKILL after the grace period).
                if !r.timedOut || (r.exitCode != 143 && r.exitCode != 137) { wrong.append("timedOut \(r.timedOut) exit \(r.exitCode)") }
            case .signalled:
                if r.timedOut || r.exitCode != 143 || r.signal != 15 {
                    wrong.append("timedOut \(r.timedOut) exit \(r.exitCode) signal \(String(describing: r.signal))")
                }
            }
            if r.runId != o.runId { wrong.append("runId \(r.runId)") }
            if !wrong.isEmpty { failures.append("t\(o.thread)#\(o.index) \(o.job): " + wrong.joined(separator: ", ")) }
        }
        let total = Self.threads * Self.runsPerThread
        print("ConcurrencyTests: \(outcomes.count) runs on \(Self.threads) threads in \(String(format: "%.1f", seconds)) s; \(failures.count) wrong")
        #expect(outcomes.count == total)
        #expect(failures.isEmpty, "\(failures.count) of \(total) runs wrong:\n\(failures.prefix(25).joined(separator: "\n"))")

        // Nothing left behind: run directories, cgroups, uid leases, veths, descriptors.
        guard allEnded else { return }
        let ids = Set(outcomes.map(\.runId))
        let base = "/run/sandbox"
        let entries = Set((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [])
        let leftDirs = ids.filter { entries.contains($0) || entries.contains(".\($0).new") }
        #expect(leftDirs.isEmpty, "run directories left: \(leftDirs.sorted())")
        let leftCgroups = Set(RunCgroup.existingRunIds(host: CgroupHost.probe())).intersection(ids)
        #expect(leftCgroups.isEmpty, "cgroups left: \(leftCgroups.sorted())")
        let uids = "\(base)/.uids"
        let leftLeases = ((try? FileManager.default.contentsOfDirectory(atPath: uids)) ?? []).filter { name in
            let holder = (try? String(contentsOfFile: "\(uids)/\(name)", encoding: .utf8))?
                .split(separator: "\n").first.map(String.init)
            return holder.map(ids.contains) ?? false
        }
        #expect(leftLeases.isEmpty, "uid leases left: \(leftLeases)")
        let leftLinks = ids.filter { !EgressTests.linksGone(for: $0) }
        #expect(leftLinks.isEmpty, "host veths left: \(leftLinks)")
        let descriptorsAfter = Self.runDescriptors()
        #expect(descriptorsAfter.count <= descriptorsBefore.count,
                "descriptors left open: \(Set(descriptorsAfter).subtracting(descriptorsBefore).sorted())")
    }

    /// One Executor runs once: a second `run()` is refused and starts nothing.
    @Test func anExecutorRunsOnce() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let loader = PolicyLoader(searchPath: [Harness.repoRoot + "/Policies"],
                                  profileSearchPath: [Harness.repoRoot + "/Profiles/seccomp"])
        let policy = try loader.load(nameOrPath: "base")
        let plan = try PlanCompiler(host: Self.hostFacts()).compile(policy, argv: ["sh", "-c", "exit 5"], runId: Self.newRunId())
        var options = ExecOptions(runBase: "/run/sandbox")
        options.restoreTerminal = false
        let executor = Executor(plan: plan, options: options)
        #expect(executor.signal(SIGTERM) == false, "nothing to signal before the run")
        let first = executor.run()
        #expect(first.exitCode == 5 && first.error == nil, "\(first.error?.message ?? "")")
        #expect(executor.signal(SIGTERM) == false, "nothing to signal after the run")
        let second = executor.run()
        #expect(second.exitCode == 125 && second.error?.message.contains("already run") == true, "\(second.error?.message ?? "")")
        #expect(!FileManager.default.fileExists(atPath: "/run/sandbox/\(plan.runId)"))
    }

    /// The executor closes descriptors only through their owners: no raw close(2)
    /// (`close(fd)`, `FD.close`, `Glibc.close`) in SandboxExecutor.
    @Test func theExecutorClosesOnlyThroughOwners() throws {
        let dir = Harness.repoRoot + "/Sources/SandboxExecutor"
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".swift") }
        #expect(files.contains("Executor.swift"))
        let raw = try NSRegularExpression(pattern: #"(?<![A-Za-z_.])close\s*\(|\bFD\.close\s*\(|Glibc\.close\s*\("#)
        for name in files {
            let code = LintTests.stripComments(try String(contentsOfFile: "\(dir)/\(name)", encoding: .utf8))
            let hits = raw.numberOfMatches(in: code, range: NSRange(code.startIndex..., in: code))
            #expect(hits == 0, "\(name): \(hits) raw close calls; close through the descriptor's owner (OwnedFD)")
        }
        // Control: the pattern finds what it is for.
        let sample = "FD.close(fd); close(x); Glibc.close(y); owner.close()"
        #expect(raw.numberOfMatches(in: sample, range: NSRange(sample.startIndex..., in: sample)) == 3)
    }

    /// The umask is the process's and is not the run's business: with 077 (common for
    /// root) mkdir made the run directory 0700 and the run's own uid could not reach
    /// its root ("mount the root tmpfs: Permission denied", 125).
    @Test func aRestrictiveUmaskStillRuns() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let policy = Self.policies(ws: ws)["agent"]!
        let out = try Harness.run("/bin/sh", ["-c", "umask 077 && exec \"$0\" exec --policy \"$1\" -- sh -c 'exit 6'",
                                              Harness.binary, policy], cwd: ws)
        #expect(out.status == 6, "\(out.stderr)")
    }

    /// One CLI run closes no descriptor twice: under strace, no close(2) fails with
    /// EBADF (before, 16 did: the pipes, the socketpair and the bind trees were
    /// closed by hand and again by their undo entries).
    @Test func oneCLIRunClosesNothingTwice() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        guard Harness.require(FileManager.default.isExecutableFile(atPath: "/usr/bin/strace"), "strace (apt-get install strace)") else { return }
        let ws = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: ws) }
        let paths = Self.policies(ws: ws)
        for key in ["agent", "notify"] {
            let trace = "\(ws)/../\(UUID().uuidString).strace"
            defer { try? FileManager.default.removeItem(atPath: trace) }
            let out = try Harness.run("/usr/bin/strace", ["-f", "-e", "trace=close", "-o", trace, Harness.binary,
                                                          "exec", "--policy", paths[key]!, "--", "sh", "-c", "unshare -r true 2>/dev/null; exit 4"],
                                      cwd: ws)
            #expect(out.status == 4, "\(key): \(out.stderr)")
            let text = (try? String(contentsOfFile: trace, encoding: .utf8)) ?? ""
            let closes = text.split(separator: "\n").filter { $0.contains("close(") }
            let ebadf = closes.filter { $0.contains("EBADF") }
            #expect(closes.count > 10, "\(key): strace saw \(closes.count) close calls")
            #expect(ebadf.isEmpty, "\(key): \(ebadf.count) closes of a descriptor not open:\n\(ebadf.prefix(20).joined(separator: "\n"))")
        }
    }
}
