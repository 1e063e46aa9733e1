import Foundation
import Testing

/// Issue 5, acceptance 8: no PID is ever used to address a process. The product code
/// must not call kill(2) on a pid nor build a /proc/<pid>/ path; pidfds, flocked run
/// directories and cgroup files are the only handles. (/proc/self and
/// /proc/thread-self name the caller itself and are fine.)
@Suite struct LintTests {
    static func sourceFiles() -> [(path: String, text: String)] {
        let root = Harness.repoRoot + "/Sources"
        guard let walker = FileManager.default.enumerator(atPath: root) else { return [] }
        var out: [(String, String)] = []
        for case let rel as String in walker where [".swift", ".c", ".h"].contains(where: rel.hasSuffix) {
            if let text = try? String(contentsOfFile: "\(root)/\(rel)", encoding: .utf8) { out.append((rel, text)) }
        }
        return out
    }

    /// Code without // and /* */ comments, so prose about kill(2) does not count.
    static func stripComments(_ text: String) -> String {
        var s = text.replacingOccurrences(of: #"/\*[\s\S]*?\*/"#, with: "", options: .regularExpression)
        s = s.replacingOccurrences(of: #"//[^\n]*"#, with: "", options: .regularExpression)
        return s
    }

    /// The files a lint reads: a walk that finds nothing (a moved root, a wrong
    /// suffix) would let every lint pass, so it must find files of each kind,
    /// the ones that hold the child and the supervisor among them.
    static func checkedSourceFiles() throws -> [(path: String, text: String)] {
        let files = sourceFiles()
        let paths = Set(files.map(\.path))
        for known in ["CSandbox/child.c", "CSandbox/include/sandbox_child.h", "SandboxExecutor/Executor.swift"] {
            try #require(paths.contains(known), "the lint's file walk misses \(known) (found \(files.count) files)")
        }
        return files
    }

    /// A lint pattern is only worth something if it compiles and catches the thing it
    /// forbids: each is tried on a known-bad sample (and a fine one) first.
    static func checkPattern(_ pattern: String, catches bad: [String], allows fine: [String]) throws {
        for sample in bad { #expect(try sample.matches(of: pattern) > 0, "\(pattern) misses \(sample)") }
        for sample in fine { #expect(try sample.matches(of: pattern) == 0, "\(pattern) flags \(sample)") }
    }

    static let killCall = #"(?<![A-Za-z_.])kill\s*\("#

    @Test func neverKillsByPid() throws {
        try Self.checkPattern(Self.killCall, catches: ["kill(pid, SIGKILL);", "if (kill (p, 0) == 0)", "_ = kill(pid, 9)"],
                              allows: ["sbx_pidfd_send_signal(fd, 9)", "pidfd.kill(9)", "killed(run)", "skill (x)"])
        for (path, text) in try Self.checkedSourceFiles() {
            var code = Self.stripComments(text)
            if path == Self.scopedSweep.file { code = code.replacingOccurrences(of: Self.scopedSweep.call, with: "") }
            #expect(try code.matches(of: Self.killCall) == 0, "\(path) calls kill(): use pidfd_send_signal on a pidfd")
        }
    }

    /// The one kill(2) allowed: the nested reaper's sweep, `kill(-1, SIGKILL)`. It names
    /// no pid: the reaper's own Landlock domain (signal scope) is the address, and
    /// holds exactly the run's processes (child.c, anchor_signals / end_leftovers).
    static let scopedSweep = (file: "CSandbox/child.c", call: "kill(-1, SIGKILL)")

    /// The one exception: a user namespace's id maps can only be written through
    /// /proc/<pid>/{uid,gid}_map, and another process's oom_score_adj through
    /// /proc/<pid>/oom_score_adj, so `sbx_mounts_write_maps` and
    /// `sbx_mounts_write_oom_score_adj` write those files of the supervisor's own
    /// clone3'd child, which it has not reaped (its pid cannot name another process);
    /// and a sandbox built ahead is looked at from the host through the root of that
    /// same unreaped child (`sbx_mounts_open_root`: no pidfd opens a process's root).
    /// Nothing else of /proc/<pid> is allowed, there or elsewhere, but the next two.
    static let idMapWriter = (file: "CSandbox/mounts.c",
                              allowed: [#""/proc/%d/uid_map""#, #""/proc/%d/gid_map""#, #""/proc/%d/oom_score_adj""#,
                                        #""/proc/%d/root""#])

    /// And a nested run's explicit file times (TimesFence.procPath): the caller's fd
    /// and cwd, of a seccomp notification's caller held in its call, each open
    /// followed by SECCOMP_IOCTL_NOTIF_ID_VALID (a reused pid is caught).
    static let timesCaller = (file: "SandboxKernel/TimesFence.swift",
                              allowed: [#""/proc/\(v.pid)/cwd""#, #""/proc/\(v.pid)/fd/\(fd)""#])

    /// And `gc`'s question whether a process still runs as a stale run's leased uid
    /// (`UidLease.inUse`): the status of every process /proc lists, read, never acted
    /// on (no signal, no open of anything else); a pid reused between the listing and
    /// the read answers for the new process, which is as true at that moment.
    static let uidScanner = (file: "SandboxKernel/UidLease.swift",
                             allowed: [#""/proc/\(entry.name)/status""#])

    /// A /proc/<pid> path built in Swift ("/proc/\(pid)"), in C ("/proc/%d"), by
    /// concatenation, or written out.
    static let procPidPatterns: [(pattern: String, bad: String)] = [
        (#"/proc/\\\("#, #"let p = "/proc/\(pid)/status""#),
        (#"/proc/%"#, #"snprintf(buf, n, "/proc/%d/status", pid);"#),
        (#""/proc/"\s*\+"#, #"let p = "/proc/" + String(pid)"#),
        (#"/proc/[0-9]"#, #"open("/proc/1/environ")"#),
    ]

    @Test func neverReadsAnotherProcessProc() throws {
        for (pattern, bad) in Self.procPidPatterns {
            try Self.checkPattern(pattern, catches: [bad], allows: [#"open("/proc/self/status")"#, #""/proc/thread-self/attr""#])
        }
        for (path, text) in try Self.checkedSourceFiles() {
            var code = Self.stripComments(text)
            for exception in [Self.idMapWriter, Self.timesCaller, Self.uidScanner] where path == exception.file {
                for a in exception.allowed {
                    #expect(try code.matches(of: NSRegularExpression.escapedPattern(for: a)) == 1, "\(path): expected exactly one \(a)")
                    code = code.replacingOccurrences(of: a, with: "")
                }
            }
            for (pattern, _) in Self.procPidPatterns {
                #expect(try code.matches(of: pattern) == 0, "\(path) builds a /proc/<pid> path (\(pattern))")
            }
        }
    }
}

extension String {
    /// How often `pattern` matches; a pattern that does not compile throws (and fails
    /// the test) instead of counting as "no match".
    func matches(of pattern: String) throws -> Int {
        try NSRegularExpression(pattern: pattern).numberOfMatches(in: self, range: NSRange(startIndex..., in: self))
    }
}
