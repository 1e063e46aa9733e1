import Foundation
import Testing

/// on_violation = "kill": the run ends with SIGSYS and the result names the syscall
/// (issue 6); the denied call never returns to the command.
@Suite struct ViolationTests {
    @Test func killNamesTheSyscall() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let policy = Harness.policy("""
            name = "kill-test"
            extends = ["\(Harness.repoRoot)/Policies/agent.toml"]
            [seccomp]
            on_violation = "kill"
            """, in: dir)
        let probe = """
            import ctypes
            print("before", flush=True)
            libc = ctypes.CDLL(None, use_errno=True)
            libc.syscall(101, 16, 1, 0, 0)   # ptrace(PTRACE_ATTACH, 1)
            print("after", flush=True)
            """
        let out = try Harness.exec(policy: policy, ["python3", "-c", probe], cwd: dir)
        #expect(out.stdout == "before\n", "the command ran past the denied call: \(out.stdout)")
        #expect(out.status == 128 + 31)
        #expect(out.result?["signal"] as? Int == 31)
        let error = out.result?["error"] as? [String: Any]
        #expect((error?["message"] as? String)?.contains("ptrace") == true, "\(out.result ?? [:])")
        #expect(error?["kind"] as? String == "violation" && error?["subject"] as? String == "ptrace", "\(out.result ?? [:])")
        let v = (out.result?["violations"] as? [[String: Any]]) ?? []
        #expect(v.count == 1 && v.first?["syscall"] as? String == "ptrace" && v.first?["count"] as? Int == 1, "\(v)")
        #expect((v.first?["args"] as? [Int])?.prefix(2) == [16, 1])
    }

    /// The sandbox's own set-up hands the filter's listener to the supervisor with
    /// sendmsg(2) after loading the filter; a filter with a listener that refuses
    /// sendmsg is refused at once (125, naming sendmsg). In notify, kill and log modes
    /// the run used to wait for its listener until its timeout (137, "timed out", the
    /// command never started) or for good (red team, session 47); in errno mode (a
    /// listener for connect's account) it failed with a bare EPERM of the hand-off.
    /// Control: with network mode egress there is no listener in errno mode, and the
    /// same deny list runs.
    @Test func aFilterThatWouldHoldItsOwnListenerIsRefused() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir(), pol = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir); try? FileManager.default.removeItem(atPath: pol) }
        for mode in ["notify", "kill", "log", "errno"] {
            let policy = Harness.policy("""
                name = "listener-\(mode)"
                extends = ["\(Harness.repoRoot)/Policies/agent.toml"]
                [process]
                timeout = "3s"
                [seccomp]
                on_violation = "\(mode)"
                deny = ["sendmsg"]
                """, in: pol, name: "listener-\(mode).toml")
            let out = try Harness.exec(policy: policy, ["touch", "ran"], cwd: dir)
            #expect(out.status == 125 && out.stderr.contains("sendmsg"), "\(mode): \(out.status) \(out.stderr)")
            #expect(out.result?["timedOut"] as? Bool != true, "\(mode): the run waited for its timeout")
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/ran"))
        }
        let noListener = Harness.policy("""
            name = "listener-none"
            extends = ["\(Harness.repoRoot)/Policies/agent.toml"]
            [seccomp]
            deny = ["sendmsg"]
            [network]
            mode = "egress"
            """, in: pol, name: "listener-none.toml")
        let out = try Harness.exec(policy: noListener, ["touch", "ran"], cwd: dir)
        #expect(out.status == 0 && FileManager.default.fileExists(atPath: "\(dir)/ran"), "control: \(out.status) \(out.stderr)")
    }

    /// Under `on_violation = "log"` a call outside the profile runs (and is recorded),
    /// but a setuid or setgid bit stays refused: with a profile that does not allow
    /// chmod, chmod 04755 got through before (red team, session 47), as the log mode's
    /// answer to what reached the supervisor. Control: chmod 0755 runs there.
    @Test func logModeStillRefusesSetuidBitsOutsideTheProfile() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir(), pol = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir); try? FileManager.default.removeItem(atPath: pol) }
        let shipped = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(Harness.repoRoot)/Profiles/seccomp/default.json"))) as! [String: Any]
        var profile = shipped
        let modeSetters: Set<String> = ["chmod", "fchmod", "fchmodat", "fchmodat2"]
        profile["syscalls"] = (shipped["syscalls"] as! [[String: Any]]).compactMap { rule -> [String: Any]? in
            var rule = rule
            rule["names"] = (rule["names"] as? [String] ?? []).filter { !modeSetters.contains($0) }
            return (rule["names"] as! [String]).isEmpty ? nil : rule
        }
        try JSONSerialization.data(withJSONObject: profile).write(to: URL(fileURLWithPath: "\(pol)/no-chmod.json"))
        let policy = Harness.policy("""
            name = "log-setuid"
            extends = ["\(Harness.repoRoot)/Policies/agent.toml"]
            [seccomp]
            profile = "\(pol)/no-chmod.json"
            on_violation = "log"
            """, in: pol, name: "log-setuid.toml")
        let probe = """
            import os
            for name, mode in (("plain", 0o755), ("setuid", 0o4755)):
                open(name, "w").close()
                try:
                    os.chmod(name, mode)
                    print(name, oct(os.stat(name).st_mode & 0o7777))
                except OSError as e:
                    print(name, e.errno)
            """
        let out = try Harness.exec(policy: policy, ["python3", "-c", probe], cwd: dir)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout == "plain 0o755\nsetuid 1\n", "\(out.stdout) \(out.stderr)")
    }

    @Test func errnoModeLetsTheCommandGoOn() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = try Harness.exec(policy: "\(Harness.repoRoot)/Policies/agent.toml", ["python3", "-c", """
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            r = libc.syscall(101, 16, 1, 0, 0)
            print(r, ctypes.get_errno())
            """], cwd: dir)
        #expect(out.stdout == "-1 1\n", "ptrace under errno mode: \(out.stdout) \(out.stderr)")
        #expect(out.status == 0)
    }

    /// on_violation = "log": the call runs (allowed) and every one is counted.
    @Test func logAllowsAndCounts() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let policy = Harness.policy("""
            name = "log-test"
            extends = ["\(Harness.repoRoot)/Policies/agent.toml"]
            [seccomp]
            on_violation = "log"
            """, in: dir)
        let out = try Harness.exec(policy: policy, ["python3", "-c", """
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            for _ in range(2):
                print(libc.syscall(101, 0, 0, 0, 0), ctypes.get_errno())   # ptrace(PTRACE_TRACEME)
            """], cwd: dir)
        // The first TRACEME succeeds; the second fails with EPERM from the kernel's own
        // check (already traced) — which shows the calls really ran.
        #expect(out.stdout == "0 0\n-1 1\n", "\(out.stdout) \(out.stderr)")
        let v = (out.result?["violations"] as? [[String: Any]]) ?? []
        #expect(v.first?["syscall"] as? String == "ptrace" && v.first?["count"] as? Int == 2, "\(v)")
    }
}
