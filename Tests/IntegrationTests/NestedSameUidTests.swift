import Foundation
import Testing

/// Nested isolation against a command that uses what it shares with the invoker — its
/// uid and the host's PID namespace and file system (red team 2 of issue 19, N1–N6
/// and the CLONE_PARENT note). The invoker is uid 65534 on the host, as a non-root
/// user on a host that restricts user namespaces would be. One probe makes every
/// attack: run directly as that user it succeeds (the control: the kernel allows each
/// to a process of the same uid), run by `sandbox exec` of a nested policy each is
/// refused, the host's view (a victim process of the same uid outside the run, a file
/// in an ro bind, a datagram socket outside every bind) unchanged. The calls the fence
/// keeps (on the process itself, a stream pair, fcntl's other commands) work in both.
@Suite(.serialized) struct NestedSameUidTests {
    static let uid: UInt32 = 65534

    /// Prints `key=OK` or `key=ERRNO` per attack. argv: victim pid, a file in the ro
    /// bind, a directory outside every bind, a datagram socket there. Raw syscalls
    /// where the 64-bit argument matters (the kernel reads int arguments as 32 bits).
    static let probe = #"""
        import ctypes, errno, fcntl, os, platform, resource, socket, struct, sys
        VICTIM, RO, OUTSIDE, SOCK = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        NR = {'x86_64': dict(prlimit64=302, sched_setattr=314, ioprio_set=251, migrate_pages=256, move_pages=279,
                             fcntl=72, fchownat=260, setpriority=141, ioctl=16),
              'aarch64': dict(prlimit64=261, sched_setattr=274, ioprio_set=30, migrate_pages=238, move_pages=239,
                              fcntl=25, fchownat=54, setpriority=140, ioctl=29)}[platform.machine()]
        REFUSED_IOCTLS = REFUSED_IOCTLS_HERE
        r = {}
        def attempt(key, f):
            try:
                f(); r[key] = 'OK'
            except OSError as e:
                r[key] = errno.errorcode.get(e.errno, str(e.errno))
        def raw(name, *args):
            rc = libc.syscall(ctypes.c_long(NR[name]), *[ctypes.c_ulong(a) if isinstance(a, int) else a for a in args])
            if rc < 0:
                e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
        HI = 1 << 32   # the kernel drops it: HI | pid is pid, HI | 1024 is F_SETLEASE

        # N1: a datagram pair re-aimed at a host socket by path.
        def pair_send(kind):
            a, b = socket.socketpair(socket.AF_UNIX, kind)
            a.sendto(b'from-the-command', SOCK)
        attempt('pair_dgram', lambda: pair_send(socket.SOCK_DGRAM))
        attempt('pair_dgram_flags', lambda: pair_send(socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC))
        attempt('pair_raw', lambda: pair_send(socket.SOCK_RAW))     # AF_UNIX makes SOCK_RAW a datagram socket
        attempt('keep_pair_stream', lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC))
        attempt('keep_pair_seqpacket', lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET))

        # N2: limits of another process of the same uid (RLIMIT_CPU kills it).
        attempt('prlimit_victim', lambda: resource.prlimit(VICTIM, resource.RLIMIT_NOFILE, (64, 64)))
        old = (ctypes.c_ulong * 2)()
        attempt('prlimit_victim_hi', lambda: raw('prlimit64', HI | VICTIM, resource.RLIMIT_NOFILE, 0, old))
        attempt('keep_setrlimit_self', lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)))
        attempt('keep_getrlimit_self', lambda: resource.getrlimit(resource.RLIMIT_NOFILE))

        # N3: priority, scheduling, affinity, I/O priority of that process.
        attempt('setpriority_victim_hi', lambda: raw('setpriority', 0, HI | VICTIM, 19))
        attempt('setpriority_victim', lambda: os.setpriority(os.PRIO_PROCESS, VICTIM, 19))
        attempt('sched_idle_victim', lambda: os.sched_setscheduler(VICTIM, os.SCHED_IDLE, os.sched_param(0)))
        attempt('sched_param_victim', lambda: os.sched_setparam(VICTIM, os.sched_param(0)))
        attr = (ctypes.c_uint32 * 14)(56, 5)    # struct sched_attr: size 56, SCHED_IDLE
        attempt('sched_attr_victim', lambda: raw('sched_setattr', VICTIM, attr, 0))
        attempt('affinity_victim', lambda: os.sched_setaffinity(VICTIM, {min(os.sched_getaffinity(0))}))
        attempt('ioprio_victim', lambda: raw('ioprio_set', 1, VICTIM, 3 << 13))    # IOPRIO_WHO_PROCESS, class idle
        nodes = ctypes.c_ulong(1)
        attempt('migrate_pages_victim', lambda: raw('migrate_pages', VICTIM, 64, ctypes.byref(nodes), ctypes.byref(nodes)))
        page, status = (ctypes.c_void_p * 1)(0x10000), (ctypes.c_int * 1)()
        attempt('move_pages_victim', lambda: raw('move_pages', VICTIM, 1, page, 0, status, 0))
        attempt('keep_nice_self', lambda: os.setpriority(os.PRIO_PROCESS, 0, 1))
        attempt('keep_affinity_self', lambda: os.sched_setaffinity(0, os.sched_getaffinity(0)))
        attempt('keep_sched_self', lambda: os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0)))
        attempt('keep_ioprio_self', lambda: raw('ioprio_set', 1, 0, 2 << 13 | 4))  # best effort, level 4

        # N4: mode, owner, xattrs of a file in the ro bind, through a read-only fd.
        fd = os.open(RO, os.O_RDONLY)
        attempt('fchmod_ro', lambda: os.fchmod(fd, 0o666))
        attempt('fchown_ro', lambda: os.fchown(fd, -1, os.getgid()))
        attempt('fchownat_empty_ro', lambda: raw('fchownat', fd, b'', 0xffffffff, os.getgid(), 0x1000))  # AT_EMPTY_PATH
        attempt('fsetxattr_ro', lambda: os.setxattr(fd, 'user.planted', b'by-the-command'))
        attempt('fremovexattr_ro', lambda: os.removexattr(fd, 'user.owner-note'))

        # N5: a watch on a directory outside every bind.
        ino = libc.inotify_init1(0)
        def watch():
            if libc.inotify_add_watch(ino, OUTSIDE.encode(), 0x100) < 0:   # IN_CREATE
                e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
        attempt('inotify_outside', watch)

        # N6: a lease on the ro file (holds the host's writers for lease-break-time).
        def lease(cmd):
            raw('fcntl', fd, cmd, fcntl.F_RDLCK); fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        attempt('lease_ro', lambda: lease(fcntl.F_SETLEASE))
        attempt('lease_ro_hi', lambda: lease(HI | fcntl.F_SETLEASE))
        attempt('keep_fcntl_getfl', lambda: fcntl.fcntl(fd, fcntl.F_GETFL))
        attempt('keep_fcntl_getlease', lambda: fcntl.fcntl(fd, 1025))            # F_GETLEASE
        attempt('keep_fcntl_dupfd_cloexec', lambda: fcntl.fcntl(fd, 1030, 10))   # F_DUPFD_CLOEXEC

        # R3: inode flags through the read-only fd (chattr +dA: nodump, noatime), the
        # command as given and with bits above 32 (the kernel reads unsigned int cmd).
        FS_IOC_GETFLAGS, FS_IOC_SETFLAGS = 0x80086601, 0x40086602
        def getflags():
            return struct.unpack('i', fcntl.ioctl(fd, FS_IOC_GETFLAGS, b'\0' * 4))[0]
        def setflags(cmd):
            buf = ctypes.c_int(getflags() | 0x40 | 0x80)   # FS_NODUMP_FL | FS_NOATIME_FL
            raw('ioctl', fd, cmd, ctypes.byref(buf))
        # Every refused command, zeroed argument, plain and with the upper bits set
        # (sign-extended, as a caller with an int cmd passes 0x8… and 0xc… ones):
        # EPERM nested whatever the filesystem supports; the control gets the
        # kernel's own answer (ENOTTY, EINVAL, EOPNOTSUPP, or OK on this file).
        zero = ctypes.create_string_buffer(4096)
        for name, cmd in REFUSED_IOCTLS:
            attempt('ioctl_' + name, lambda: raw('ioctl', fd, cmd, zero))
            attempt('ioctl_' + name + '_hi', lambda: raw('ioctl', fd, 0xffffffff00000000 | cmd, zero))
        # After the sweep, whose zeroed FS_IOC_SETFLAGS clears the flags.
        attempt('keep_getflags', getflags)
        attempt('chattr_ro', lambda: setflags(FS_IOC_SETFLAGS))
        attempt('chattr_ro_hi', lambda: setflags(HI | FS_IOC_SETFLAGS))
        print(' '.join('%s=%s' % kv for kv in sorted(r.items())), flush=True)
        """#

    /// The ioctl commands every nested run refuses (NestedSeccomp.refusedIoctls),
    /// numbers from the kernel's headers, written here again so a change of either is
    /// seen.
    static let refusedIoctls: [(String, UInt32)] = [
        ("FS_IOC_SETFLAGS", 0x4008_6602), ("FS_IOC32_SETFLAGS", 0x4004_6602), ("FS_IOC_FSSETXATTR", 0x401c_5820),
        ("FS_IOC_SETVERSION", 0x4008_7602), ("FS_IOC32_SETVERSION", 0x4004_7602),
        ("EXT4_IOC_SETVERSION", 0x4008_6604), ("EXT4_IOC32_SETVERSION", 0x4004_6604), ("EXT4_IOC_MIGRATE", 0x0000_6609),
        ("FS_IOC_ENABLE_VERITY", 0x4080_6685), ("FS_IOC_SET_ENCRYPTION_POLICY", 0x800c_6613),
        ("FS_IOC_ADD_ENCRYPTION_KEY", 0xc050_6617), ("FS_IOC_REMOVE_ENCRYPTION_KEY", 0xc040_6618),
        ("BTRFS_IOC_SNAP_CREATE", 0x5000_9401), ("BTRFS_IOC_SNAP_CREATE_V2", 0x5000_9417),
        ("BTRFS_IOC_SUBVOL_CREATE", 0x5000_940e), ("BTRFS_IOC_SUBVOL_CREATE_V2", 0x5000_9418),
        ("BTRFS_IOC_SNAP_DESTROY", 0x5000_940f), ("BTRFS_IOC_SNAP_DESTROY_V2", 0x5000_943f),
        ("BTRFS_IOC_SUBVOL_SETFLAGS", 0x4008_941a), ("BTRFS_IOC_SET_RECEIVED_SUBVOL", 0xc0c8_9425),
        ("BTRFS_IOC_SET_RECEIVED_SUBVOL_32", 0xc0c0_9425),
        ("BTRFS_IOC_DEFRAG", 0x5000_9402), ("BTRFS_IOC_DEFRAG_RANGE", 0x4030_9410), ("FAT_IOCTL_SET_ATTRIBUTES", 0x4004_7211),
    ]
    static var probeSource: String {
        probe.replacingOccurrences(of: "REFUSED_IOCTLS_HERE",
                                   with: "[" + refusedIoctls.map { "('\($0.0)', \($0.1))" }.joined(separator: ", ") + "]")
    }
    static var ioctlSweep: [String] { refusedIoctls.flatMap { ["ioctl_\($0.0)", "ioctl_\($0.0)_hi"] } }

    /// Attacks that succeed as the user and must be refused nested; the calls the
    /// fence keeps, `keep_*`, succeed in both. migrate_pages and move_pages are
    /// refused nested by Landlock (ptrace_may_access), not by the filter.
    static let attacks = ["pair_dgram", "pair_dgram_flags", "pair_raw", "prlimit_victim", "prlimit_victim_hi",
                          "setpriority_victim", "setpriority_victim_hi", "sched_idle_victim", "sched_param_victim",
                          "sched_attr_victim", "affinity_victim", "ioprio_victim", "migrate_pages_victim", "move_pages_victim",
                          "fchmod_ro", "fchown_ro", "fchownat_empty_ro", "fsetxattr_ro", "fremovexattr_ro",
                          "inotify_outside", "lease_ro", "lease_ro_hi", "chattr_ro", "chattr_ro_hi"]
    static let kept = ["keep_pair_stream", "keep_pair_seqpacket", "keep_setrlimit_self", "keep_getrlimit_self",
                       "keep_nice_self", "keep_affinity_self", "keep_sched_self", "keep_ioprio_self",
                       "keep_fcntl_getfl", "keep_fcntl_getlease", "keep_fcntl_dupfd_cloexec", "keep_getflags"]

    /// The world of one test, owned by the user: the workspace (rw), a directory bound
    /// ro with one file, a directory outside every bind with a datagram socket bound
    /// by this test, and the victim processes (`sleep`, the user's, no capability).
    final class World {
        let work = Harness.tempDir(owner: NestedSameUidTests.uid)
        let ro = Harness.tempDir(owner: NestedSameUidTests.uid)
        let outside = Harness.tempDir(owner: NestedSameUidTests.uid)
        let runtime = Harness.tempDir(owner: NestedSameUidTests.uid)
        var socketFD: Int32 = -1
        var victims: [Process] = []
        var file: String { "\(ro)/Makefile" }
        var socketPath: String { "\(outside)/svc.sock" }

        init() throws {
            chmod(runtime, 0o700)
            try "all:\n".write(toFile: file, atomically: false, encoding: .utf8)
            chown(file, NestedSameUidTests.uid, NestedSameUidTests.uid)
            try Self.setOwnerNote(file)
            try NestedSameUidTests.probeSource.write(toFile: "\(work)/probe.py", atomically: false, encoding: .utf8)
            socketFD = Harness.bindUnixSocket(socketPath, type: Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue))
            guard socketFD >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            chmod(socketPath, 0o777)
        }

        /// The file's xattrs reset to one note of the owner's (what the probe removes).
        static func setOwnerNote(_ path: String) throws {
            let out = try Harness.run("/usr/bin/env", ["python3", "-c", """
                import os, sys
                for n in os.listxattr(sys.argv[1]): os.removexattr(sys.argv[1], n)
                os.setxattr(sys.argv[1], 'user.owner-note', b'x')
                """, path])
            guard out.status == 0 else { throw POSIXError(.EIO) }
        }

        /// The names of the file's xattrs.
        func xattrs() -> [String] {
            let out = try? Harness.run("/usr/bin/env", ["python3", "-c", "import os, sys; print(' '.join(sorted(os.listxattr(sys.argv[1]))))", file])
            return (out?.stdout ?? "").split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        }

        /// A new victim: `sleep 60` as the user, with no capability; its pid.
        func victim() throws -> Int32 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            p.arguments = ["--reuid=\(NestedSameUidTests.uid)", "--regid=\(NestedSameUidTests.uid)", "--clear-groups", "sleep", "60"]
            try p.run()
            victims.append(p)
            usleep(100_000)   // setpriv has exec'd sleep
            return p.processIdentifier
        }

        /// What the host sees of a victim: its open-file limit, nice value, scheduling
        /// policy and CPUs.
        static func state(of pid: Int32) -> String {
            let limits = (try? String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)) ?? ""
            let nofile = limits.split(separator: "\n").first { $0.hasPrefix("Max open files") }.map { String($0) } ?? "?"
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
            // After the ')': state is field 3; nice is 19, policy 41.
            let nice = fields.count > 16 ? String(fields[16]) : "?"
            let policy = fields.count > 38 ? String(fields[38]) : "?"
            let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            let cpus = status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list") }.map { String($0) } ?? "?"
            return "\(nofile.split(separator: " ").filter { !$0.isEmpty }.suffix(3).joined(separator: " ")) nice=\(nice) policy=\(policy) \(cpus)"
        }

        /// What arrived at the host's datagram socket since the last call.
        func received() -> [String] {
            var out: [String] = []
            var buf = [UInt8](repeating: 0, count: 256)
            while true {
                let n = recv(socketFD, &buf, buf.count, 0)
                if n <= 0 { return out }
                out.append(String(decoding: buf[0..<n], as: UTF8.self))
            }
        }

        /// The file's inode flags (FS_IOC_GETFLAGS), or -1.
        func flags() -> Int {
            let out = try? Harness.run("/usr/bin/env", ["python3", "-c", """
                import fcntl, os, struct, sys
                fd = os.open(sys.argv[1], os.O_RDONLY)
                print(struct.unpack('i', fcntl.ioctl(fd, 0x80086601, b'\\0' * 4))[0])
                """, file])
            return Int((out?.stdout ?? "").trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }

        /// Inode flags back to none (what the probe's chattr sets).
        func clearFlags() {
            _ = try? Harness.run("/usr/bin/env", ["python3", "-c", """
                import fcntl, os, struct, sys
                fd = os.open(sys.argv[1], os.O_RDONLY)
                fcntl.ioctl(fd, 0x40086602, struct.pack('i', 0))
                """, file])
        }

        func mode() -> Int { ((try? FileManager.default.attributesOfItem(atPath: file))?[.posixPermissions] as? Int) ?? -1 }

        func policy() -> String {
            Harness.policy("""
                name = "nested-same-uid"
                extends = ["\(Harness.repoRoot)/Policies/base.toml"]
                [process]
                isolation = "nested"
                [filesystem]
                ro = ["\(ro)"]
                rw = ["{cwd}"]
                [seccomp]
                on_violation = "errno"
                """, in: work, name: "nested-same-uid.toml")
        }

        func remove() {
            for p in victims where p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
            if socketFD >= 0 { close(socketFD) }
            for d in [work, ro, outside, runtime] { Harness.removeTree(d) }
        }
    }

    static func asUser(_ argv: [String], cwd: String) throws -> Harness.Output {
        try Harness.run("/usr/bin/setpriv", ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups"] + argv, cwd: cwd)
    }

    @Test func attacksOnTheInvokersProcessesFilesAndSocketsAreRefused() throws {
        guard Harness.require(Harness.isRoot, "root (to run as another user)") else { return }
        let w = try World()
        defer { w.remove() }

        // Control: as the user itself, outside any sandbox, every attack works.
        let victimA = try w.victim()
        let before = World.state(of: victimA)
        let control = try Self.asUser(["python3", "probe.py", "\(victimA)", w.file, w.outside, w.socketPath], cwd: w.work)
        let c = NestedIsolationTests.results(control.stdout)
        for key in Self.attacks + Self.kept {
            #expect(c[key] == "OK", "control: \(key) = \(c[key] ?? "missing") (\(control.stdout) \(control.stderr))")
        }
        #expect(World.state(of: victimA) != before, "control: the victim is unchanged: \(before)")
        #expect(w.mode() == 0o666, "control: fchmod through a read-only fd did not take")
        #expect(w.received().count == 3, "control: the host socket did not get the three datagrams")
        #expect(w.flags() & 0xc0 == 0xc0, "control: chattr +dA through a read-only fd did not take: \(w.flags())")
        // The kernel's own answer, for each: where it is EPERM already, the nested
        // EPERM proves nothing for that command. Some hosts' ext4 refuses the zeroed
        // FS_IOC_SETFLAGS (it would clear the extents flag) and EXT4_IOC_MIGRATE with
        // EPERM to the file's owner; the other commands must still show the fence.
        for key in Self.ioctlSweep { #expect(c[key] != nil, "control: \(key) missing (\(control.stdout))") }
        let refusedByTheKernel = Self.ioctlSweep.filter { c[$0] == "EPERM" }
        #expect(refusedByTheKernel.count <= 6,
                "control: the kernel itself answers EPERM to \(refusedByTheKernel): the nested EPERM proves nothing for them")

        // Nested: each refused, the host's view unchanged.
        #expect(w.xattrs() == ["user.planted"], "control: fsetxattr/fremovexattr through a read-only fd did not take")
        chmod(w.file, 0o644)
        try World.setOwnerNote(w.file)
        w.clearFlags()
        let flagsBefore = w.flags()
        let victimB = try w.victim()
        let victimBefore = World.state(of: victimB)
        let out = try Harness.exec(policy: w.policy(), ["python3", "probe.py", "\(victimB)", w.file, w.outside, w.socketPath],
                                   cwd: w.work, asUser: (Self.uid, w.runtime))
        let r = NestedIsolationTests.results(out.stdout)
        #expect(out.status == 0, "nested run: \(out.status) \(out.stdout) \(out.stderr)")
        #expect((out.result?["isolation"] as? [String: Any])?["mode"] as? String == "nested")
        for key in Self.attacks + Self.ioctlSweep {
            #expect(r[key] == "EPERM", "nested: \(key) = \(r[key] ?? "missing") (\(out.stdout) \(out.stderr))")
        }
        for key in Self.kept {
            #expect(r[key] == "OK", "nested: \(key) = \(r[key] ?? "missing"), a call the fence keeps (\(out.stdout))")
        }
        #expect(World.state(of: victimB) == victimBefore, "the victim was changed from inside")
        #expect(w.mode() == 0o644, "the mode of the ro file changed: \(String(w.mode(), radix: 8))")
        #expect(w.xattrs() == ["user.owner-note"], "the ro file's xattrs changed: \(w.xattrs())")
        #expect(w.flags() == flagsBefore, "the ro file's inode flags changed: \(flagsBefore) → \(w.flags())")
        #expect(w.received().isEmpty, "a datagram reached the host socket from inside")
    }

    /// R2: file times. Prints `key=OK` or `key=ERRNO`; a positive (`keep_*`) prints OK
    /// only when the file then has exactly the times asked for. argv: a file in the ro
    /// bind, a file and its directory outside every bind. Explicit times T.
    static let timesProbe = #"""
        import ctypes, errno, os, platform, sys
        RO, OUT, OUTDIR = sys.argv[1], sys.argv[2], sys.argv[3]
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        T = (1000000000, 1000000001)                 # atime, mtime: 2001-09-09
        TNS = (T[0] * 10**9 + 7, T[1] * 10**9 + 42)
        r = {}
        def attempt(key, f):
            try:
                f(); r[key] = 'OK'
            except OSError as e:
                r[key] = errno.errorcode.get(e.errno, str(e.errno))
        def exact(path, follow=True):
            st = os.stat(path, follow_symlinks=follow)
            if (st.st_atime_ns, st.st_mtime_ns) != TNS: raise OSError(errno.EDOM, 'times %s' % ((st.st_atime_ns, st.st_mtime_ns),))
        class timespec(ctypes.Structure): _fields_ = [('sec', ctypes.c_long), ('nsec', ctypes.c_long)]
        UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
        def utimensat(dirfd, path, times, flags):
            ts = (timespec * 2)(*times) if times else None
            if libc.utimensat(dirfd, path, ts, flags) != 0:
                e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
        def legacy(name, *args):
            nr = {'utime': 132, 'utimes': 235, 'futimesat': 261}.get(name) if platform.machine() == 'x86_64' else None
            if nr is None: raise OSError(errno.ENOSYS, 'no ' + name)
            if libc.syscall(ctypes.c_long(nr), *args) < 0:
                e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
        class timeval(ctypes.Structure): _fields_ = [('sec', ctypes.c_long), ('usec', ctypes.c_long)]
        tv = (timeval * 2)(timeval(T[0], 0), timeval(T[1], 0))
        AT_FDCWD, AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH = -100, 0x100, 0x1000
        for name in ['a', 'b', 'c', 'd', 'e', 'to-outside', 'own-link']:
            if os.path.isdir(name) and not os.path.islink(name): os.rmdir(name)
            elif os.path.lexists(name): os.unlink(name)
        os.symlink(OUT, 'to-outside')
        ro_fd = os.open(RO, os.O_RDONLY)
        outdir_fd = os.open(OUTDIR, os.O_PATH)      # Landlock does not check O_PATH opens

        # Attacks: explicit times on a file outside every bind and in the ro bind.
        attempt('times_outside', lambda: os.utime(OUT, ns=TNS))
        attempt('times_ro', lambda: os.utime(RO, ns=TNS))
        attempt('times_ro_fd', lambda: os.utime(ro_fd, ns=TNS))                  # futimens: utimensat(fd, NULL, …)
        attempt('times_ro_empty_path', lambda: utimensat(ro_fd, b'', [timespec(T[0], 0), timespec(T[1], 0)], AT_EMPTY_PATH))
        attempt('times_outside_dirfd', lambda: os.utime(os.path.basename(OUT), ns=TNS, dir_fd=outdir_fd))
        attempt('times_outside_symlink', lambda: os.utime('to-outside', ns=TNS))   # a link in the workspace, followed
        attempt('times_outside_dotdot', lambda: os.utime(os.path.relpath(OUT), ns=TNS))
        attempt('times_outside_now_pair', lambda: utimensat(AT_FDCWD, OUT.encode(), [timespec(0, UTIME_NOW), timespec(0, UTIME_NOW)], 0))
        attempt('times_outside_utimes', lambda: legacy('utimes', OUT.encode(), tv))
        attempt('times_outside_futimesat', lambda: legacy('futimesat', AT_FDCWD, OUT.encode(), tv))

        # Kept: times in the workspace (rw), exact; NULL ("now", touch) anywhere writable.
        for name in 'abce': open(name, 'w').close()
        os.mkdir('d')
        def fd_times():
            fd = os.open('b', os.O_WRONLY); os.utime(fd, ns=TNS); os.close(fd); exact('b')
        def dirfd_times():
            fd = os.open('.', os.O_RDONLY | os.O_DIRECTORY); os.utime('c', ns=TNS, dir_fd=fd); os.close(fd); exact('c')
        def own_link():
            os.symlink('a', 'own-link'); os.utime('own-link', ns=TNS, follow_symlinks=False); exact('own-link', follow=False)
        attempt('keep_times_work', lambda: (os.utime('a', ns=TNS), exact('a')))
        attempt('keep_futimens_work', fd_times)
        attempt('keep_dirfd_work', dirfd_times)
        attempt('keep_times_dir_work', lambda: (os.utime('d', ns=TNS), exact('d')))
        attempt('keep_nofollow_link_work', own_link)
        attempt('keep_now_pair_work', lambda: utimensat(AT_FDCWD, b'a', [timespec(0, UTIME_NOW), timespec(0, UTIME_NOW)], 0))
        attempt('keep_touch_work', lambda: os.utime('e', None))
        def raw_name():   # a name that is not UTF-8: the supervisor resolves bytes
            name = b'n\xff'
            if os.path.lexists(name): os.unlink(name)
            open(name, 'w').close(); os.utime(name, ns=TNS); exact(name)
        attempt('keep_non_utf8_name_work', raw_name)
        attempt('keep_missing_enoent', lambda: os.utime('no-such-file', ns=TNS))
        # As the kernel answers (red team 6, G7; in its order): both UTIME_OMIT succeed
        # at once, wherever the file is and whether it exists; then the lookup; then a
        # bad tv_nsec is EINVAL.
        attempt('keep_bad_nsec_einval', lambda: utimensat(AT_FDCWD, OUT.encode(), [timespec(0, 10**9), timespec(0, 0)], 0))
        attempt('keep_bad_nsec_missing', lambda: utimensat(AT_FDCWD, b'no-such-file', [timespec(0, 10**9), timespec(0, 0)], 0))
        attempt('keep_omit_outside', lambda: utimensat(AT_FDCWD, OUT.encode(), [timespec(0, UTIME_OMIT), timespec(0, UTIME_OMIT)], 0))
        attempt('keep_omit_missing', lambda: utimensat(AT_FDCWD, b'no-such-file', [timespec(0, UTIME_OMIT), timespec(0, UTIME_OMIT)], 0))
        print(' '.join('%s=%s' % kv for kv in sorted(r.items())), flush=True)
        """#

    static let timeAttacks = ["times_outside", "times_ro", "times_ro_fd", "times_ro_empty_path", "times_outside_dirfd",
                              "times_outside_symlink", "times_outside_dotdot", "times_outside_now_pair"]
    static let legacyTimeAttacks = ["times_outside_utimes", "times_outside_futimesat"]
    static let timesKept = ["keep_times_work", "keep_futimens_work", "keep_dirfd_work", "keep_times_dir_work",
                            "keep_nofollow_link_work", "keep_now_pair_work", "keep_touch_work", "keep_non_utf8_name_work",
                            "keep_omit_outside"]

    /// R2: explicit file times are set only beneath a writable bind. Control: as the
    /// user, outside any sandbox, every attack sets the times of a file outside the
    /// binds or in the ro bind. Nested: each gets EPERM and the files keep their
    /// times; the workspace gets exactly the times asked for — by os.utime in every
    /// form, `cp --preserve=timestamps` and `tar -x` (`cp -p` also sets the mode, which
    /// a nested run refuses) — and NULL ("now", `touch`) works. Fails without the
    /// fence: the attacks succeed inside as they do outside.
    @Test func explicitTimesAreSetOnlyBeneathAWritableBind() throws {
        guard Harness.require(Harness.isRoot, "root (to run as another user)") else { return }
        let w = try World()
        defer { w.remove() }
        let outsideFile = "\(w.outside)/Makefile"
        try "all:\n".write(toFile: outsideFile, atomically: false, encoding: .utf8)
        chown(outsideFile, Self.uid, Self.uid)
        try Self.timesProbe.write(toFile: "\(w.work)/times.py", atomically: false, encoding: .utf8)
        func times(_ path: String) -> String {
            var st = stat()
            guard lstat(path, &st) == 0 else { return "missing" }
            return "\(st.st_atim.tv_sec).\(st.st_atim.tv_nsec)/\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
        }
        func reset() {
            var ts = [timespec(tv_sec: 1_600_000_000, tv_nsec: 0), timespec(tv_sec: 1_600_000_000, tv_nsec: 0)]
            for f in [w.file, outsideFile] { _ = utimensat(AT_FDCWD, f, &ts, 0) }
        }
        let isX86 = { var u = utsname(); uname(&u); return withUnsafeBytes(of: u.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } == "x86_64" }()
        let legacy = isX86 ? Self.legacyTimeAttacks : []

        reset()
        let untouched = (times(w.file), times(outsideFile))
        let control = try Self.asUser(["python3", "times.py", w.file, outsideFile, w.outside], cwd: w.work)
        let c = NestedIsolationTests.results(control.stdout)
        for key in Self.timeAttacks + legacy + Self.timesKept {
            #expect(c[key] == "OK", "control: \(key) = \(c[key] ?? "missing") (\(control.stdout) \(control.stderr))")
        }
        #expect(times(w.file) != untouched.0 && times(outsideFile) != untouched.1, "control: the times did not change")

        // The tools' part: a file and an archive whose times are T, made by the user.
        reset()
        let before = (times(w.file), times(outsideFile))
        let tools = """
            set -e
            rm -rf src.txt copied.txt arch.tar ex; mkdir ex
            echo data > src.txt; touch -d @1000000001 src.txt
            mkdir -p tree; for i in 1 2 3; do echo $i > tree/f$i; touch -d @100000000$i tree/f$i; done
            tar -cf arch.tar tree; rm -rf tree
            """
        #expect(try Self.asUser(["sh", "-c", tools], cwd: w.work).status == 0)
        let script = "python3 times.py \(w.file) \(outsideFile) \(w.outside) && cp --preserve=timestamps src.txt copied.txt && tar -xf arch.tar -C ex && echo tools=done"
        let out = try Harness.exec(policy: w.policy(), ["sh", "-c", script], cwd: w.work, asUser: (Self.uid, w.runtime))
        let r = NestedIsolationTests.results(out.stdout)
        #expect(out.status == 0, "nested run: \(out.status) \(out.stdout) \(out.stderr)")
        for key in Self.timeAttacks + legacy {
            #expect(r[key] == "EPERM", "nested: \(key) = \(r[key] ?? "missing") (\(out.stdout) \(out.stderr))")
        }
        for key in Self.timesKept {
            #expect(r[key] == "OK", "nested: \(key) = \(r[key] ?? "missing"), times in the workspace (\(out.stdout) \(out.stderr))")
        }
        #expect(r["keep_missing_enoent"] == "ENOENT", "a missing file: \(r["keep_missing_enoent"] ?? "missing")")
        #expect(c["keep_bad_nsec_einval"] == "EINVAL" && r["keep_bad_nsec_einval"] == "EINVAL",
                "a bad tv_nsec: control \(c["keep_bad_nsec_einval"] ?? "missing"), nested \(r["keep_bad_nsec_einval"] ?? "missing")")
        for key in ["keep_bad_nsec_missing", "keep_omit_missing"] {
            #expect(c[key] != nil && r[key] == c[key], "\(key): control \(c[key] ?? "missing"), nested \(r[key] ?? "missing") (the kernel's answer)")
        }
        #expect(r["tools"] == "done", "cp --preserve=timestamps / tar -x in the workspace: \(out.stdout) \(out.stderr)")
        #expect(times("\(w.work)/copied.txt").hasSuffix("/1000000001.0"), "cp --preserve=timestamps: \(times("\(w.work)/copied.txt"))")
        for i in 1...3 {
            #expect(times("\(w.work)/ex/tree/f\(i)").hasSuffix("/100000000\(i).0"), "tar -x f\(i): \(times("\(w.work)/ex/tree/f\(i)"))")
        }
        #expect(times(w.file) == before.0, "the ro file's times changed from inside: \(before.0) → \(times(w.file))")
        #expect(times(outsideFile) == before.1, "the outside file's times changed from inside: \(before.1) → \(times(outsideFile))")
        // The refusals are in the run's denial account.
        let denials = (out.result?["denials"] as? [[String: Any]]) ?? []
        #expect(denials.contains { $0["kind"] as? String == "syscall" && $0["what"] as? String == "utimensat"
                    && ($0["detail"] as? String ?? "").contains("writable binds") && $0["count"] as? Int == 8 },
                "no utimensat denial recorded, or not 8: \(denials)")
        // Not a call outside the allow-list: errno mode lists no violation.
        #expect((out.result?["violations"] as? [Any])?.isEmpty == true, "violations: \(out.result?["violations"] ?? "none")")
    }

    /// N2's other half: a supervisor whose file-size limit is lowered under it (by
    /// another process of the invoker's uid; before the fence, by a command's
    /// prlimit64) reports the failed write and exits 125: SIGXFSZ is ignored, and the
    /// EFBIG of its stderr, a regular file here as in a CI log, does not trap it (it
    /// did, 132, while stderr went through corelibs FileHandle). Control: a process
    /// that does not ignore SIGXFSZ dies of it under the same limit.
    @Test func aSupervisorWhoseFileSizeLimitIsLoweredReportsInsteadOfDying() throws {
        guard Harness.require(Harness.isRoot, "root") else { return }
        let work = Harness.tempDir(), logs = Harness.tempDir()
        defer { for d in [work, logs] { try? FileManager.default.removeItem(atPath: d) } }
        // (SIGXFSZ at its default action and unblocked: both are inherited across exec.)
        let control = try Harness.run("/usr/bin/prlimit", ["--fsize=0:0", "python3", "-c", """
            import os, signal, sys
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL); signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGXFSZ])
            os.write(os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600), b'x')
            """, "\(logs)/control"])
        #expect(control.status == SIGXFSZ, "control: \(control.status) \(control.stderr)")

        let policy = Harness.policy("""
            name = "nested-fsize"
            extends = ["\(Harness.repoRoot)/Policies/base.toml"]
            [process]
            isolation = "nested"
            [filesystem]
            rw = ["{cwd}"]
            """, in: work, name: "nested-fsize.toml")
        FileManager.default.createFile(atPath: "\(logs)/stderr", contents: nil)
        let log = try #require(FileHandle(forWritingAtPath: "\(logs)/stderr"))
        // The supervisor starts as the control does, SIGXFSZ at its default and unblocked:
        // only its own disposition keeps it alive.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", """
            import os, signal, sys
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL); signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGXFSZ])
            os.execv(sys.argv[1], sys.argv[1:])
            """, Harness.binary, "exec", "--policy", policy, "--result", "\(logs)/result.json", "--", "sleep", "1"]
        p.currentDirectoryURL = URL(fileURLWithPath: work)
        p.standardOutput = log
        p.standardError = log
        try p.run()
        usleep(300_000)
        let lowered = try Harness.run("/usr/bin/prlimit", ["--pid", "\(p.processIdentifier)", "--fsize=0:0"])
        #expect(lowered.status == 0, "prlimit of the supervisor: \(lowered.stderr)")
        p.waitUntilExit()
        #expect(p.terminationReason == .exit && p.terminationStatus == 125,
                "the supervisor: \(p.terminationReason == .exit ? "exit" : "signal") \(p.terminationStatus)")
        #expect(((try? FileManager.default.attributesOfItem(atPath: "\(logs)/result.json"))?[.size] as? Int ?? 0) == 0)
    }

    /// clone(CLONE_PARENT) makes a sibling of the command: the reaper's child, not the
    /// command's, and without the command's die-with-the-reaper signal. The reaper
    /// kills every child it has when the command ends, so it does not outlive the run.
    /// Control: the same command run as the user leaves the sibling alive, and it
    /// writes its marker 2 s later.
    @Test func aCloneParentSiblingDoesNotOutliveTheRun() throws {
        guard Harness.require(Harness.isRoot, "root (to run as another user)") else { return }
        let w = try World()
        defer { w.remove() }
        let script = #"""
            import ctypes, os, platform, sys, time
            libc = ctypes.CDLL(None, use_errno=True)
            nr = {'x86_64': 56, 'aarch64': 220}[platform.machine()]
            # clone(CLONE_PARENT | SIGCHLD), no new stack: a fork whose parent is ours.
            pid = libc.syscall(ctypes.c_long(nr), ctypes.c_ulong(0x8000 | 17), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
            if pid == 0:
                null = os.open('/dev/null', os.O_RDWR)
                for fd in (0, 1, 2): os.dup2(null, fd)   # the caller waits for its pipes' end
                open('sibling.pid', 'w').write(str(os.getpid()))
                time.sleep(2)
                open('sibling.alive', 'w').write('outlived the command')
                os._exit(0)
            if pid < 0: print('clone failed', ctypes.get_errno()); sys.exit(3)
            time.sleep(0.3)
            os._exit(0)
            """#
        try script.write(toFile: "\(w.work)/sibling.py", atomically: false, encoding: .utf8)
        func sibling() -> Int32? { (try? String(contentsOfFile: "\(w.work)/sibling.pid", encoding: .utf8)).flatMap { Int32($0) } }
        func alive(_ pid: Int32) -> Bool {
            kill(pid, 0) == 0 && ((try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "").contains("sibling.py")
        }
        // Checked by the user's shell as soon as the command returns: sibling=alive or gone.
        let check = "pid=$(cat sibling.pid); if grep -qs sibling.py /proc/$pid/cmdline; then echo sibling=alive; else echo sibling=gone; fi"

        let control = try Self.asUser(["sh", "-c", "python3 sibling.py; \(check)"], cwd: w.work)
        #expect(control.stdout.contains("sibling=alive"), "control: the sibling did not outlive the command: \(control.stdout) \(control.stderr)")
        usleep(2_500_000)
        #expect(FileManager.default.fileExists(atPath: "\(w.work)/sibling.alive"), "control: no marker")
        if let pid = sibling(), alive(pid) { kill(pid, SIGKILL) }
        for f in ["sibling.pid", "sibling.alive"] { try? FileManager.default.removeItem(atPath: "\(w.work)/\(f)") }

        let out = try Self.asUser(["env", "XDG_RUNTIME_DIR=\(w.runtime)", "HOME=\(w.runtime)", "sh", "-c",
                                   "\(Harness.binary) exec --policy \(w.policy()) -- python3 sibling.py; echo status=$?; \(check)"], cwd: w.work)
        #expect(out.stdout.contains("status=0"), "nested run: \(out.stdout) \(out.stderr)")
        let nestedPid = sibling()
        #expect(nestedPid != nil, "the sibling never ran: \(out.stdout) \(out.stderr)")
        #expect(out.stdout.contains("sibling=gone"), "the CLONE_PARENT sibling outlived the nested run: \(out.stdout)")
        usleep(2_500_000)
        #expect(!FileManager.default.fileExists(atPath: "\(w.work)/sibling.alive"), "the sibling wrote its marker after the run")
        if let nestedPid, alive(nestedPid) { kill(nestedPid, SIGKILL) }
    }

    /// Red team 6, G1: an `ro` bind inside the workspace (`.git` here, the natural
    /// stand-in for `protect`, which nested refuses) is writable in a nested run:
    /// Landlock grants the rw rule's rights to everything beneath `{cwd}`. The plan is
    /// refused (125) naming both binds. Control: accepting the gap
    /// (`nested_without = ["ro_within_rw"]`) the same command rewrites HEAD and
    /// creates a file there, and the result lists the gap; namespaced, the read-only
    /// mount refuses both (EROFS). Fails without the refusal: the nested run writes.
    @Test func anRoBindWithinTheWorkspaceIsRefusedRatherThanLeftWritable() throws {
        guard Harness.require(Harness.isRoot, "root (to run as another user)") else { return }
        let w = try World()
        defer { w.remove() }
        let git = "\(w.work)/git", head = "\(w.work)/git/HEAD"
        mkdir(git, 0o755)
        chown(git, Self.uid, Self.uid)
        func resetHead() {
            try? "ref: refs/heads/main\n".write(toFile: head, atomically: false, encoding: .utf8)
            chown(head, Self.uid, Self.uid)
            try? FileManager.default.removeItem(atPath: "\(git)/planted")
        }
        func policy(_ isolation: String, accept: Bool) -> String {
            Harness.policy("""
                name = "ro-within-rw"
                extends = ["\(Harness.repoRoot)/Policies/base.toml"]
                [process]
                isolation = "\(isolation)"
                \(accept ? "nested_without = [\"ro_within_rw\"]" : "")
                [filesystem]
                ro = ["{cwd}/git"]
                rw = ["{cwd}"]
                [seccomp]
                on_violation = "errno"
                """, in: w.work, name: "ro-within-rw-\(isolation)-\(accept).toml")
        }
        let attack = "if echo EVIL > git/HEAD; then echo write=OK; else echo write=denied; fi; "
            + "if touch git/planted; then echo create=OK; else echo create=denied; fi"
        func run(_ policy: String) throws -> Harness.Output {
            resetHead()
            return try Harness.exec(policy: policy, ["sh", "-c", attack], cwd: w.work, asUser: (Self.uid, w.runtime))
        }
        func headText() -> String { (try? String(contentsOfFile: head, encoding: .utf8)) ?? "missing" }
        let planted = { FileManager.default.fileExists(atPath: "\(git)/planted") }

        // Control: the gap accepted, the attack works — the ro bind is writable nested.
        let open = try run(policy("nested", accept: true))
        let o = NestedIsolationTests.results(open.stdout)
        #expect(open.status == 0 && o["write"] == "OK" && o["create"] == "OK",
                "control: the ro bind within rw was not writable nested: \(open.status) \(open.stdout) \(open.stderr)")
        #expect(headText() == "EVIL\n" && planted(), "control: HEAD \(headText()), planted \(planted())")
        let iso = open.result?["isolation"] as? [String: Any]
        #expect((iso?["accepted"] as? [String]) == ["ro_within_rw"], "accepted: \(iso?["accepted"] ?? "none")")
        let layer = (iso?["layers"] as? [[String: Any]])?.first { $0["name"] as? String == "ro_within_rw" }
        #expect(layer?["applied"] as? Bool == false && (layer?["how"] as? String ?? "").contains(git), "layer: \(layer ?? [:])")

        // Namespaced, the same policy: a read-only mount, EROFS.
        let ns = try run(policy("namespaces", accept: false))
        let n = NestedIsolationTests.results(ns.stdout)
        #expect(ns.status == 0 && n["write"] == "denied" && n["create"] == "denied", "namespaces: \(ns.status) \(ns.stdout) \(ns.stderr)")
        #expect(ns.stdout.contains("Read-only file system") || ns.stderr.contains("Read-only file system"), "namespaces: \(ns.stderr)")

        // Nested, not accepted: refused before the command runs, naming both binds.
        let refused = try run(policy("nested", accept: false))
        #expect(refused.status == 125, "nested: \(refused.status) \(refused.stdout) \(refused.stderr)")
        #expect(refused.stderr.contains("\(git) (beneath \(w.work))") && refused.stderr.contains("ro_within_rw"), "nested: \(refused.stderr)")
        #expect(refused.stdout.isEmpty && headText() == "ref: refs/heads/main\n" && !planted(), "the command ran: \(refused.stdout), HEAD \(headText())")
    }

    /// Red team 6, G3: what one explicit-times call costs the supervisor must not grow
    /// with a depth the command chooses. The check was a walk of `..` from the
    /// target's directory, an open and an fstat per level, on the supervisor's one
    /// thread while the caller waits at no cost: 300 calls 1900 levels below the
    /// workspace cost it 10–20 ms each (seconds in all), and an RLIMIT_CPU the invoker
    /// passed on killed it. Now the kernel's path of the directory and one reopen
    /// beneath the source (whose kernel work still grows with the depth, up to
    /// PATH_MAX): the supervisor's CPU per deep call stays below 2 ms and within ten
    /// times a shallow one's (measured: 32–89 us shallow, 308–507 us 1900 levels down). The deep file gets its times (it is in the workspace);
    /// a directory whose path is longer than PATH_MAX is refused (EPERM, documented).
    /// Fails with the walk: the deep calls cost the supervisor ~10 ms each.
    @Test func explicitTimesCostTheSupervisorTheSameAtAnyDepth() throws {
        guard Harness.require(Harness.isRoot, "root (to run as another user)") else { return }
        let w = try World()
        defer { w.remove() }
        let probe = #"""
            import ctypes, errno, os, resource, sys
            DIR, CALLS = sys.argv[1], int(sys.argv[2])
            libc = ctypes.CDLL(None, use_errno=True)
            class ts(ctypes.Structure): _fields_ = [('s', ctypes.c_long), ('n', ctypes.c_long)]
            T = (ts * 2)(ts(1000000000, 0), ts(1000000001, 0))
            os.chdir(DIR)
            ok = failed = 0
            for _ in range(CALLS):
                if libc.utimensat(-100, b'x', T, 0) == 0: ok += 1
                else: failed = ctypes.get_errno()
            # 200 levels more: from the deep directory, a path longer than PATH_MAX.
            fd = os.open('.', os.O_RDONLY)
            for _ in range(200): os.mkdir('e') if not os.path.isdir('e') else None; os.chdir('e')
            open('y', 'w').close()
            long_path = 'OK' if libc.utimensat(-100, b'y', T, 0) == 0 else errno.errorcode[ctypes.get_errno()]
            r = resource.getrusage(resource.RUSAGE_SELF)
            print('ok=%d failed=%s long_path=%s cmd_cpu=%f' % (ok, errno.errorcode.get(failed, failed), long_path, r.ru_utime + r.ru_stime))
            """#
        try probe.write(toFile: "\(w.ro)/deep.py", atomically: false, encoding: .utf8)
        // The tree, made by the user: 1900 levels of d/ (a path of ~3.8 KB), a file x at
        // the bottom and one at the top.
        let deep = w.work + String(repeating: "/d", count: 1900)
        let made = try Self.asUser(["python3", "-c", "import os\nopen('x', 'w').close()\nfor _ in range(1900): os.mkdir('d'); os.chdir('d')\nopen('x', 'w').close()"],
                                   cwd: w.work)
        #expect(made.status == 0 && FileManager.default.fileExists(atPath: deep + "/x"), "the tree: \(made.stderr)")
        // The supervisor's CPU: every process the run had (supervisor, reaper, command),
        // as the driver's children, less what the command itself used.
        let driver = "import resource, subprocess, sys; subprocess.run(sys.argv[1:]); r = resource.getrusage(resource.RUSAGE_CHILDREN); print('tree_cpu=%f' % (r.ru_utime + r.ru_stime))"
        func supervisorCPU(_ dir: String, calls: Int) throws -> (seconds: Double, r: [String: String]) {
            let out = try Self.asUser(["env", "XDG_RUNTIME_DIR=\(w.runtime)", "HOME=\(w.runtime)", "python3", "-c", driver,
                                       Harness.binary, "exec", "--policy", w.policy(), "--", "python3", "\(w.ro)/deep.py", dir, "\(calls)"], cwd: w.work)
            let r = NestedIsolationTests.results(out.stdout)
            let tree = Double(r["tree_cpu"] ?? "") ?? -1, cmd = Double(r["cmd_cpu"] ?? "") ?? -1
            #expect(r["ok"] == "\(calls)" && tree >= 0 && cmd >= 0, "\(dir.count)-byte dir: \(out.stdout) \(out.stderr)")
            let long = dir == deep ? "EPERM" : "OK"   // 200 levels below the deep one: beyond PATH_MAX
            #expect(r["long_path"] == long, "a file 200 levels below the \(dir.count)-byte dir: \(r["long_path"] ?? "missing")")
            return (tree - cmd, r)
        }
        let calls = 300
        let idle = try supervisorCPU(deep, calls: 0).seconds
        let shallow = try supervisorCPU(w.work, calls: calls).seconds
        let deepCost = try supervisorCPU(deep, calls: calls).seconds
        let perShallow = max(shallow - idle, 0) / Double(calls), perDeep = max(deepCost - idle, 0) / Double(calls)
        print("explicit times, supervisor CPU per call: shallow \(Int(perShallow * 1e6)) us, 1900 levels \(Int(perDeep * 1e6)) us (idle run \(Int(idle * 1e3)) ms)")
        #expect(perDeep < 0.002 && perDeep < max(10 * perShallow, 0.001),
                "a deep explicit-times call costs the supervisor \(Int(perDeep * 1e6)) us, a shallow one \(Int(perShallow * 1e6)) us")
    }

    /// Red team 6, G5: a root invoker's supervisor looked the caller's path up with
    /// root's DAC capabilities, which the command (uid 0, no capability) lacks: it set
    /// times on the command's file beneath the workspace inside a 0700 directory of
    /// another user that the command cannot search, and told an existing name (EPERM)
    /// from a missing one (ENOENT) in such a directory outside every bind. Now the
    /// fence drops those capabilities for its lookups and answers as the kernel does.
    /// Control: the same calls left to the kernel (`nested_without = ["timestamps"]`)
    /// get EACCES each, as does the command's own stat. Fails without the drop: OK,
    /// EPERM and ENOENT.
    @Test func aRootInvokersFenceLooksUpAsTheCommandWould() throws {
        guard Harness.require(Harness.isRoot, "root (a root invoker)") else { return }
        let work = Harness.tempDir(), outside = Harness.tempDir()
        defer { for d in [work, outside] { try? FileManager.default.removeItem(atPath: d) } }
        for d in ["\(work)/priv", "\(outside)/priv"] {
            mkdir(d, 0o700)
            try "x\n".write(toFile: "\(d)/f", atomically: false, encoding: .utf8)   // root's
            chown(d, Self.uid, Self.uid)
        }
        let probe = #"""
            import errno, os, sys
            OUT, T = sys.argv[1], (1000000000 * 10**9, 1000000001 * 10**9)
            r = {}
            def attempt(key, f):
                try:
                    f(); r[key] = 'OK'
                except OSError as e:
                    r[key] = errno.errorcode.get(e.errno, str(e.errno))
            attempt('stat_private_work', lambda: os.stat('priv/f'))
            attempt('times_private_work', lambda: os.utime('priv/f', ns=T))
            attempt('times_private_outside', lambda: os.utime(OUT + '/priv/f', ns=T))
            attempt('times_private_outside_missing', lambda: os.utime(OUT + '/priv/nosuch', ns=T))
            print(' '.join('%s=%s' % kv for kv in sorted(r.items())), flush=True)
            """#
        try probe.write(toFile: "\(work)/probe.py", atomically: false, encoding: .utf8)
        func policy(accept: Bool) -> String {
            Harness.policy("""
                name = "root-lookups"
                extends = ["\(Harness.repoRoot)/Policies/base.toml"]
                [process]
                isolation = "nested"
                \(accept ? "nested_without = [\"timestamps\"]" : "")
                [filesystem]
                rw = ["{cwd}"]
                [seccomp]
                on_violation = "errno"
                """, in: work, name: "root-lookups-\(accept).toml")
        }
        func mtime(_ p: String) -> Int { var st = stat(); return lstat(p, &st) == 0 ? st.st_mtim.tv_sec : -1 }
        let before = (mtime("\(work)/priv/f"), mtime("\(outside)/priv/f"))
        let keys = ["stat_private_work", "times_private_work", "times_private_outside", "times_private_outside_missing"]

        let kernel = try Harness.exec(policy: policy(accept: true), ["python3", "probe.py", outside], cwd: work)
        let k = NestedIsolationTests.results(kernel.stdout)
        for key in keys { #expect(k[key] == "EACCES", "control (the kernel): \(key) = \(k[key] ?? "missing") \(kernel.stdout) \(kernel.stderr)") }

        let fenced = try Harness.exec(policy: policy(accept: false), ["python3", "probe.py", outside], cwd: work)
        let f = NestedIsolationTests.results(fenced.stdout)
        #expect(fenced.status == 0, "nested: \(fenced.status) \(fenced.stderr)")
        for key in keys { #expect(f[key] == "EACCES", "nested (the fence): \(key) = \(f[key] ?? "missing") \(fenced.stdout) \(fenced.stderr)") }
        #expect((mtime("\(work)/priv/f"), mtime("\(outside)/priv/f")) == before, "times changed through a directory the command cannot search")
    }
}
