import Foundation
import Testing

/// Issue 12, items 1 and 3 and the per-run bounds: what a command could make the
/// supervisor hold or write, and the kernel information /proc shows inside. Each
/// attack runs for real; each has a control showing the attack works where the fix is
/// not in the way.
///
/// Needs root (and x86_64 for the syscall numbers); a missing requirement fails the
/// test unless SANDBOX_TESTS_ALLOW_SKIP=1.
@Suite struct LeakTests {
    static func ready() -> Bool {
        #if arch(x86_64)
        return Harness.require(Harness.isRoot, "root")
        #else
        return Harness.require(false, "x86_64 (the probes use x86_64 syscall numbers)")
        #endif
    }

    static func notifyPolicy(in dir: String, extra: String = "") -> String {
        Harness.policy("""
            name = "leak-notify"
            extends = ["\(Harness.repoRoot)/Policies/agent.toml"]
            [seccomp]
            on_violation = "notify"
            \(extra)
            """, in: dir, name: "leak-notify.toml")
    }

    /// Memory of a process, from /proc/<pid>/status (kB).
    struct Memory { var hwm: Int; var rssAnon: Int }

    static func memory(of pid: Int32) -> Memory? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        func field(_ name: String) -> Int? {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return nil }
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        guard let hwm = field("VmHWM"), let anon = field("RssAnon") else { return nil }
        return Memory(hwm: hwm, rssAnon: anon)
    }

    /// Runs `sandbox exec` (started here, so its pid is known) and samples its memory
    /// every 100 ms until it exits.
    static func execSampling(policy: String, _ argv: [String], cwd: String, timeout: TimeInterval = 120)
        throws -> (out: Harness.Output, samples: [(t: Double, m: Memory)], resultBytes: Int) {
        let resultFile = NSTemporaryDirectory() + "sbx-leak-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: resultFile) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Harness.binary)
        p.arguments = ["exec", "--policy", policy, "--result", resultFile, "--"] + argv
        p.currentDirectoryURL = URL(fileURLWithPath: cwd)
        let outPipe = Pipe(), errPipe = Pipe()
        p.standardOutput = outPipe
        p.standardError = errPipe
        p.standardInput = FileHandle.nullDevice
        try p.run()
        final class Box: @unchecked Sendable { var data = Data() }
        let outBox = Box(), errBox = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { outBox.data = outPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { errBox.data = errPipe.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let start = Date()
        var samples: [(Double, Memory)] = []
        while p.isRunning && Date().timeIntervalSince(start) < timeout {
            if let m = memory(of: p.processIdentifier) { samples.append((Date().timeIntervalSince(start), m)) }
            usleep(100_000)
        }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) } // our own child, not yet reaped
        p.waitUntilExit()
        group.wait()
        var out = Harness.Output(status: p.terminationStatus, stdout: String(decoding: outBox.data, as: UTF8.self),
                                 stderr: String(decoding: errBox.data, as: UTF8.self))
        let data = FileManager.default.contents(atPath: resultFile) ?? Data()
        if !data.isEmpty { out.result = try JSONSerialization.jsonObject(with: data) as? [String: Any] }
        if !data.isEmpty { Harness.keepSample(data, kind: .runResult) }
        return (out, samples, data.count)
    }

    static func violations(_ r: [String: Any]?) -> [[String: Any]] { r?["violations"] as? [[String: Any]] ?? [] }

    // MARK: 1. Unbounded supervisor memory

    /// The flood of the report: syscall(1000 + i), a new number every call, for 15 s
    /// under on_violation = "notify" — interleaved with a known denied call
    /// (ptrace(PTRACE_ATTACH, 1), every 200th call) whose every occurrence must be
    /// counted exactly.
    ///
    /// Why 15 s bounds the 2-minute case: unknown numbers are answered ENOSYS by the
    /// BPF filter and never reach the supervisor, so they cost it nothing at all; known
    /// ones go to `ViolationLog`, whose state is capped (256 entries, 32 argument lists
    /// each, 2048 in all) and otherwise only counters — O(1) in the number of calls.
    /// The test checks that flatness directly: anonymous memory after the first
    /// seconds does not grow for the rest of the flood (millions of calls), so eight
    /// times as long cannot reach the bound either.
    @Test func syscallFloodKeepsSupervisorMemoryAndResultBounded() throws {
        guard Self.ready() else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let flood = """
            import ctypes, time, sys
            libc = ctypes.CDLL(None, use_errno=True)
            sc = libc.syscall
            sc.restype = ctypes.c_long
            end = time.monotonic() + float(sys.argv[1])
            i = unknown = enosys = denied = eperm = 0
            while time.monotonic() < end:
                for _ in range(200):
                    r = sc(1000 + i, 0, 0, 0, 0, 0); unknown += 1
                    if r == -1 and ctypes.get_errno() == 38: enosys += 1
                    i += 1
                r = sc(101, 16, 1, i, 0, 0); denied += 1
                if r == -1 and ctypes.get_errno() == 1: eperm += 1
            print(unknown, enosys, denied, eperm, flush=True)
            time.sleep(0.5)
            """
        let run = try Self.execSampling(policy: Self.notifyPolicy(in: dir), ["python3", "-c", flood, "15"], cwd: dir)
        let counts = run.out.stdout.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        try #require(counts.count == 4, "flood output: \(run.out.stdout) \(run.out.stderr)")
        let (unknown, enosys, denied, eperm) = (counts[0], counts[1], counts[2], counts[3])
        #expect(run.out.status == 0, "stderr: \(run.out.stderr)")
        #expect(unknown > 100_000, "the flood made only \(unknown) calls")
        // Every unknown number was answered ENOSYS (by the filter: the supervisor answers EPERM).
        #expect(enosys == unknown, "\(unknown) unknown calls, \(enosys) ENOSYS")
        // Every known denied call reached the supervisor and was counted, exactly.
        #expect(eperm == denied && denied > 1000, "\(denied) ptrace calls, \(eperm) EPERM")
        let r = run.out.result
        let v = Self.violations(r)
        let ptrace = v.first { $0["syscall"] as? String == "ptrace" }
        #expect(ptrace?["count"] as? Int == denied, "ptrace entry: \(String(describing: ptrace))")
        #expect(r?["violationsTotal"] as? Int == v.reduce(0) { $0 + ($1["count"] as? Int ?? 0) } + (r?["violationsDropped"] as? Int ?? -1))
        #expect((r?["violationsTotal"] as? Int ?? 0) >= denied)
        #expect(v.count <= 256 && !v.contains { ($0["syscall"] as? String ?? "").hasPrefix("nr_") }, "\(v.count) entries")
        #expect((ptrace?["calls"] as? [Any])?.count == 32)
        #expect(run.resultBytes < 1 << 20, "result: \(run.resultBytes) bytes")

        // Memory: the supervisor's anonymous memory (what the flood used to grow, to
        // 190 MB) stays small and flat. VmHWM also counts the shared libraries'
        // file pages (≈ 30 MiB for a debug build, the same idle), so it is checked
        // for growth after start-up.
        let samples = run.samples
        try #require(samples.count > 50, "only \(samples.count) memory samples")
        let peakAnon = samples.map(\.m.rssAnon).max()!
        #expect(peakAnon < 16 * 1024, "supervisor RssAnon peaked at \(peakAnon) kB")
        let early = samples.first { $0.t >= 3 } ?? samples[0]
        let last = samples.last!
        #expect(last.m.hwm - early.m.hwm < 2 * 1024,
                "VmHWM grew from \(early.m.hwm) kB at \(early.t) s to \(last.m.hwm) kB at \(last.t) s")
        #expect(last.m.rssAnon - early.m.rssAnon < 1024,
                "RssAnon grew from \(early.m.rssAnon) kB to \(last.m.rssAnon) kB during the flood")
    }

    /// x86_64 syscall numbers by name, from the host's kernel headers.
    static func syscallNumbers() -> [String: Int] {
        guard let text = try? String(contentsOfFile: "/usr/include/x86_64-linux-gnu/asm/unistd_64.h", encoding: .utf8)
        else { return [:] }
        var out: [String: Int] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("#define __NR_") {
            let parts = line.split(separator: " ")
            if parts.count == 3, let n = Int(parts[2]) { out[String(parts[1].dropFirst(5))] = n }
        }
        return out
    }

    /// More distinct syscalls than the entry cap: a profile that allows only what
    /// python needs, and a script that calls every other number 0…1023 for 50 rounds.
    /// Those the kernel's tables name reach the supervisor (more than 256 of them:
    /// the control that the attack can exceed the cap); the result lists 256, counts
    /// the rest in violationsDropped, and every total is exact.
    @Test func distinctSyscallsBeyondTheCapAreCountedNotListed() throws {
        guard Self.ready() else { return }
        let numbers = Self.syscallNumbers()
        guard Harness.require(numbers.count > 300, "/usr/include/x86_64-linux-gnu/asm/unistd_64.h") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let allow = ["access", "arch_prctl", "brk", "close", "execve", "fcntl", "futex", "getcwd", "getdents64",
                     "getegid", "geteuid", "getgid", "getrandom", "gettid", "getuid", "ioctl", "lseek", "mmap",
                     "mprotect", "munmap", "newfstatat", "openat", "pread64", "prlimit64", "read", "readlink", "rseq",
                     "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "set_robust_list", "set_tid_address", "sysinfo",
                     "write", "exit", "exit_group", "sendmsg", "sigaltstack", "clock_gettime", "madvise", "mremap",
                     "fstat", "stat", "lstat", "statx", "dup", "dup2", "dup3", "pipe2", "getpid", "getppid", "uname",
                     "faccessat", "faccessat2", "sched_getaffinity", "sched_yield", "clock_nanosleep", "nanosleep",
                     "gettimeofday", "close_range", "readv", "writev"]
        let profile = "\(Harness.policyDir(for: dir))/tiny.json"
        let json: [String: Any] = ["defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                                   "syscalls": [["names": allow, "action": "SCMP_ACT_ALLOW"]]]
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: profile))
        let policy = Self.notifyPolicy(in: dir, extra: "profile = \"\(profile)\"")
        // Skipped: the allowed ones (they would run), and uretprobe/uprobe (335, 336),
        // which the kernel lets past seccomp and answers with SIGILL outside a probe.
        let skip = (allow.compactMap { numbers[$0] } + [335, 336]).map(String.init).joined(separator: ",")
        let script = """
            import ctypes, sys
            libc = ctypes.CDLL(None, use_errno=True)
            sc = libc.syscall
            sc.restype = ctypes.c_long
            skip = set(int(x) for x in sys.argv[1].split(','))
            eperm = enosys = 0
            for _ in range(int(sys.argv[2])):
                for nr in range(0, 1024):
                    if nr in skip: continue
                    r = sc(nr, 0, 0, 0, 0, 0)
                    e = ctypes.get_errno()
                    if r == -1 and e == 1: eperm += 1
                    elif r == -1 and e == 38: enosys += 1
            print(eperm, enosys, flush=True)
            """
        let rounds = 50
        let out = try Harness.exec(policy: policy, ["/usr/bin/python3", "-c", script, skip, "\(rounds)"], cwd: dir)
        let counts = out.stdout.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        try #require(counts.count == 2 && out.status == 0, "status \(out.status): \(out.stdout) \(out.stderr)")
        let eperm = counts[0]
        let r = out.result
        let v = Self.violations(r)
        let total = r?["violationsTotal"] as? Int ?? -1
        let dropped = r?["violationsDropped"] as? Int ?? -1
        // Control: more distinct syscalls than the cap reached the supervisor.
        #expect(eperm / rounds > 256, "only \(eperm / rounds) distinct syscalls reached the supervisor")
        #expect(v.count == 256, "\(v.count) entries")
        #expect(dropped > 0)
        #expect(total == v.reduce(0) { $0 + ($1["count"] as? Int ?? 0) } + dropped, "total \(total), dropped \(dropped)")
        // Every call the script saw answered by the supervisor was counted (python's
        // own start-up makes none the profile denies, or a handful at most).
        #expect(total >= eperm && total - eperm < 50, "total \(total), the script saw \(eperm) EPERM")
        let recordedCalls = v.reduce(0) { $0 + (($1["calls"] as? [Any])?.count ?? 0) }
        #expect(recordedCalls <= 2048)
        let bytes = (try? JSONSerialization.data(withJSONObject: r ?? [:]).count) ?? Int.max
        #expect(bytes < 1 << 20, "result \(bytes) bytes")
    }

    // MARK: 3. Kernel information in /proc, and the reaper's argv

    /// /proc files with host kernel information, masked inside (item 3's list, plus
    /// what Docker masks). Each must be unreadable, empty or absent inside.
    static let maskedProc = [
        "kpageflags", "kpagecount", "kpagecgroup", "slabinfo", "vmallocinfo", "config.gz", "interrupts",
        "timer_list", "sched_debug", "latency_stats", "kcore", "kallsyms", "keys", "iomem", "ioports",
        "buddyinfo", "pagetypeinfo", "zoneinfo", "kmsg",
    ]

    /// Reads up to 64 bytes of each /proc file: "name bytes" or "name errno".
    static let readProc = """
        import os, sys
        for name in sys.argv[1:]:
            try:
                fd = os.open('/proc/' + name, os.O_RDONLY | os.O_NONBLOCK)
                try: n = len(os.read(fd, 64))
                finally: os.close(fd)
                print(name, 'bytes', n)
            except OSError as e:
                print(name, 'errno', e.errno)
        """

    static func parse(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count == 3 { out[String(f[0])] = f[1] == "bytes" ? "bytes \(f[2])" : "errno \(f[2])" }
        }
        return out
    }

    @Test func hostKernelInformationIsMaskedInProc() throws {
        guard Self.ready() else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // As the invoker's own uid (root): the case where the kernel's own checks
        // (root-only files) do not hide anything.
        let policy = Harness.policy("""
            name = "leak-proc"
            extends = ["\(Harness.repoRoot)/Policies/agent.toml"]
            [process]
            host_uid = "invoker"
            """, in: dir, name: "leak-proc.toml")
        let out = try Harness.exec(policy: policy, ["python3", "-c", Self.readProc] + Self.maskedProc, cwd: dir)
        #expect(out.status == 0, "stderr: \(out.stderr)")
        let inside = Self.parse(out.stdout)
        #expect(inside.count == Self.maskedProc.count, "\(out.stdout) \(out.stderr)")
        for name in Self.maskedProc {
            let r = inside[name] ?? "none"
            #expect(r == "bytes 0" || r == "errno 13" || r == "errno 1" || r == "errno 2", "/proc/\(name) inside: \(r)")
        }

        // Control: a plain new PID namespace with its own /proc (unshare, as root) and
        // bwrap's --proc show them: the files the issue names are readable there.
        let control = try Harness.run("/usr/bin/unshare", ["-p", "-f", "--mount-proc", "/usr/bin/python3", "-c", Self.readProc]
                                      + Self.maskedProc)
        let plain = Self.parse(control.stdout)
        var readable = 0
        for name in ["kpageflags", "kpagecount", "slabinfo", "vmallocinfo", "interrupts", "zoneinfo", "buddyinfo", "iomem"] {
            guard let r = plain[name] else { continue }
            #expect(r.hasPrefix("bytes") && r != "bytes 0", "control: /proc/\(name) under unshare: \(r)")
            if r.hasPrefix("bytes"), r != "bytes 0" { readable += 1 }
        }
        #expect(readable >= 5, "control read too few: \(control.stdout) \(control.stderr)")
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") {
            let bw = try Harness.run("/usr/bin/bwrap", ["--dev-bind", "/", "/", "--unshare-pid", "--proc", "/proc",
                                                         "/usr/bin/python3", "-c", Self.readProc, "slabinfo", "interrupts"])
            let b = Self.parse(bw.stdout)
            #expect(b["slabinfo"]?.hasPrefix("bytes") == true && b["interrupts"]?.hasPrefix("bytes") == true,
                    "control: bwrap --proc: \(bw.stdout) \(bw.stderr)")
        }
    }

    /// /proc/1/cmdline inside is the reaper's: "sandbox-init", not the supervisor's
    /// argv with the policy path and the --result path.
    @Test func reaperShowsNoSupervisorArgv() throws {
        guard Self.ready() else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let token = "secret-\(UUID().uuidString.prefix(8))"
        let policy = Harness.policy("""
            name = "leak-argv"
            extends = ["\(Harness.repoRoot)/Policies/agent.toml"]
            """, in: dir, name: "leak-argv-\(token).toml")
        let resultFile = NSTemporaryDirectory() + "sbx-\(token).json"
        defer { try? FileManager.default.removeItem(atPath: resultFile) }
        let script = """
            import os
            for f in ('cmdline', 'comm', 'environ'):
                try:
                    print(f, repr(open('/proc/1/' + f, 'rb').read()))
                except OSError as e:
                    print(f, 'errno', e.errno)
            import time; time.sleep(1)
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Harness.binary)
        p.arguments = ["exec", "--policy", policy, "--result", resultFile, "--", "python3", "-c", script]
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        let outPipe = Pipe()
        p.standardOutput = outPipe
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        // Control: the supervisor's own cmdline (host view) holds the token; the
        // reaper is a copy of it that never execs, so without the fix it shows the same.
        usleep(300_000)
        let host = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(p.processIdentifier)/cmdline"))) ?? Data()
        let out = String(decoding: outPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(String(decoding: host, as: UTF8.self).contains(token), "control: the supervisor's cmdline lacks the token")
        #expect(out.contains("cmdline b'sandbox-init"), "inside: \(out)")
        #expect(!out.contains(token), "the supervisor's argv leaked: \(out)")
        #expect(out.contains("comm b'sandbox-init\\n'"), "inside: \(out)")
        #expect(p.terminationStatus == 0)

        // Control: a fork that does not exec shows its parent's argv in its cmdline.
        let fork = try Harness.run("/usr/bin/python3", ["-c", """
            import os, sys, time
            pid = os.fork()
            if pid == 0:
                time.sleep(2); os._exit(0)
            time.sleep(0.2)
            print(open('/proc/%d/cmdline' % pid, 'rb').read() == open('/proc/self/cmdline', 'rb').read())
            os.waitpid(pid, 0)
            """, token])
        #expect(fork.stdout == "True\n", "control: \(fork.stdout) \(fork.stderr)")
    }

    // MARK: Run directory size

    /// argv is the one thing of any size the run directory records about a command:
    /// state.json keeps at most 4 KiB of it (plan.json, the plan itself, all of it).
    @Test func stateJSONRecordsABoundedArgv() throws {
        guard Self.ready() else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let token = "argv-\(UUID().uuidString.prefix(8))"
        let big = String(repeating: "x", count: 10_000)
        let argv = ["sh", "-c", "sleep 2", token] + Array(repeating: big, count: 100)
        let policy = Harness.policy("""
            name = "leak-state"
            extends = ["\(Harness.repoRoot)/Policies/agent.toml"]
            """, in: dir, name: "leak-state.toml")
        final class Box: @unchecked Sendable { var out: Harness.Output? } // written before signal, read after wait
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            box.out = try? Harness.exec(policy: policy, argv, cwd: dir)
            done.signal()
        }
        var stateSize = -1, planSize = -1, stateText = ""
        for _ in 0..<40 where planSize <= 0 {
            usleep(100_000)
            for id in Harness.runDirEntries() {
                let path = "/run/sandbox/\(id)/state.json"
                guard let text = try? String(contentsOfFile: path, encoding: .utf8), text.contains(token),
                      text.contains("\"running\"") else { continue }
                stateText = text
                stateSize = text.utf8.count
                planSize = (try? FileManager.default.attributesOfItem(atPath: "/run/sandbox/\(id)/plan.json")[.size] as? Int) ?? -1
            }
        }
        done.wait()
        let out = box.out
        #expect(out?.status == 0, "\(out?.stderr ?? "")")
        #expect(stateSize > 0 && stateSize < 8 * 1024, "state.json: \(stateSize) bytes")
        #expect(stateText.contains("…+"), "state.json does not say arguments were left out")
        // Control: the command line really was a megabyte (the plan keeps it all).
        #expect(planSize > 1_000_000, "plan.json: \(planSize) bytes")
    }
}
