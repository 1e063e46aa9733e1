import Foundation
import Testing

/// Issue 12, item 4: a unix socket under an `ro` bind is connectable, because the
/// kernel checks only write permission on the socket inode and ignores the mount's
/// read-only flag (bwrap is the same). The planner searches `ro` binds and masks
/// every socket it finds (SandboxPlan/SocketScan.swift), unless `unix_sockets` lists
/// it. Each test attacks for real: a host process listens on a world-connectable
/// (0777) and a root-only (0600) socket, and the command inside tries to connect.
/// Controls show the attack working without the fix: under bwrap, and under this
/// sandbox with the search switched off for that tree (`socket_scan_skip`, which is
/// what every run did before) — with `host_uid = "invoker"` even root's 0600 socket.
@Suite struct UnixSocketTests {
    static var agent: String { "\(Harness.repoRoot)/Policies/agent.toml" }

    /// `python3 connect.py PATH…`: one `PATH RESULT` line each, RESULT `OK` or the
    /// errno's name; `PATH sock` when the path inside is (still) a socket.
    static let probe = """
        import errno, os, socket, stat, sys
        for p in sys.argv[1:]:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(5)
            try:
                s.connect(p)
                r = "OK"
            except OSError as e:
                r = errno.errorcode.get(e.errno, str(e.errno))
            print(p, r, flush=True)
            try:
                print(p + ":kind", "sock" if stat.S_ISSOCK(os.lstat(p).st_mode) else "other", flush=True)
            except OSError as e:
                print(p + ":kind", errno.errorcode.get(e.errno, str(e.errno)), flush=True)
        """

    /// Host sockets listening in a directory of their own (0755, root's): `world.sock`
    /// (0777), `root.sock` (0600) and `sub/deep.sock` (0777). Nothing accepts; the
    /// backlog holds every connection the tests make.
    final class HostSockets {
        let dir = Harness.tempDir()
        var fds: [Int32] = []
        var world: String { "\(dir)/world.sock" }
        var root: String { "\(dir)/root.sock" }
        var deep: String { "\(dir)/sub/deep.sock" }
        var all: [String] { [world, root, deep] }

        init() {
            try! FileManager.default.createDirectory(atPath: "\(dir)/sub", withIntermediateDirectories: true)
            chmod("\(dir)/sub", 0o755)
            for (path, mode) in [(world, 0o777), (root, 0o600), (deep, 0o777)] {
                let fd = Harness.bindUnixSocket(path)
                #expect(fd >= 0 && listen(fd, 512) == 0, "listen on \(path): \(String(cString: strerror(errno)))")
                chmod(path, mode_t(mode))
                fds.append(fd)
            }
        }

        func remove() {
            for fd in fds { close(fd) }
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    /// The command's working directory (rw under agent) holding the probe.
    struct Project {
        let dir: String
        init(owner: UInt32? = nil) {
            dir = Harness.tempDir(owner: owner)
            try! UnixSocketTests.probe.write(toFile: "\(dir)/connect.py", atomically: true, encoding: .utf8)
            chmod("\(dir)/connect.py", 0o644)
        }
        func remove() { try? FileManager.default.removeItem(atPath: dir) }

        /// A policy extending agent.toml with a [filesystem] table (and more).
        func policy(_ name: String, _ filesystem: String, extra: String = "") -> String {
            let path = Harness.policy("extends = [\"\(UnixSocketTests.agent)\"]\n\(extra)\n[filesystem]\n\(filesystem)\n",
                                      in: dir, name: "\(name).toml")
            chmod(path, 0o644)
            return path
        }

        func connect(_ policy: String, _ paths: [String], asUser: (uid: UInt32, runtimeDir: String)? = nil) throws -> (Harness.Output, [String: String]) {
            let out = try Harness.exec(policy: policy, ["python3", "connect.py"] + paths, cwd: dir, asUser: asUser)
            return (out, UnixSocketTests.results(out.stdout))
        }
    }

    static func results(_ stdout: String) -> [String: String] {
        var r: [String: String] = [:]
        for line in stdout.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            if parts.count == 2 { r[parts[0]] = parts[1] }
        }
        return r
    }

    static func ready() -> Bool {
        Harness.require(Harness.isRoot, "root (the tests listen on root-owned sockets and use setpriv)")
            && Harness.require(FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "/usr/bin/python3 (the probe)")
    }

    static func quoted(_ paths: [String]) -> String { "[" + paths.map { "\"\($0)\"" }.joined(separator: ", ") + "]" }

    /// agent with `ro` of the sockets' directory: every socket there is masked (an
    /// empty mode-000 file), so connect fails, also as host_uid = "invoker" (root,
    /// capabilities dropped), which the owner bits of root.sock would otherwise let in.
    @Test func socketsUnderAnROBindAreHidden() throws {
        guard Self.ready() else { return }
        let s = HostSockets(), p = Project()
        defer { s.remove(); p.remove() }

        for (name, extra) in [("ro-own", ""), ("ro-invoker", "[process]\nhost_uid = \"invoker\"")] {
            let policy = p.policy(name, "ro = [\"\(s.dir)\"]", extra: extra)
            let (out, r) = try p.connect(policy, s.all)
            #expect(out.status == 0, "\(name): stderr: \(out.stderr)")
            for path in s.all {
                #expect(r[path] == "EACCES", "\(name): connect \(path) inside: \(r[path] ?? "no result"); \(out.stdout)")
                #expect(r[path + ":kind"] == "other", "\(name): \(path) is still a socket inside")
            }
            let plan = try Harness.sandbox(["plan", "--policy", policy], cwd: p.dir)
            for path in s.all { #expect(plan.stdout.contains("\"destination\" : \"\(path)\""), "no mask step for \(path)") }
        }

        // CONTROL 1, this sandbox without the search (the tree vouched for, as every
        // ro bind was before): the world-connectable socket is reached under the
        // default host uid, and as host_uid = "invoker" root's 0600 one too.
        let offOwn = p.policy("off-own", "ro = [\"\(s.dir)\"]\nsocket_scan_skip = [\"\(s.dir)\"]")
        let (oout, o) = try p.connect(offOwn, s.all)
        #expect(oout.status == 0, "stderr: \(oout.stderr)")
        #expect(o[s.world] == "OK" && o[s.deep] == "OK", "control (no search, own uid): \(oout.stdout)")
        #expect(o[s.root] == "EACCES", "control (no search, own uid): root's 0600 socket: \(o[s.root] ?? "no result")")
        let offInvoker = p.policy("off-invoker", "ro = [\"\(s.dir)\"]\nsocket_scan_skip = [\"\(s.dir)\"]",
                                  extra: "[process]\nhost_uid = \"invoker\"")
        let (iout, i) = try p.connect(offInvoker, s.all)
        #expect(s.all.allSatisfy { i[$0] == "OK" }, "control (no search, host_uid = invoker): \(iout.stdout) \(iout.stderr)")

        // CONTROL 2, bubblewrap's read-only bind: every socket is connectable.
        guard Harness.require(FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap"), "bwrap (the control)") else { return }
        let bwrap = try Harness.run("/usr/bin/bwrap", [
            "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev",
            "--ro-bind", s.dir, s.dir, "--ro-bind", p.dir, p.dir, "--chdir", p.dir, "--cap-drop", "ALL",
            "python3", "connect.py"] + s.all)
        let b = Self.results(bwrap.stdout)
        #expect(s.all.allSatisfy { b[$0] == "OK" }, "control (bwrap --ro-bind): \(bwrap.stdout) \(bwrap.stderr)")
    }

    /// Attack (red team, session 37): two sockets whose names read the same (é as one
    /// scalar, or e and a combining accent) are two files to the kernel and one
    /// `String` to Swift; the search's sets merged them and one stayed connectable.
    /// Both are hidden. Control: without the search, both connect.
    @Test func twoSocketsWhoseNamesReadTheSameAreBothHidden() throws {
        guard Self.ready() else { return }
        let p = Project(), dir = Harness.tempDir()
        defer { p.remove(); try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o755)
        let paths = [dir + "/\u{E9}", dir + "/e\u{301}"]
        #expect(paths[0] == paths[1] && Array(paths[0].utf8) != Array(paths[1].utf8), "the premise: one String, two names")
        var fds: [Int32] = []
        defer { for fd in fds { close(fd) } }
        for path in paths {
            let fd = Harness.bindUnixSocket(path)
            #expect(fd >= 0 && listen(fd, 16) == 0, "listen on \(path): \(String(cString: strerror(errno)))")
            chmod(path, 0o777)
            fds.append(fd)
        }
        // One line per argument, by index (the names are one key to a Swift dictionary).
        let probe = "import socket, sys\nfor i, p in enumerate(sys.argv[1:]):\n    s = socket.socket(socket.AF_UNIX)\n    try:\n        s.connect(p); print(i, 'OK')\n    except OSError as e:\n        print(i, e.errno)\n"
        try probe.write(toFile: p.dir + "/byindex.py", atomically: true, encoding: .utf8)
        func connect(_ policy: String) throws -> [String] {
            let out = try Harness.exec(policy: policy, ["python3", "byindex.py"] + paths, cwd: p.dir)
            #expect(out.status == 0, "stderr: \(out.stderr)")
            return out.stdout.split(separator: "\n").map { String($0.split(separator: " ").last ?? "") }
        }
        let hidden = try connect(p.policy("same-names", "ro = [\"\(dir)\"]"))
        #expect(hidden.count == 2 && !hidden.contains("OK"), "a socket whose name reads like another's was connectable: \(hidden)")
        let open = try connect(p.policy("same-names-off", "ro = [\"\(dir)\"]\nsocket_scan_skip = [\"\(dir)\"]"))
        #expect(open == ["OK", "OK"], "control (no search): \(open)")
    }

    /// Listed in `unix_sockets` (the socket, or a directory of sockets), it connects;
    /// the others stay hidden.
    @Test func listedInUnixSocketsConnects() throws {
        guard Self.ready() else { return }
        let s = HostSockets(), p = Project()
        defer { s.remove(); p.remove() }
        let one = p.policy("one", "ro = [\"\(s.dir)\"]\nunix_sockets = [\"\(s.world)\"]")
        let (out, r) = try p.connect(one, s.all)
        #expect(out.status == 0, "stderr: \(out.stderr)")
        #expect(r[s.world] == "OK", "listed socket: \(r[s.world] ?? "no result"); \(out.stderr)")
        #expect(r[s.root] == "EACCES" && r[s.deep] == "EACCES", "unlisted sockets: \(out.stdout)")

        let dir = p.policy("dir", "ro = [\"\(s.dir)\"]\nunix_sockets = [\"\(s.dir)/sub\"]")
        let (dout, d) = try p.connect(dir, s.all)
        #expect(d[s.deep] == "OK" && d[s.world] == "EACCES", "directory in unix_sockets: \(dout.stdout) \(dout.stderr)")
    }

    /// A socket named directly in `ro` (the `-v docker.sock:…:ro` mistake) is refused,
    /// saying why; so is a tree over the search limit, naming the ways out.
    @Test func socketInROAndSearchOverTheLimitAreRefused() throws {
        guard Self.ready() else { return }
        let s = HostSockets(), p = Project()
        defer { s.remove(); p.remove() }
        let direct = p.policy("direct", "ro = [\"\(s.world)\"]")
        let (out, _) = try p.connect(direct, [s.world])
        #expect(out.status == 125, "stdout: \(out.stdout)")
        #expect(out.stderr.contains("\(s.world) is a unix socket; a read-only bind does not stop connect(2)"), "stderr: \(out.stderr)")
        #expect(out.stderr.contains("filesystem.unix_sockets"), "stderr: \(out.stderr)")

        // The limit counts every searched tree; base's /etc ones are left out here.
        let small = p.policy("small", "ro = [\"\(s.dir)\"]\nsocket_scan_limit = 3\nsocket_scan_skip = [\"/etc\"]")
        let (sout, _) = try p.connect(small, s.all)
        #expect(sout.status == 125 && sout.stdout.isEmpty, "stdout: \(sout.stdout)")
        #expect(sout.stderr.contains("\(s.dir) cannot be searched for unix sockets (more than 3 directory entries)")
                && sout.stderr.contains("socket_scan_skip") && sout.stderr.contains("socket_scan_limit"), "stderr: \(sout.stderr)")
        let enough = p.policy("enough", "ro = [\"\(s.dir)\"]\nsocket_scan_limit = 4\nsocket_scan_skip = [\"/etc\"]")
        let (eout, e) = try p.connect(enough, s.all)
        #expect(eout.status == 0 && e[s.world] == "EACCES", "4 entries (3 sockets and sub/): \(eout.stdout) \(eout.stderr)")
    }

    /// A socket bind-mounted over a regular file does not show in the directory's
    /// listing (it lists the covered file); the search reads the mount table and finds
    /// it. The mount lives in a private mount namespace that the sandbox is started in.
    @Test func aSocketMountedOverAFileIsHidden() throws {
        guard Self.ready(), Harness.require(FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"), "unshare (util-linux)") else { return }
        let s = HostSockets(), p = Project()
        defer { s.remove(); p.remove() }
        let file = "\(s.dir)/plain"
        FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        func run(_ policy: String) throws -> [String: String] {
            let out = try Harness.run("/usr/bin/unshare", ["--mount", "--propagation", "private", "sh", "-c",
                                                           "mount --bind \"$1\" \"$2\" && exec \"$3\" exec --policy \"$4\" -- python3 connect.py \"$2\"",
                                                           "sh", s.world, file, Harness.binary, policy], cwd: p.dir)
            #expect(out.status == 0, "stderr: \(out.stderr)")
            return Self.results(out.stdout)
        }
        let hidden = try run(p.policy("mounted", "ro = [\"\(s.dir)\"]"))
        #expect(hidden[file] == "EACCES", "socket mounted over \(file): \(hidden)")
        // Control: without the search the mounted socket is reached through the file's name.
        let control = try run(p.policy("mounted-off", "ro = [\"\(s.dir)\"]\nsocket_scan_skip = [\"\(s.dir)\"]"))
        #expect(control[file] == "OK", "control: \(control)")
    }

    /// A rootless invoker: the command runs as the invoker, to whom a 0777 socket is
    /// as open as to anyone. Hidden; reached when the search is off. A directory the
    /// invoker can pass through but not list could hold a socket reachable by name,
    /// so the plan is refused rather than searched in part.
    @Test func rootlessInvoker() throws {
        guard Self.ready() else { return }
        let s = HostSockets(), p = Project(owner: 65534)
        let runtime = Harness.tempDir(owner: 65534)
        defer { s.remove(); p.remove(); try? FileManager.default.removeItem(atPath: runtime) }
        let user: (uid: UInt32, runtimeDir: String) = (65534, runtime)

        // A rootless invoker cannot create cgroups here: agent's limits best-effort.
        let limits = "[resources]\nbest_effort = [\"memory\", \"swap\", \"pids\", \"cpu\", \"io\"]"
        let on = p.policy("rootless", "ro = [\"\(s.dir)\"]", extra: limits)
        let (out, r) = try p.connect(on, [s.world, s.deep], asUser: user)
        #expect(out.status == 0, "stderr: \(out.stderr)")
        #expect(r[s.world] == "EACCES" && r[s.deep] == "EACCES", "rootless: \(out.stdout)")
        let off = p.policy("rootless-off", "ro = [\"\(s.dir)\"]\nsocket_scan_skip = [\"\(s.dir)\"]", extra: limits)
        let (cout, c) = try p.connect(off, [s.world, s.deep], asUser: user)
        #expect(c[s.world] == "OK" && c[s.deep] == "OK", "control (rootless, no search): \(cout.stdout) \(cout.stderr)")

        chmod("\(s.dir)/sub", 0o711)   // passable, not listable, for uid 65534
        let (uout, _) = try p.connect(on, [s.deep], asUser: user)
        #expect(uout.status == 125, "stdout: \(uout.stdout)")
        #expect(uout.stderr.contains("\(s.dir)/sub: cannot be listed") && uout.stderr.contains("can be passed through"), "stderr: \(uout.stderr)")
        chmod("\(s.dir)/sub", 0o700)   // not even passable: out of the command's reach, skipped
        let (xout, x) = try p.connect(on, [s.world], asUser: user)
        #expect(xout.status == 0 && x[s.world] == "EACCES", "\(xout.stdout) \(xout.stderr)")
    }
}
