import Foundation
import Testing
@testable import SandboxPolicy

/// Paths of the checkout, found from this file (Tests/SandboxPolicyTests/…).
private enum Checkout {
    static let testsDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let root = testsDir.deletingLastPathComponent().deletingLastPathComponent()
    static func fixture(_ name: String) -> String {
        testsDir.appendingPathComponent("Fixtures/seccomp/\(name)").path
    }
    static let defaultProfile = root.appendingPathComponent("Profiles/seccomp/default.json").path
}

/// The profile Podman ships, installed unchanged by Debian's golang-github-containers-common.
private let systemProfile = "/usr/share/containers/seccomp.json"
private let allowSkip = ProcessInfo.processInfo.environment["SANDBOX_TESTS_ALLOW_SKIP"] == "1"

private func loadError(_ path: String) throws -> PolicyError {
    do {
        let profile = try SeccompProfile.load(path: path)
        Issue.record("expected \(path) to be rejected, loaded \(profile.syscalls.count) rules")
        throw CancellationError()
    } catch let error as PolicyError {
        return error
    }
}

private func loadError(json: String) throws -> PolicyError {
    do {
        _ = try SeccompProfile.load(data: Data(json.utf8), source: "/inline.json")
        Issue.record("expected the profile to be rejected:\n\(json)")
        throw CancellationError()
    } catch let error as PolicyError {
        return error
    }
}

@Suite("Seccomp profiles")
struct SeccompProfileTests {

    // MARK: Docker / containerd / Podman format

    @Test("a hand-written profile in Docker's format loads with every feature")
    func dockerFormat() throws {
        let path = Checkout.fixture("docker-format.json")
        let p = try SeccompProfile.load(path: path)
        #expect(p.source == URL(fileURLWithPath: path).standardizedFileURL.path)
        #expect(p.source.hasPrefix("/"))
        #expect(p.defaultAction == .errno)
        #expect(p.defaultErrnoRet == 38)
        #expect(p.architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"])
        #expect(p.flags == ["SECCOMP_FILTER_FLAG_LOG"])
        #expect(p.syscalls.count == 10)

        // Names of other architectures are kept as written.
        #expect(p.syscalls[0].names == ["read", "write", "openat", "_llseek", "arm_fadvise64_64"])
        #expect(p.syscalls[0].args.isEmpty && p.syscalls[0].includes.isEmpty && p.syscalls[0].excludes.isEmpty)
        // The old single-name form.
        #expect(p.syscalls[1].names == ["getpid"])
        #expect(p.syscalls[1].action == .allow)

        let clone = p.syscalls[2]
        #expect(clone.args == [SeccompArg(index: 0, value: 0x7E02_0000, valueTwo: 0, op: .maskedEqual)])
        #expect(clone.excludes == SeccompCondition(caps: ["CAP_SYS_ADMIN"], arches: ["s390", "s390x"]))

        #expect(p.syscalls[3].action == .errno && p.syscalls[3].errnoRet == 38)
        // Capability names are normalized to the CAP_ form the planner compares.
        #expect(p.syscalls[4].includes == SeccompCondition(caps: ["CAP_SYS_PTRACE"], minKernel: "4.8"))
        #expect(p.syscalls[5].includes.arches == ["amd64", "x32"])

        // Podman's errno name next to errnoRet; two conditions.
        let socket = p.syscalls[6]
        #expect(socket.errnoRet == 22)
        #expect(socket.args == [SeccompArg(index: 0, value: 16, op: .equal), SeccompArg(index: 2, value: 9, op: .equal)])
        #expect(socket.excludes.caps == ["CAP_AUDIT_WRITE"])

        // valueTwo, the full 64-bit range, the last argument index.
        #expect(p.syscalls[7].args == [
            SeccompArg(index: 2, value: 6, valueTwo: 2, op: .maskedEqual),
            SeccompArg(index: 5, value: UInt64.max, valueTwo: 0, op: .notEqual),
        ])
        #expect(p.syscalls[8].action == .killProcess && p.syscalls[8].errnoRet == nil)
        // errno name alone.
        #expect(p.syscalls[9].errnoRet == 1)
    }

    @Test("the OCI runtime-spec form (architectures, defaultErrnoRet) loads")
    func ociForm() throws {
        let json = """
        {"defaultAction":"SCMP_ACT_LOG","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X32"],
         "flags":["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
         "syscalls":[{"names":["ptrace"],"action":"SCMP_ACT_NOTIFY"},
                     {"names":["bpf"],"action":"SCMP_ACT_TRACE","errnoRet":4242},
                     {"names":["getppid"],"action":"SCMP_ACT_KILL_THREAD"}]}
        """
        let p = try SeccompProfile.load(data: Data(json.utf8), source: "/x/oci.json")
        #expect(p.source == "/x/oci.json")
        #expect(p.defaultAction == .log && p.defaultErrnoRet == nil)
        #expect(p.architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"])
        #expect(p.syscalls.map(\.action) == [.notify, .trace, .killThread])
        #expect(p.syscalls[1].errnoRet == 4242)
    }

    // MARK: errors, each with its key path

    struct BadCase: CustomTestStringConvertible, Sendable {
        var file: String
        var keyPath: String
        var message: String
        var testDescription: String { file }
    }

    @Test("each bad profile names the key path and what is allowed", arguments: [
        BadCase(file: "unknown-action.json", keyPath: "syscalls[3].action",
                message: "unknown action \"SCMP_ACT_FOO\"; allowed: "),
        BadCase(file: "unknown-key.json", keyPath: "syscalls[0].argz",
                message: "unknown key \"argz\"; allowed: names, name, action"),
        BadCase(file: "bad-op.json", keyPath: "syscalls[1].args[1].op",
                message: "unknown operator \"SCMP_CMP_LIKE\"; allowed: SCMP_CMP_NE"),
        BadCase(file: "arg-index-6.json", keyPath: "syscalls[0].args[0].index",
                message: "6 is out of range; expected an argument index 0…5"),
    ])
    func badProfile(_ c: BadCase) throws {
        let path = Checkout.fixture(c.file)
        let error = try loadError(path)
        #expect(error.diagnostics.count == 1, "\(error)")
        let d = try #require(error.diagnostics.first)
        #expect(d.file == path)
        #expect(d.keyPath == c.keyPath)
        #expect(d.message.contains(c.message), "\(d.message)")
        #expect(d.line != nil)
    }

    @Test func unknownActionListsEveryAction() throws {
        let d = try #require(try loadError(Checkout.fixture("unknown-action.json")).diagnostics.first)
        #expect(d.line == 7)
        for action in SeccompAction.allCases { #expect(d.message.contains(action.rawValue)) }
        #expect(d.description.hasSuffix("unknown-action.json:7:38: syscalls[3].action: " + d.message))
    }

    @Test func missingFile() throws {
        let path = Checkout.fixture("does-not-exist.json")
        let error = try loadError(path)
        #expect(error.diagnostics == [PolicyDiagnostic(file: path, message: "seccomp profile not found")])
    }

    @Test func directoryIsNotAProfile() throws {
        let path = Checkout.fixture("")
        let d = try #require(try loadError(path).diagnostics.first)
        #expect(d.keyPath == nil && d.message.contains("directory"))
    }

    @Test func invalidJSONGivesLineAndColumn() throws {
        let path = Checkout.fixture("bad-json.json")
        let error = try loadError(path)
        #expect(error.diagnostics.count == 1)
        let d = try #require(error.diagnostics.first)
        #expect(d.file == path)
        #expect(d.keyPath == nil)
        #expect(d.line == 5 && d.column == 3)
        #expect(d.message.hasPrefix("invalid JSON: "))
    }

    @Test("JSON syntax errors", arguments: [
        ("", "unexpected end of file"),
        ("{\"defaultAction\": \"SCMP_ACT_ALLOW\"} x", "after the JSON value"),
        ("{'defaultAction': 1}", "expected a key in double quotes"),
        ("{\"a\": 01}", "leading zeros"),
        ("{\"a\": \"\\x\"}", "invalid escape"),
        ("{\"a\": \"\\ud800\"}", "unpaired surrogate"),
        ("{\"a\": tru}", "expected true"),
        ("[1, 2", "unexpected end of file"),
    ])
    func syntaxErrors(_ json: String, _ message: String) throws {
        let d = try #require(try loadError(json: json).diagnostics.first)
        #expect(d.keyPath == nil)
        #expect(d.message.contains(message), "\(d.message)")
    }

    @Test("listenerPath and listenerMetadata are refused: we run our own listener")
    func listener() throws {
        let error = try loadError(Checkout.fixture("listener.json"))
        #expect(error.diagnostics.map(\.keyPath) == ["listenerPath", "listenerMetadata"])
        #expect(error.diagnostics.allSatisfy { $0.message.contains("not supported") })
    }

    @Test("every problem is reported in one error")
    func collectsAllDiagnostics() throws {
        let error = try loadError(Checkout.fixture("many-errors.json"))
        let found = error.diagnostics.map { $0.keyPath ?? "-" }
        #expect(found == [
            "comment",
            "defaultAction",
            "architectures[1]",
            "flags[1]",
            "syscalls[0].name",
            "syscalls[1].errnoRet",
            "syscalls[2].names[0]",
            "syscalls[2].errnoRet",
            "syscalls[3].includes.caps[0]",
            "syscalls[3].includes.minKernel",
            "syscalls[4].action",
            "syscalls[4].args[0].value",
            "syscalls[5].errno",
        ], "\(error)")
        #expect(error.diagnostics.allSatisfy { $0.line != nil })
        let text = error.description
        #expect(text.contains("unknown action \"SCMP_ACT_DENY\""))
        #expect(text.contains("unknown architecture \"SCMP_ARCH_VAX\""))
        #expect(text.contains("unknown flag \"SECCOMP_FILTER_FLAG_FAST\""))
        #expect(text.contains("both \"name\" and \"names\""))
        #expect(text.contains("only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE"))
        #expect(text.contains("\"Bad Name\" is not a syscall name"))
        #expect(text.contains("-1 is negative"))
        #expect(text.contains("unknown capability \"CAP_SYS_WIZARD\""))
        #expect(text.contains("invalid kernel version \"4.8.1\""))
        #expect(text.contains("1.5 is not an integer"))
        #expect(text.contains("unknown errno name \"EWHATEVER\""))
    }

    @Test("smaller rules", arguments: [
        (#"{"syscalls": []}"#, "defaultAction", "missing"),
        (#"[]"#, "-", "expected an object"),
        (#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultAction": "SCMP_ACT_ALLOW"}"#, "defaultAction", "duplicate key"),
        (#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": null, "syscalls": []}"#, "syscalls", "duplicate key"),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}"#, "defaultErrnoRet", "only valid with"),
        (#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 4096}"#, "defaultErrnoRet", "out of range"),
        (#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "defaultErrno": "EACCES"}"#, "defaultErrno", "does not match"),
        (#"{"defaultAction": 1}"#, "defaultAction", "expected a string, found a number"),
        (#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": {}}"#, "syscalls", "expected an array"),
        (#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}"#, "syscalls[0].names", "missing"),
        (#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]}"#, "syscalls[0].names", "empty"),
        (#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"value": 1, "op": "SCMP_CMP_EQ"}]}]}"#, "syscalls[0].args[0].index", "missing"),
        (#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 18446744073709551616, "op": "SCMP_CMP_EQ"}]}]}"#, "syscalls[0].args[0].value", "out of range"),
        (#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"kernel": "5.0"}}]}"#, "syscalls[0].includes.kernel", "allowed: caps, arches, minKernel"),
        (#"{"defaultAction": "SCMP_ACT_ERRNO", "archMap": [{"subArchitectures": []}]}"#, "archMap[0].architecture", "missing"),
        (#"{"defaultAction": "SCMP_ACT_ERRNO", "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_I386"]}]}"#, "archMap[0].subArchitectures[0]", "unknown architecture"),
    ])
    func smallerRules(_ json: String, _ keyPath: String, _ message: String) throws {
        let error = try loadError(json: json)
        let d = try #require(error.diagnostics.first)
        #expect(error.diagnostics.count == 1, "\(error)")
        #expect((d.keyPath ?? "-") == keyPath)
        #expect(d.message.contains(message), "\(d.message)")
        #expect(d.file == "/inline.json")
    }

    @Test func nullMeansAbsentAndEmptyListenerIsIgnored() throws {
        let json = #"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": null, "listenerPath": "", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG", "errnoRet": null, "includes": null, "excludes": {"minKernel": ""}}]}"#
        let p = try SeccompProfile.load(data: Data(json.utf8), source: "/n.json")
        #expect(p.architectures.isEmpty)
        #expect(p.syscalls == [SeccompRule(names: ["read"], action: .log)])
    }

    @Test func stringsWithEscapesAndUnicode() throws {
        let json = #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["re\u0061d"], "action": "SCMP_ACT_ALLOW", "comment": "caf\u00e9 \ud83d\ude00 \"q\" \\ \/ \t ünïcode"}]}"#
        let p = try SeccompProfile.load(data: Data(json.utf8), source: "/u.json")
        #expect(p.syscalls.first?.names == ["read"])
    }

    // MARK: our default profile

    @Test("Profiles/seccomp/default.json loads and every name is a known syscall")
    func defaultProfile() throws {
        let p = try SeccompProfile.load(path: Checkout.defaultProfile)
        #expect(p.defaultAction == .errno)
        #expect(p.defaultErrnoRet == 1)
        #expect(p.architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"])
        for rule in p.syscalls {
            for name in rule.names {
                #expect(SyscallTable.isKnown(name), "\(name) is not a syscall on x86_64 or aarch64")
            }
            #expect(rule.includes.isEmpty && rule.excludes.isEmpty)
        }
        let names = p.syscalls.flatMap(\.names)
        #expect(Set(names).count == names.count - 4, "only personality may appear in more than one rule")
    }

    @Test("default.json allows what a shell, python3, gcc, make, git and node need")
    func defaultProfileAllows() throws {
        let p = try SeccompProfile.load(path: Checkout.defaultProfile)
        let allowed = Set(p.syscalls.filter { $0.action == .allow && $0.args.isEmpty }.flatMap(\.names))
        let needed = """
            read write openat close fstat newfstatat statx lseek mmap munmap mprotect brk
            rt_sigaction rt_sigprocmask rt_sigreturn ioctl pread64 access faccessat2 pipe2 dup2 dup3
            execve execveat fork vfork wait4 waitid exit_group futex set_tid_address
            set_robust_list rseq prlimit64 getrandom arch_prctl memfd_create close_range
            epoll_create1 epoll_ctl epoll_pwait poll ppoll pselect6 socket connect sendto recvfrom
            getdents64 readlink readlinkat getcwd chdir mkdir unlinkat renameat2 fchmodat2
            sched_getaffinity clock_gettime clock_nanosleep nanosleep uname getpid gettid
            eventfd2 madvise mremap kill tgkill sigaltstack prctl getuid geteuid
            """.split(whereSeparator: \.isWhitespace).map(String.init)
        for name in needed { #expect(allowed.contains(name), "\(name) must be allowed") }
    }

    @Test("default.json denies what a sandbox must not do")
    func defaultProfileDenies() throws {
        let p = try SeccompProfile.load(path: Checkout.defaultProfile)
        let mentioned = Set(p.syscalls.filter { $0.action == .allow }.flatMap(\.names))
        let denied = """
            mount umount2 pivot_root chroot unshare setns bpf keyctl add_key request_key
            perf_event_open io_uring_setup io_uring_enter io_uring_register open_by_handle_at
            name_to_handle_at kexec_load kexec_file_load init_module finit_module delete_module
            userfaultfd swapon swapoff reboot acct settimeofday clock_settime clock_adjtime adjtimex
            quotactl quotactl_fd iopl ioperm syslog vhangup lookup_dcookie ptrace process_vm_readv
            process_vm_writev fsopen fsmount fsconfig fspick move_mount open_tree open_tree_attr
            mount_setattr pidfd_getfd kcmp nfsservctl uselib _sysctl sethostname setdomainname
            fanotify_init modify_ldt
            """.split(whereSeparator: \.isWhitespace).map(String.init)
        for name in denied {
            #expect(SyscallTable.isKnown(name), "\(name) should be a known syscall")
            #expect(!mentioned.contains(name), "\(name) must not be allowed")
        }
    }

    @Test("default.json: clone without namespace flags, clone3 → ENOSYS, personality values")
    func defaultProfileConditionalRules() throws {
        let p = try SeccompProfile.load(path: Checkout.defaultProfile)
        let clone = p.syscalls.filter { $0.names.contains("clone") }
        #expect(clone == [SeccompRule(names: ["clone"], action: .allow,
                                      args: [SeccompArg(index: 0, value: 0x7E02_0000, valueTwo: 0, op: .maskedEqual)])])
        let clone3 = p.syscalls.filter { $0.names.contains("clone3") }
        #expect(clone3 == [SeccompRule(names: ["clone3"], action: .errno, errnoRet: 38)])
        let personality = p.syscalls.filter { $0.names.contains("personality") }
        #expect(personality.allSatisfy { $0.names == ["personality"] && $0.action == .allow && $0.args.count == 1 })
        #expect(personality.map { $0.args[0] } == [0, 8, 0x20000, 0x20008, 0xffff_ffff].map {
            SeccompArg(index: 0, value: $0, op: .equal)
        })
    }

    // MARK: the container runtimes' own default

    @Test("Podman's default profile (/usr/share/containers/seccomp.json) loads unchanged",
          .enabled(if: FileManager.default.fileExists(atPath: systemProfile) || !allowSkip,
                   "\(systemProfile) missing and SANDBOX_TESTS_ALLOW_SKIP=1"))
    func systemProfileLoads() throws {
        try #require(FileManager.default.fileExists(atPath: systemProfile),
                     "\(systemProfile) is missing: apt-get install golang-github-containers-common (or set SANDBOX_TESTS_ALLOW_SKIP=1)")
        let p = try SeccompProfile.load(path: systemProfile)
        #expect(p.defaultAction == .errno)
        #expect(p.architectures.contains("SCMP_ARCH_X86_64"))
        #expect(p.architectures.contains("SCMP_ARCH_AARCH64"))
        #expect(p.syscalls.count > 10)
        let allowed = Set(p.syscalls.filter { $0.action == .allow }.flatMap(\.names))
        #expect(allowed.contains("openat") && allowed.contains("read"))
        // Every capability a condition names is one we know.
        for rule in p.syscalls {
            for cap in rule.includes.caps + rule.excludes.caps { #expect(CapabilityTable.number(cap) != nil) }
        }
    }

    // MARK: tables

    @Test func syscallNumbers() {
        #expect(SyscallTable.number("read", arch: "x86_64") == 0)
        #expect(SyscallTable.number("openat", arch: "x86_64") == 257)
        #expect(SyscallTable.number("clone3", arch: "x86_64") == 435)
        #expect(SyscallTable.number("ptrace", arch: "x86_64") == 101)
        #expect(SyscallTable.number("openat", arch: "aarch64") == 56)
        #expect(SyscallTable.number("ptrace", arch: "aarch64") == 117)
        #expect(SyscallTable.number("clone3", arch: "aarch64") == 435)
        #expect(SyscallTable.number("io_setup", arch: "aarch64") == 0)
        #expect(SyscallTable.number("newfstatat", arch: "aarch64") == 79)
        #expect(SyscallTable.number("fcntl", arch: "aarch64") == 25)
        #expect(SyscallTable.number("mmap", arch: "aarch64") == 222)
        #expect(SyscallTable.number("openat", arch: "arm64") == 56)
        #expect(SyscallTable.number("openat", arch: "amd64") == 257)
        // Legacy calls exist on x86_64 only.
        #expect(SyscallTable.number("open", arch: "x86_64") == 2)
        #expect(SyscallTable.number("open", arch: "aarch64") == nil)
        #expect(SyscallTable.number("arch_prctl", arch: "aarch64") == nil)
        #expect(SyscallTable.number("read", arch: "riscv64") == nil)
        #expect(SyscallTable.number("arch_specific_syscall", arch: "aarch64") == nil)
    }

    @Test("syscalls newer than the 6.1 headers, up to Linux 6.18", arguments: [
        ("cachestat", 451), ("fchmodat2", 452), ("map_shadow_stack", 453), ("futex_wake", 454),
        ("futex_wait", 455), ("futex_requeue", 456), ("statmount", 457), ("listmount", 458),
        ("lsm_get_self_attr", 459), ("lsm_set_self_attr", 460), ("lsm_list_modules", 461),
        ("mseal", 462), ("setxattrat", 463), ("getxattrat", 464), ("listxattrat", 465),
        ("removexattrat", 466), ("open_tree_attr", 467), ("file_getattr", 468), ("file_setattr", 469),
    ])
    func newSyscalls(_ name: String, _ number: Int) {
        #expect(SyscallTable.number(name, arch: "x86_64") == number)
        #expect(SyscallTable.number(name, arch: "aarch64") == number)
    }

    @Test func x86OnlyNewSyscalls() {
        #expect(SyscallTable.number("uretprobe", arch: "x86_64") == 335)
        #expect(SyscallTable.number("uprobe", arch: "x86_64") == 336)
        #expect(SyscallTable.number("uretprobe", arch: "aarch64") == nil)
        #expect(SyscallTable.isKnown("listns") == false)   // Linux 6.19
    }

    @Test func syscallNamesAndReverseLookup() {
        for arch in SyscallTable.architectures {
            let names = SyscallTable.names(arch: arch)
            #expect(names == names.sorted())
            #expect(names.count > 300)
            var numbers = Set<Int>()
            for name in names {
                let n = SyscallTable.number(name, arch: arch)!
                #expect(numbers.insert(n).inserted, "\(arch): \(name) shares number \(n)")
                #expect(SyscallTable.name(number: n, arch: arch) == name)
                #expect(SyscallTable.isKnown(name))
            }
        }
        #expect(SyscallTable.names(arch: "mips").isEmpty)
        #expect(SyscallTable.isKnown("open"))          // x86_64 only, still known
        #expect(!SyscallTable.isKnown("_llseek"))      // 32-bit arches only
        #expect(!SyscallTable.isKnown("no_such_call"))
        #expect(SyscallTable.name(number: 101, arch: "x86_64") == "ptrace")
    }

    @Test func capabilities() {
        #expect(CapabilityTable.all.count == 41)
        #expect(CapabilityTable.all.enumerated().allSatisfy { $0.offset == $0.element.number })
        #expect(CapabilityTable.all.first!.name == "chown" && CapabilityTable.all.first!.number == 0)
        #expect(CapabilityTable.all.last!.name == "checkpoint_restore" && CapabilityTable.all.last!.number == 40)
        #expect(CapabilityTable.last == 40)
        for form in ["CAP_SYS_ADMIN", "cap_sys_admin", "sys_admin", "SYS_ADMIN", "Cap_Sys_Admin"] {
            #expect(CapabilityTable.number(form) == 21, "\(form)")
            #expect(CapabilityTable.canonicalName(form) == "sys_admin", "\(form)")
        }
        #expect(CapabilityTable.number("net_bind_service") == 10)
        #expect(CapabilityTable.number("CAP_BPF") == 39)
        #expect(CapabilityTable.number("perfmon") == 38)
        #expect(CapabilityTable.number("CAP_CHECKPOINT_RESTORE") == 40)
        for bad in ["", "CAP_", "sys-admin", "CAP_SYS_WIZARD", "cap_cap_chown", " chown", "41"] {
            #expect(CapabilityTable.number(bad) == nil, "\(bad)")
            #expect(CapabilityTable.canonicalName(bad) == nil, "\(bad)")
        }
        #expect(CapabilityTable.name(number: 19) == "sys_ptrace")
        #expect(CapabilityTable.name(number: 41) == nil)
    }

    @Test func errnoNames() {
        #expect(SeccompProfile.errnoNames["EPERM"] == 1)
        #expect(SeccompProfile.errnoNames["ENOSYS"] == 38)
        #expect(SeccompProfile.errnoNames["EAFNOSUPPORT"] == 97)
        #expect(SeccompProfile.errnoNames["EWOULDBLOCK"] == SeccompProfile.errnoNames["EAGAIN"])
    }
}
