import Foundation
import Testing

/// The invoker's session keyring stays out of the command's reach: a process
/// possesses its session keyring whatever its uid, so before the child joined a fresh
/// one a policy that allows keyctl let the command search, read and link the keys of
/// whoever ran `sandbox exec`. The test makes a session keyring of its own (never the
/// host's) with one key in it, then runs the same probe outside the sandbox (the
/// control: it finds the key) and inside, namespaced and nested (it must not).
@Suite(.serialized) struct KeyringTests {
    static let keyctlNumbers = """
        import ctypes, errno, platform, sys
        libc = ctypes.CDLL(None, use_errno=True)
        ADD_KEY, KEYCTL = {'x86_64': (248, 250), 'aarch64': (217, 219)}[platform.machine()]
        SESSION = ctypes.c_long(-3)   # KEY_SPEC_SESSION_KEYRING
        """

    /// Prints `key=found` or `key=ERRNO` for a search of the session keyring.
    static let probe = keyctlNumbers + "\n" + """
        r = libc.syscall(KEYCTL, 10, SESSION, b"user", b"sandbox-test-key", 0)   # KEYCTL_SEARCH
        print('key=found' if r >= 0 else 'key=' + errno.errorcode.get(ctypes.get_errno(), '?'), flush=True)
        """

    /// Joins a new session keyring of its own, adds the key, then runs argv under it.
    static let wrapper = keyctlNumbers + "\n" + """
        import subprocess
        if libc.syscall(KEYCTL, 1, b"sandbox-test-keyring") < 0:       # KEYCTL_JOIN_SESSION_KEYRING
            sys.exit('join: ' + errno.errorcode.get(ctypes.get_errno(), '?'))
        if libc.syscall(ADD_KEY, b"user", b"sandbox-test-key", b"secret", 6, SESSION) < 0:
            sys.exit('add_key: ' + errno.errorcode.get(ctypes.get_errno(), '?'))
        sys.exit(subprocess.run(sys.argv[1:]).returncode)
        """

    static func policy(isolation: String, in dir: String) -> String {
        Harness.policy("""
            name = "keyring-\(isolation)"
            extends = ["\(Harness.repoRoot)/Policies/base.toml"]
            [process]
            isolation = "\(isolation)"
            [filesystem]
            rw = ["{cwd}"]
            [seccomp]
            profile = "none"
            deny = ["!keyctl", "!add_key", "!request_key"]
            """, in: dir, name: "keyring-\(isolation).toml")
    }

    @Test(arguments: ["namespaces", "nested"])
    func commandCannotReachTheInvokersSessionKeyring(isolation: String) throws {
        let work = Harness.tempDir()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let policy = Self.policy(isolation: isolation, in: work)

        // Control: the same probe, a child of the same parent outside the sandbox.
        let control = try Harness.run("/usr/bin/python3", ["-c", Self.wrapper, "python3", "-c", Self.probe], cwd: work)
        #expect(control.status == 0 && control.stdout.contains("key=found"),
                "control: the key is not found outside: \(control.status) \(control.stdout) \(control.stderr)")

        let out = try Harness.run("/usr/bin/python3", ["-c", Self.wrapper, Harness.binary, "exec", "--policy", policy,
                                                       "--", "python3", "-c", Self.probe], cwd: work)
        #expect(out.status == 0, "\(isolation): \(out.status) \(out.stderr)")
        #expect(out.stdout.contains("key=ENOKEY"), "\(isolation): the command reached the invoker's key: \(out.stdout) \(out.stderr)")
    }
}
