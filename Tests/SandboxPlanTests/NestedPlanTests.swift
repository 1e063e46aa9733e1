import Foundation
import SandboxPlan
import SandboxPolicy
import Testing

/// Nested isolation at plan time (NestedPlan.swift): what it refuses, what it carries
/// instead of the namespaces, and that every layer is named. Pure: faked host facts.
@Suite struct NestedPlanTests {
    static let nested = """
        name = "nested"
        [process]
        isolation = "nested"
        [filesystem]
        ro = ["/usr"]
        rw = ["{cwd}"]
        tmpfs = ["/tmp"]
        [seccomp]
        socket_families = ["unix", "inet", "inet6", "alg"]
        [network]
        mode = "none"
        """

    func compile(_ toml: String, host h: HostFacts = host(uid: 0)) throws -> RunPlan {
        try PlanCompiler(host: h).compile(try policy(toml), argv: ["sh"], runId: "r1")
    }

    func layers(_ plan: RunPlan) -> [String: Bool] {
        Dictionary((plan.isolation?.layers ?? []).map { ($0.name, $0.applied) }, uniquingKeysWith: { a, _ in a })
    }

    @Test func namespacesOnlyHasNoIsolationField() throws {
        // The default keeps the plan (and its digest) as it was.
        let plan = try compile(Self.nested.replacingOccurrences(of: "isolation = \"nested\"", with: ""))
        #expect(plan.isolation == nil)
        #expect(!plan.isNested)
        #expect(plan.seccomp.refusedIoctls == nil)
    }

    /// R3: the ioctl commands that change an inode through a read-only fd are in the
    /// plan (its JSON, digest and the filter cache key), whatever the profile says
    /// about ioctl; a policy that denies ioctl outright needs no fence.
    @Test func inodeChangingIoctlsAreRefusedInTheirOwnFilter() throws {
        let plan = try compile(Self.nested)
        let names = (plan.seccomp.refusedIoctls ?? []).map(\.name)
        for name in ["FS_IOC_SETFLAGS", "FS_IOC32_SETFLAGS", "FS_IOC_FSSETXATTR", "FS_IOC_SETVERSION", "FS_IOC32_SETVERSION",
                     "EXT4_IOC_SETVERSION", "FS_IOC_ENABLE_VERITY", "FS_IOC_SET_ENCRYPTION_POLICY", "BTRFS_IOC_SUBVOL_SETFLAGS",
                     "BTRFS_IOC_DEFRAG", "BTRFS_IOC_DEFRAG_RANGE", "FAT_IOCTL_SET_ATTRIBUTES"] {
            #expect(names.contains(name), "\(name) not refused: \(names)")
        }
        #expect(plan.seccomp.refusedIoctls?.first { $0.name == "FS_IOC_SETFLAGS" }?.number == 0x4008_6602)
        #expect(plan.seccomp.refusedIoctls?.first { $0.name == "FAT_IOCTL_SET_ATTRIBUTES" }?.number == 0x4004_7211)
        #expect(!plan.seccomp.rules.contains { $0.syscalls.contains("ioctl") }, "the main filter's ioctl rules changed")
        let json = String(decoding: try PlanDigest.canonicalJSON(plan), as: UTF8.self)
        #expect(json.contains(#"{"name":"FS_IOC_SETFLAGS","number":1074292226}"#))
        var without = plan
        without.seccomp.refusedIoctls = nil
        #expect(try PlanDigest.digest(of: without) != (try PlanDigest.digest(of: plan)))
        let denied = try compile(Self.nested.replacingOccurrences(of: "[seccomp]\n", with: "[seccomp]\ndeny = [\"ioctl\"]\n"))
        #expect(denied.seccomp.refusedIoctls == nil, "ioctl is denied outright: no fence needed")
        #expect(denied.seccomp.rulesDigest != plan.seccomp.rulesDigest)
    }

    @Test func nestedCarriesLandlockOnHostPathsAndSeccompInsteadOfNamespaces() throws {
        let files: [String: FileKind] = ["/dev/null": .other, "/dev/urandom": .other, "/dev/zero": .symlink(target: "null")]
        let plan = try compile(Self.nested, host: host(uid: 0, files: files))
        #expect(plan.isNested)
        #expect(plan.isolation?.reason == "process.isolation = \"nested\"")
        // No user namespace, the invoker's own uid: nothing to map.
        #expect(plan.process.userNamespace == nil && plan.process.hostUID == .invoker && plan.process.uid == 0)
        // Only binds (and mirrored symlinks) stay: no tmpfs, /proc, /dev, files.
        #expect(plan.mounts.allSatisfy { $0.kind == .bind || $0.kind == .symlink }, "\(plan.mounts.map(\.summary))")
        // Every Landlock rule is on a host path; device nodes only if real nodes.
        #expect(plan.landlock.rules.allSatisfy { $0.hostPath != nil }, "\(plan.landlock.rules)")
        #expect(plan.landlock.rules.map(\.path).contains("/dev/null"))
        #expect(!plan.landlock.rules.map(\.path).contains("/dev/zero"), "a symlink got a rule")
        #expect(!plan.landlock.rules.map(\.path).contains("/tmp") && !plan.landlock.rules.map(\.path).contains("/proc"))
        #expect(plan.landlock.scopes.count == 2)
        #expect(plan.landlock.connectTCP == [] && plan.landlock.bindTCP == [])
        // No network family, no unix sockets, no System V IPC.
        #expect(plan.seccomp.socketFamilies == [.alg])
        #expect(plan.seccomp.rules.contains { $0.syscalls.contains("shmget") && $0.action == .errno })
        // Red-team F1/F2: io_uring (sockets past the family filter) and the path forms
        // of chmod/chown/xattr (not covered by Landlock) are refused in every nested run.
        for call in ["io_uring_setup", "io_uring_enter", "fchmodat", "chmod", "fchownat", "setxattr", "lsetxattr", "removexattr"] {
            #expect(plan.seccomp.rules.contains { $0.syscalls.contains(call) && $0.action == .errno }, "\(call) not denied")
        }
        // Red team 2, N4/N5: the fd forms too (a read-only fd in an ro bind is enough),
        // and watches on paths outside every bind.
        for call in ["fchmod", "fchown", "fsetxattr", "fremovexattr", "inotify_add_watch", "fanotify_init", "fanotify_mark"] {
            #expect(plan.seccomp.rules.contains { $0.syscalls.contains(call) && $0.action == .errno && $0.args.isEmpty }, "\(call) not denied")
        }
        let l = layers(plan)
        for name in ["landlock", "seccomp", "capabilities", "no_new_privs", "rlimits", "network", "unix_sockets", "ipc_namespace"] {
            #expect(l[name] == true, "\(name): \(l)")
        }
        for name in ["user_namespace", "mount_namespace", "pid_namespace", "uts_namespace", "tmpfs", "proc", "dev"] {
            #expect(l[name] == false, "\(name): \(l)")
        }
    }

    /// The forms of a call a rule matches, by argument: "0==0&1==0", "1&0xf==2".
    func forms(_ plan: RunPlan, _ call: String, _ action: SeccompAction) -> Set<String> {
        Set(plan.seccomp.rules.filter { $0.syscalls.contains(call) && $0.action == action }.map { r in
            r.args.map { a in
                switch a.op {
                case .maskedEqual: "\(a.index)&0x\(String(a.value, radix: 16))==\(a.valueTwo)"
                case .notEqual: "\(a.index)!=\(a.value)"
                default: "\(a.index)==\(a.value)"
                }
            }.joined(separator: "&")
        })
    }

    /// Red team 2, N1–N3, N6: calls on other processes of the invoker's uid allowed only
    /// on the caller itself, datagram socket pairs and file leases refused. Each as
    /// conditional rules that replace the profile's unconditional allow (which would
    /// win over them), with whole-register comparisons for what is allowed.
    @Test func callsOnOtherProcessesPairsAndLeasesAreFenced() throws {
        let profile = Self.nested.replacingOccurrences(of: "[seccomp]", with: "[seccomp]\nprofile = \"default\"")
        for plan in [try compile(Self.nested), try compile(profile)] {
            for call in ["prlimit64", "sched_setscheduler", "sched_setparam", "sched_setattr", "sched_setaffinity"] {
                #expect(forms(plan, call, .allow) == ["0==0"], "\(call): \(forms(plan, call, .allow))")
                #expect(forms(plan, call, .errno) == ["0!=0"], "\(call): \(forms(plan, call, .errno))")
            }
            #expect(forms(plan, "setpriority", .allow) == ["0==0&1==0"])
            #expect(forms(plan, "setpriority", .errno) == ["0!=0", "0==0&1!=0"])
            #expect(forms(plan, "ioprio_set", .allow) == ["0==1&1==0"])
            #expect(forms(plan, "ioprio_set", .errno) == ["0!=1", "0==1&1!=0"])
            #expect(forms(plan, "socketpair", .allow) == ["0==1&1&0xf==1", "0==1&1&0xf==5"])
            #expect(forms(plan, "socketpair", .errno) == ["0!=1", "0==1&1&0xf==2", "0==1&1&0xf==3"])
            #expect(forms(plan, "fcntl", .errno) == ["1&0xffffffff==1024"])
            #expect(forms(plan, "fcntl", .allow).count == 11 && forms(plan, "fcntl", .allow).contains("1&0xfffffffffffffc00==0"))
            for call in ["prlimit64", "setpriority", "socketpair", "fcntl"] {
                #expect(!plan.seccomp.rules.contains { $0.syscalls.contains(call) && $0.args.isEmpty }, "\(call) has an unconditional rule")
            }
        }
        // fcntl's allowed forms are every cmd below 2048 but F_SETLEASE, upper bits clear.
        let plan = try compile(Self.nested)
        let allowed = plan.seccomp.rules.filter { $0.syscalls == ["fcntl"] && $0.action == .allow }.map { $0.args[0] }
        func allows(_ cmd: UInt64) -> Bool { allowed.contains { cmd & $0.value == $0.valueTwo } }
        #expect((0..<2048).filter { !allows($0) } == [1024])
        #expect(!allows(1 << 32 | 1024) && !allows(1 << 32 | 3) && !allows(2048))
        // Accepting unix sockets leaves socketpair as the profile says.
        let unix = try compile(Self.nested.replacingOccurrences(of: "isolation = \"nested\"", with: "isolation = \"nested\"\nnested_without = [\"unix_sockets\"]"))
        #expect(!unix.seccomp.rules.contains { $0.syscalls.contains("socketpair") && !$0.args.isEmpty })
        #expect(forms(unix, "prlimit64", .allow) == ["0==0"])
        // The policy's own deny keeps its rule alone.
        let denied = try compile(Self.nested.replacingOccurrences(of: "[seccomp]\n", with: "[seccomp]\ndeny = [\"prlimit64\"]\n"))
        #expect(denied.seccomp.rules.filter { $0.syscalls.contains("prlimit64") }.map(\.origin) == ["seccomp.deny"])
        // Namespaced runs are unchanged: no such rules.
        let namespaced = try compile(Self.nested.replacingOccurrences(of: "isolation = \"nested\"", with: ""))
        #expect(!namespaced.seccomp.rules.contains { $0.origin == "builtin: nested, only on itself" })
    }

    /// R2: utimensat with times NULL stays in the kernel, with explicit times it goes
    /// to the supervisor (whole-register comparisons: a pointer); the legacy calls
    /// keep NULL only. Accepting "timestamps" leaves them as the profile says.
    @Test func explicitTimesGoToTheSupervisor() throws {
        let profile = Self.nested.replacingOccurrences(of: "[seccomp]", with: "[seccomp]\nprofile = \"default\"")
        for plan in [try compile(Self.nested), try compile(profile)] {
            #expect(forms(plan, "utimensat", .allow) == ["2==0"])
            #expect(forms(plan, "utimensat", .notify) == ["2!=0"])
            #expect(forms(plan, "utimensat", .errno).isEmpty)
            for (call, arg) in [("utime", 1), ("utimes", 1), ("futimesat", 2)] {
                #expect(forms(plan, call, .allow) == ["\(arg)==0"], "\(call)")
                #expect(forms(plan, call, .errno) == ["\(arg)!=0"], "\(call)")
            }
            #expect(!plan.seccomp.rules.contains { $0.syscalls.contains("utimensat") && $0.args.isEmpty })
            #expect(plan.seccomp.explicitTimesViaSupervisor == true)
            #expect(layers(plan)["timestamps"] == true)
        }
        let accepted = try compile(Self.nested.replacingOccurrences(of: "isolation = \"nested\"", with: "isolation = \"nested\"\nnested_without = [\"timestamps\"]"))
        #expect(!accepted.seccomp.rules.contains { $0.syscalls.contains("utimensat") })
        #expect(accepted.seccomp.explicitTimesViaSupervisor == nil)
        #expect(accepted.isolation?.accepted == [.timestamps])
        #expect(layers(accepted)["timestamps"] == false)
        let namespaced = try compile(Self.nested.replacingOccurrences(of: "isolation = \"nested\"", with: ""))
        #expect(namespaced.seccomp.explicitTimesViaSupervisor == nil)
        #expect(!namespaced.seccomp.rules.contains { $0.syscalls.contains("utimensat") })
    }

    @Test func acceptedGapsAreLeftOpenAndListed() throws {
        let plan = try compile(Self.nested.replacingOccurrences(
            of: "isolation = \"nested\"", with: "isolation = \"nested\"\nnested_without = [\"unix_sockets\", \"ipc\"]"))
        #expect(plan.seccomp.socketFamilies == [.alg, .unix])
        #expect(!plan.seccomp.rules.contains { $0.syscalls.contains("shmget") })
        #expect(plan.isolation?.accepted == [.ipc, .unixSockets])
        #expect(layers(plan)["unix_sockets"] == false && layers(plan)["ipc_namespace"] == false)
    }

    @Test func whatNestedCannotFenceIsRefusedUnlessAccepted() throws {
        // protect with a target present, a mask beneath a bind: refused, each named.
        let withFences = Self.nested.replacingOccurrences(of: "tmpfs = [\"/tmp\"]",
                                                          with: "tmpfs = [\"/tmp\"]\nprotect = [\".git\"]\nmask = [\"/usr/secret\", \"/elsewhere\"]")
        #expect { try compile(withFences) } throws: { e in
            let m = "\(e)"
            return m.contains("filesystem.protect: /work/proj/.git") && m.contains("filesystem.mask: /usr/secret")
                && !m.contains("/elsewhere") && m.contains("nested_without")
        }
        let accepted = withFences.replacingOccurrences(of: "isolation = \"nested\"",
                                                       with: "isolation = \"nested\"\nnested_without = [\"protect\", \"mask\"]")
        let plan = try compile(accepted)
        #expect(layers(plan)["protect"] == false && layers(plan)["mask"] == false)
        // A kernel without Landlock's scopes: refused unless accepted.
        #expect { try compile(Self.nested, host: host(abi: 5, uid: 0)) } throws: { "\($0)".contains("Landlock scopes") }
        // No Landlock at all, or a network mode that needs a namespace: refused outright.
        #expect { try compile(Self.nested, host: host(abi: 0, uid: 0)) } throws: { "\($0)".contains("needs Landlock") }
        #expect { try compile(Self.nested.replacingOccurrences(of: "mode = \"none\"", with: "mode = \"loopback\"")) } throws: {
            "\($0)".contains("network namespace")
        }
    }

    /// Red team 6, G1: an ro bind at or beneath an rw bind is writable nested (Landlock
    /// grants the rw rule's rights beneath it), so the plan is refused naming both,
    /// `{cwd}`-relative, a file, and written as { src, dst } alike; accepted, it runs
    /// with the gap listed and the layer not applied. An rw bind beneath an ro one, or
    /// ro binds beside the workspace, plan as before.
    @Test func anRoBindWithinAnRwBindIsRefusedUnlessAccepted() throws {
        let h = host(uid: 0, files: ["/work/proj/Makefile": .file, "/work/proj/cfg": .directory, "/usr/share": .directory])
        let shapes = [
            #"ro = ["/usr", "{cwd}/.git"]"#,
            #"ro = ["/usr", "/work/proj/Makefile"]"#,
            #"ro = ["/usr", { src = "{cwd}/cfg", dst = "/work/proj/cfg" }]"#,
        ]
        for (shape, inner) in zip(shapes, ["/work/proj/.git", "/work/proj/Makefile", "/work/proj/cfg"]) {
            let toml = Self.nested.replacingOccurrences(of: #"ro = ["/usr"]"#, with: shape)
            #expect { try compile(toml, host: h) } throws: { e in
                let m = "\(e)"
                return m.contains("\(inner) (beneath /work/proj)") && m.contains("ro_within_rw") && m.contains("stay writable")
            }
            // Namespaced, the same policy is a read-only mount inside the rw one: fine.
            _ = try compile(toml.replacingOccurrences(of: "isolation = \"nested\"", with: ""), host: h)
            let accepted = try compile(toml.replacingOccurrences(of: "isolation = \"nested\"",
                                                                 with: "isolation = \"nested\"\nnested_without = [\"ro_within_rw\"]"), host: h)
            #expect(accepted.isolation?.accepted == [.roWithinRw])
            #expect(layers(accepted)["ro_within_rw"] == false)
            let how = accepted.isolation?.layers.first { $0.name == "landlock" }?.how ?? ""
            #expect(how.contains("\(inner) ro, writable within rw"), "\(how)")
        }
        // rw beneath ro only adds; ro beside rw is what it says.
        let rwInRo = Self.nested.replacingOccurrences(of: #"rw = ["{cwd}"]"#, with: #"rw = ["{cwd}", "/usr/share"]"#)
        let plan = try compile(rwInRo, host: h)
        #expect(layers(plan)["ro_within_rw"] == nil && plan.isolation?.accepted == [])
        // The shipped workspace shape (agent: base's ro system paths, rw {cwd}) plans as before.
        _ = try compile(Self.nested, host: h)
    }

    @Test func namespacesOrNestedFollowsTheProbe() throws {
        let either = Self.nested.replacingOccurrences(of: "isolation = \"nested\"", with: "isolation = \"namespaces-or-nested\"")
        var h = host(uid: 0)
        h.namespaces = .blocked(NamespaceRefusal(why: "clone3: ENOSYS", errnos: [ProbeErrno(code: 38, name: "ENOSYS")]))
        let nested = try compile(either, host: h)
        #expect(nested.isNested)
        #expect(nested.isolation?.reason.contains("clone3: ENOSYS") == true)
        h.namespaces = .available
        let namespaced = try compile(either, host: h)
        #expect(namespaced.isolation?.mode == .namespaces && namespaced.isolation?.layers == [])
        #expect(namespaced.mounts.contains { $0.kind == .tmpfs })
    }

    /// Red-team F6: the fallback to nested only on errnos that mean "not permitted
    /// here"; ENOSPC (the per-user namespace count, which a concurrent run's command can
    /// exhaust to force a downgrade), ENOMEM and the like refuse the run, naming them.
    @Test func namespacesOrNestedFallsBackOnlyWhenNotPermitted() throws {
        func e(_ code: Int32, _ name: String) -> ProbeErrno { ProbeErrno(code: code, name: name) }
        let (eperm, eacces, enosys, einval) = (e(1, "EPERM"), e(13, "EACCES"), e(38, "ENOSYS"), e(22, "EINVAL"))
        let (enospc, enomem, eagain, eusers) = (e(28, "ENOSPC"), e(12, "ENOMEM"), e(11, "EAGAIN"), e(87, "EUSERS"))
        for ok in [[eperm], [eacces], [enosys], [einval], [eperm, einval]] {
            #expect(NamespaceRefusal(why: "w", errnos: ok).allowsNested, "\(ok)")
        }
        for bad in [[enospc], [enomem], [eagain], [eusers], [eperm, enospc], []] {
            #expect(!NamespaceRefusal(why: "w", errnos: bad).allowsNested, "\(bad)")
        }
        // Through the planner: refused with the key and the errno named.
        let either = Self.nested.replacingOccurrences(of: "isolation = \"nested\"", with: "isolation = \"namespaces-or-nested\"")
        var h = host(uid: 0)
        h.namespaces = .blocked(NamespaceRefusal(why: "clone3 refuses new user (ENOSPC) namespaces", errnos: [eperm, enospc]))
        do { _ = try compile(either, host: h); Issue.record("ENOSPC fell back to nested") } catch let err as PlanError {
            #expect(err.key == "process.isolation" && err.message.contains("with ENOSPC") && err.message.contains("count"), "\(err)")
        }
        h.namespaces = .blocked(NamespaceRefusal(why: "clone3 refuses new user (EPERM) namespaces", errnos: [eperm]))
        #expect(try compile(either, host: h).isNested)
    }

    /// Red-team F3/F4: without a user namespace another user, or a kept capability
    /// (a real one on the host), cannot be what the policy says: refused with the key.
    @Test func anotherUserOrKeptCapabilitiesAreRefused() throws {
        let withUser = Self.nested.replacingOccurrences(of: "isolation = \"nested\"", with: "isolation = \"nested\"\nuser = 65534")
        do { _ = try compile(withUser); Issue.record("another user was accepted") } catch let e as PlanError { #expect(e.key == "process.user", "\(e)") }
        let withCaps = Self.nested + "\n[capabilities]\nkeep = [\"CAP_SYS_NICE\"]\n"
        do { _ = try compile(withCaps); Issue.record("a kept capability was accepted") } catch let e as PlanError { #expect(e.key == "capabilities.keep", "\(e)") }
        // Control: with namespaces both compile.
        for toml in [withUser, withCaps] {
            _ = try compile(toml.replacingOccurrences(of: "isolation = \"nested\"", with: ""))
        }
    }
}
