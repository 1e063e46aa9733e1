import Foundation
import Testing

/// Issue 12, item 6: the command inherits the invoker's terminal on stdin/stdout/
/// stderr and, even without it as controlling terminal, can change its attributes
/// (`stty raw -echo`: TCSETS). The supervisor puts them back when the run ends —
/// normally, on timeout, on a forwarded signal. Controls: the same command under
/// bwrap, and with no sandbox at all, leaves the terminal changed.
@Suite struct TerminalTests {
    /// Runs `argv` with a fresh pty's slave as stdin, stdout and stderr and prints
    /// "same"/"changed" (the slave's termios after vs before) and the exit status.
    /// `ctty`: the pty is the command's controlling terminal (pty.fork: a new session,
    /// foreground), as in an interactive shell; else it is only inherited descriptors.
    /// `term`: SIGTERM to the command after that many seconds.
    static let driver = """
        import os, sys, termios, threading, time, signal
        ctty = sys.argv[1] == 'ctty'
        term = float(sys.argv[2])
        argv = sys.argv[3:]
        m, s = os.openpty()
        before = termios.tcgetattr(s)
        pid = os.fork()
        if pid == 0:
            if ctty:
                os.setsid()
                import fcntl
                fcntl.ioctl(s, termios.TIOCSCTTY, 0)
            for fd in (0, 1, 2): os.dup2(s, fd)
            os.close(m)
            if s > 2: os.close(s)
            os.execv(argv[0], argv)
        def drain():
            while True:
                try:
                    if not os.read(m, 4096): break
                except OSError:
                    break
        threading.Thread(target=drain, daemon=True).start()
        if term > 0:
            time.sleep(term)
            os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
        after = termios.tcgetattr(s)
        print('same' if after == before else 'changed', os.waitstatus_to_exitcode(status))
        """

    static func run(ctty: Bool = false, term: Double = 0, _ argv: [String], cwd: String) throws -> Harness.Output {
        try Harness.run("/usr/bin/python3", ["-c", driver, ctty ? "ctty" : "plain", String(term)] + argv, cwd: cwd)
    }

    static func policy(in dir: String, timeout: String = "10m") -> String {
        Harness.policy("""
            name = "terminal"
            extends = ["\(Harness.repoRoot)/Policies/agent.toml"]
            [process]
            timeout = "\(timeout)"
            grace = "1s"
            """, in: dir, name: "terminal.toml")
    }

    @Test func attributesAreRestoredWhenTheRunEnds() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sandbox = [Harness.binary, "exec", "--policy", Self.policy(in: dir), "--"]

        // Normal end, with the pty as the invoker's controlling terminal and without.
        for ctty in [true, false] {
            let out = try Self.run(ctty: ctty, sandbox + ["/usr/bin/stty", "raw", "-echo"], cwd: dir)
            #expect(out.stdout == "same 0\n", "ctty \(ctty): \(out.stdout) \(out.stderr)")
        }
        // A signal to the supervisor (forwarded; the command dies of it).
        let signalled = try Self.run(term: 1.5, sandbox + ["/bin/sh", "-c", "stty raw -echo; sleep 30"], cwd: dir)
        #expect(signalled.stdout == "same 143\n", "SIGTERM: \(signalled.stdout) \(signalled.stderr)")
        // Timeout.
        let timed = try Self.run([Harness.binary, "exec", "--policy", Self.policy(in: dir, timeout: "1s"), "--",
                                  "/bin/sh", "-c", "stty raw -echo; trap '' TERM; sleep 30"], cwd: dir)
        #expect(timed.stdout == "same 137\n", "timeout: \(timed.stdout) \(timed.stderr)")
    }

    @Test func withoutRestorationTheTerminalStaysChanged() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Control: no sandbox at all.
        let plain = try Self.run(["/usr/bin/stty", "raw", "-echo"], cwd: dir)
        #expect(plain.stdout == "changed 0\n", "\(plain.stdout) \(plain.stderr)")
        // Control: bwrap with a session of its own (as `new_session`) does not restore.
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") {
            let bw = try Self.run(["/usr/bin/bwrap", "--dev-bind", "/", "/", "--unshare-pid", "--new-session",
                                   "/usr/bin/stty", "raw", "-echo"], cwd: dir)
            #expect(bw.stdout == "changed 0\n", "bwrap: \(bw.stdout) \(bw.stderr)")
        }
    }
}
