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

    /// Besides termios (red-team review): the line discipline (N_NULL leaves a dead
    /// terminal) and stopped output. Prints the line discipline after the run and
    /// whether a write to the terminal still comes out.
    static let ldiscDriver = """
        import os, sys, fcntl, struct, select
        argv = sys.argv[1:]
        m, s = os.openpty()
        pid = os.fork()
        if pid == 0:
            for fd in (0, 1, 2): os.dup2(s, fd)
            os.close(m)
            if s > 2: os.close(s)
            os.execv(argv[0], argv)
        os.waitpid(pid, 0)
        ld = struct.unpack('i', fcntl.ioctl(s, 0x5424, b'\\0' * 4))[0]
        while select.select([m], [], [], 0.2)[0]:
            try:
                if not os.read(m, 4096): break
            except OSError:
                break
        fcntl.fcntl(s, fcntl.F_SETFL, os.O_NONBLOCK)
        try:
            os.write(s, b'ping')
        except OSError:
            pass
        got = os.read(m, 100) if select.select([m], [], [], 1.0)[0] else b''
        print(ld, b'ping' in got)
        """

    @Test func lineDisciplineAndFlowAreRestored() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        guard Harness.require(FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap"), "bwrap") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let attack = ["/usr/bin/python3", "-c",
                      "import fcntl, struct, termios; termios.tcflow(0, termios.TCOOFF); fcntl.ioctl(0, 0x5423, struct.pack('i', 27))"]
        let out = try Harness.run("/usr/bin/python3", ["-c", Self.ldiscDriver, Harness.binary, "exec", "--policy", Self.policy(in: dir), "--"] + attack, cwd: dir)
        #expect(out.stdout == "0 True\n", "sandbox: \(out.stdout) \(out.stderr)")
        // Control: under bwrap the terminal is left dead.
        let bwrap = ["/usr/bin/bwrap", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
                     "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev", "--new-session", "--"]
        let control = try Harness.run("/usr/bin/python3", ["-c", Self.ldiscDriver] + bwrap + attack, cwd: dir)
        #expect(control.stdout == "27 False\n", "control: \(control.stdout) \(control.stderr)")
    }

    /// With `new_session = false` the command is in the invoker's session and can make
    /// its own group the terminal's foreground one, so that a restore keyed on the
    /// current foreground group would skip (red-team review): the saved group is put
    /// back and the modes restored.
    @Test func takingTheForegroundDoesNotKeepTheModes() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let dir = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let policy = Harness.policy("""
            name = "terminal-shared"
            extends = ["\(Harness.repoRoot)/Policies/agent.toml"]
            [process]
            new_session = false
            """, in: dir, name: "terminal-shared.toml")
        let grab = "import os, signal, termios; os.setpgid(0, 0); signal.signal(signal.SIGTTOU, signal.SIG_IGN); " +
            "os.tcsetpgrp(0, os.getpgrp()); a = termios.tcgetattr(0); a[3] &= ~(termios.ECHO | termios.ICANON); " +
            "termios.tcsetattr(0, termios.TCSANOW, a)"
        let out = try Self.run(ctty: true, [Harness.binary, "exec", "--policy", policy, "--", "/usr/bin/python3", "-c", grab], cwd: dir)
        #expect(out.stdout == "same 0\n", "\(out.stdout) \(out.stderr)")
        // Control: the attack does change the terminal (no sandbox; and the previous
        // restore, keyed on the foreground group at the end, left it "changed").
        let plain = try Self.run(ctty: true, ["/bin/sh", "-c", "/usr/bin/python3 -c \"$0\"", grab], cwd: dir)
        #expect(plain.stdout == "changed 0\n", "control: \(plain.stdout) \(plain.stderr)")
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
