#if canImport(Glibc)
import Glibc
#endif
import CDigest
import CSandbox
import CSeccomp
import FoundationEssentials
import SandboxVocabulary
import Synchronization

/// What a seccomp filter is compiled from: the seccomp part of a run plan
/// (`SandboxPlan.SeccompPlan`) in the shared vocabulary's types, so this module does
/// not depend on the planner. Field names match the plan's; `Codable` so the cache
/// can store exactly what an entry was compiled from.
public struct SeccompSpec: Codable, Sendable, Equatable {
    public struct Arg: Codable, Sendable, Equatable {
        /// Syscall argument 0…5.
        public var index: UInt32
        public var op: SeccompOperator
        /// For `SCMP_CMP_MASKED_EQ` the mask (OCI runtime-spec order, as runc).
        public var value: UInt64
        public var valueTwo: UInt64
        public init(index: UInt32, op: SeccompOperator, value: UInt64, valueTwo: UInt64 = 0) {
            self.index = index; self.op = op; self.value = value; self.valueTwo = valueTwo
        }
    }

    public struct Rule: Codable, Sendable, Equatable {
        public var syscalls: [String]
        /// The planner has already turned the policy's `on_violation` into one of these.
        public var action: SeccompAction
        /// The errno for `SCMP_ACT_ERRNO` (default EPERM), the message for `SCMP_ACT_TRACE`.
        public var errno: UInt32?
        /// ANDed comparisons, at most one per argument index (libseccomp's rule).
        public var args: [Arg]
        /// Where the rule comes from, for messages (`profile default.json`, `seccomp.deny`).
        public var origin: String
        public init(syscalls: [String], action: SeccompAction, errno: UInt32? = nil, args: [Arg] = [], origin: String) {
            self.syscalls = syscalls; self.action = action; self.errno = errno; self.args = args; self.origin = origin
        }
    }

    /// The architecture the plan was made for (`x86_64`, `aarch64`, or `SCMP_ARCH_*`);
    /// it must be this host's native one.
    public var arch: String
    public var defaultAction: SeccompAction
    public var defaultErrno: UInt32?
    public var rules: [Rule]
    /// The address families socket(2) may use; nil: all.
    public var socketFamilies: [SocketFamily]?
    /// socket(2) for another family is handed to the supervisor (USER_NOTIF), which
    /// answers EAFNOSUPPORT and names it in the denial account, instead of failing in
    /// the filter: for the notify modes, whose filter is not logged.
    public var socketFamiliesViaSupervisor = false
    /// The planner's digest of the rule set: the cache key.
    public var rulesDigest: String
    /// Syscall numbers for names libseccomp may not know (a syscall newer than the
    /// installed libseccomp, e.g. `getxattrat` in Linux 6.13 vs libseccomp 2.5.4), from
    /// the planner's own table for `arch`. Consulted only when libseccomp cannot resolve
    /// a name.
    public var syscallNumbers: [String: Int32]
    /// ioctl commands refused with EPERM by a filter of their own (``SeccompProgram/fence``).
    public var refusedIoctls: [UInt32] = []
    /// Nonzero: clone with any of these namespace flags refused (EPERM) and clone3
    /// (ENOSYS) by that filter too, whatever the main one's rules say
    /// (``SeccompCompiler/fence(arch:ioctl:namespaces:)``; the planner's mask).
    public var namespaceFlags: UInt64 = 0

    public init(arch: String, defaultAction: SeccompAction, defaultErrno: UInt32? = nil, rules: [Rule],
                socketFamilies: [SocketFamily]?, rulesDigest: String,
                syscallNumbers: [String: Int32] = [:]) {
        self.arch = arch; self.defaultAction = defaultAction; self.defaultErrno = defaultErrno
        self.rules = rules; self.socketFamilies = socketFamilies
        self.rulesDigest = rulesDigest; self.syscallNumbers = syscallNumbers
    }
}

/// A compiled seccomp filter, ready for `seccomp(SECCOMP_SET_MODE_FILTER)` in the child.
public struct SeccompProgram: Sendable, Equatable {
    /// The raw `struct sock_filter` array (8 bytes per instruction, host byte order).
    public let filter: [UInt8]
    public var instructionCount: Int { filter.count / 8 }
    /// Read from the cache: libseccomp was not called.
    public let cacheHit: Bool
    /// Some rule (or the default) is `SCMP_ACT_NOTIFY`: the child must install the
    /// filter with `SECCOMP_FILTER_FLAG_NEW_LISTENER` and hand the listener back.
    public let usesNotify: Bool
    /// Syscall names neither libseccomp nor `SeccompSpec.syscallNumbers` could number,
    /// left out of the filter because leaving them out cannot allow more (they get the
    /// default action, which denies); for the run result's "not applied".
    public let unresolvedSyscalls: [String]
    /// Instructions of the unknown-number prefix at the start of `filter` (0: none).
    public let unknownPrefixLength: Int
    /// The fence, a filter of its own installed after `filter` (and after
    /// ``unknownNumberFilter``), or nil: see ``SeccompCompiler/fence(arch:ioctl:namespaces:)``.
    public var fence: [UInt8]? = nil

    public init(filter: [UInt8], cacheHit: Bool, usesNotify: Bool, unresolvedSyscalls: [String] = [],
                unknownPrefixLength: Int = 0) {
        self.filter = filter; self.cacheHit = cacheHit; self.usesNotify = usesNotify
        self.unresolvedSyscalls = unresolvedSyscalls; self.unknownPrefixLength = unknownPrefixLength
    }

    /// The unknown-number prefix as a filter of its own (its jumps past the prefix
    /// land on a final ALLOW), or nil without one. Installed after `filter` when the
    /// filter's denials are logged (SECCOMP_FILTER_FLAG_LOG): the kernel takes the
    /// most recently installed filter's result among equal actions, so an ENOSYS for
    /// a number no table names comes from this unlogged filter. Such a call is the
    /// kernel's own "no such call", not a policy denial, and a flood of them (a
    /// fuzzer, LeakTests) would otherwise cost ~10 µs each in audit records.
    public var unknownNumberFilter: [UInt8]? {
        guard unknownPrefixLength > 0 else { return nil }
        var allow: [UInt8] = []
        withUnsafeBytes(of: UInt16(0x06)) { allow.append(contentsOf: $0) } // BPF_RET | BPF_K
        allow += [0, 0]
        withUnsafeBytes(of: UInt32(0x7fff_0000)) { allow.append(contentsOf: $0) } // SECCOMP_RET_ALLOW
        return Array(filter.prefix(unknownPrefixLength * 8)) + allow
    }
}

/// Compiles a ``SeccompSpec`` to BPF with libseccomp, in the supervisor, before clone.
///
/// The filter:
/// * takes the spec's default action and rules (argument comparisons included);
/// * is for the native architecture only: libseccomp's architecture check sends every
///   other one (i386 via `int 0x80` on x86_64) to the bad-arch action, set here to
///   KILL_PROCESS, and its x86_64 section sends x32 system calls
///   (`nr | __X32_SYSCALL_BIT`) there too;
/// * with `socketFamilies` set, fails socket(2) for any other family with
///   EAFNOSUPPORT. libseccomp cannot say "a0 not in {…}" — one rule may compare an
///   argument only once (EINVAL) and separate `a0 != x` rules are ORed, which denies
///   everything — so that check is a short BPF prefix in front of libseccomp's
///   program: native arch and `socket` → compare the low 32 bits of a0 (the kernel
///   reads an `int`) against each allowed family → match: continue into the
///   libseccomp program (the profile decides as before); no match: ERRNO(EAFNOSUPPORT).
/// * when the default action denies, answers system-call numbers this build does not
///   know with ENOSYS in the filter itself (``unknownNumberPrefix``), as a kernel
///   without them would: they never reach the notify listener, so a command cannot
///   make the supervisor keep one entry per made-up number.
public enum SeccompCompiler {
    /// Bumped when the generated program changes for the same spec, so old cache
    /// entries are not reused. 3: the unknown-number (ENOSYS) prefix. 4: the
    /// unknown-number prefix's length in the entry. 5: the socket-family prefix may
    /// notify (socketFamiliesViaSupervisor). 7: the socket prefix covers socketpair
    /// and MPTCP.
    static let formatVersion = 7

    private static let compiles = Atomic<Int>(0)

    /// How many times this process has called libseccomp to compile (not counting
    /// cache hits). For tests and debugging.
    public static var compileCount: Int { compiles.load(ordering: .relaxed) }

    /// Compiles `spec`. With a `cacheDir`, the program is looked up first under
    /// `<cacheDir>/<rulesDigest>-<arch>-libseccomp<version>-v<format>.bpf`; an entry is
    /// used only if its header names the same digest, architecture, libseccomp and
    /// format, and our own digest of the whole spec (`FilterCache.specDigest`: the
    /// name's digest comes from the caller), and the file and directory belong to us
    /// (or root) and are not writable by others. A miss compiles and stores the result
    /// atomically (temporary file, mode 0600, then rename; the directory is created
    /// 0700). A hit returns `cacheHit = true` without calling libseccomp.
    /// A cache directory that is not ours is an error, never silently trusted.
    public static func compile(_ spec: SeccompSpec, cacheDir: String?) throws -> SeccompProgram {
        var program = try compileMain(spec, cacheDir: cacheDir)
        if !spec.refusedIoctls.isEmpty || spec.namespaceFlags != 0 {
            // Built every time (a few instructions, no libseccomp), so not cached.
            func number(_ name: String) throws -> UInt32 {
                let nr = seccomp_syscall_resolve_name(name)
                guard nr >= 0 else {
                    throw KernelError(operation: "seccomp_syscall_resolve_name", subject: name,
                                     detail: "no \(name)(2) on this architecture; the fence cannot be built")
                }
                return UInt32(nr)
            }
            let clone3 = seccomp_syscall_resolve_name("clone3")
            program.fence = try fence(
                arch: seccomp_arch_native(),
                ioctl: spec.refusedIoctls.isEmpty ? nil : (try number("ioctl"), spec.refusedIoctls),
                namespaces: spec.namespaceFlags == 0 ? nil
                    : (try number("clone"), clone3 >= 0 ? UInt32(clone3) : nil, spec.namespaceFlags))
        }
        return program
    }

    private static func compileMain(_ spec: SeccompSpec, cacheDir: String?) throws -> SeccompProgram {
        let native = seccomp_arch_native()
        let archName = try checkArch(spec.arch, native: native)
        let usesNotify = try resolvedActions(spec).contains(SCMP_ACT_NOTIFY)
            || (spec.socketFamiliesViaSupervisor && spec.socketFamilies != nil)

        var cache: FilterCache?
        if let cacheDir, !spec.rulesDigest.isEmpty {
            // A filter this process compiled or loaded before: immutable, kept in memory.
            let path = FilterCache.path(directory: cacheDir, spec: spec, arch: archName)
            if let entry = FilterCache.remembered(path, spec) {
                return SeccompProgram(filter: entry.filter, cacheHit: true, usesNotify: usesNotify,
                                      unresolvedSyscalls: entry.unresolved, unknownPrefixLength: entry.prefixLength)
            }
            cache = try FilterCache(directory: cacheDir, spec: spec, arch: archName)
            if let entry = cache?.load() {
                FilterCache.remember(path, spec, entry)
                return SeccompProgram(filter: entry.filter, cacheHit: true, usesNotify: usesNotify,
                                      unresolvedSyscalls: entry.unresolved, unknownPrefixLength: entry.prefixLength)
            }
        }

        var (filter, unresolved) = try compileWithLibseccomp(spec)
        if let families = spec.socketFamilies {
            let numbers = families.map(\.number)
            let socketNR = seccomp_syscall_resolve_name("socket"), socketpairNR = seccomp_syscall_resolve_name("socketpair")
            guard socketNR >= 0, socketpairNR >= 0 else {
                throw KernelError(operation: "seccomp_syscall_resolve_name", subject: "socket",
                                 detail: "no socket(2) or socketpair(2) on \(archName); socket_families cannot be enforced")
            }
            filter = try socketFamilyPrefix(arch: native, socketNR: UInt32(socketNR), socketpairNR: UInt32(socketpairNR),
                                            families: Array(Set(numbers)).sorted(),
                                            viaSupervisor: spec.socketFamiliesViaSupervisor) + filter
        }
        // Outermost, so an unknown number is answered before anything else looks at it.
        var prefixLength = 0
        if let prefix = try unknownNumberPrefix(spec, native: native) { filter = prefix + filter; prefixLength = prefix.count / 8 }
        guard filter.count % 8 == 0, filter.count / 8 <= 4096 else {
            throw KernelError(operation: "seccomp", subject: "filter",
                             detail: "\(filter.count / 8) instructions; the kernel takes at most 4096 (BPF_MAXINSNS)")
        }
        if let cache {
            cache.store(filter, unresolved: unresolved, prefixLength: prefixLength)
            FilterCache.remember(cache.path, spec, (filter, unresolved, prefixLength))
        }
        return SeccompProgram(filter: filter, cacheHit: false, usesNotify: usesNotify, unresolvedSyscalls: unresolved,
                              unknownPrefixLength: prefixLength)
    }

    // MARK: - libseccomp

    private static func compileWithLibseccomp(_ spec: SeccompSpec) throws -> (filter: [UInt8], unresolved: [String]) {
        let defaultAction = try action(spec.defaultAction, errno: spec.defaultErrno, subject: "defaultAction")
        guard let ctx = seccomp_init(defaultAction) else {
            throw KernelError(operation: "seccomp_init", subject: spec.defaultAction.rawValue,
                             detail: "libseccomp or the kernel does not support this default action")
        }
        defer { seccomp_release(ctx) }
        compiles.add(1, ordering: .relaxed)

        // Anything not native (i386 on x86_64) kills the whole process, not just the
        // thread (libseccomp's default bad-arch action is KILL_THREAD).
        var rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)
        guard rc == 0 else {
            throw KernelError(operation: "seccomp_attr_set", subject: "SCMP_FLTATR_ACT_BADARCH", errno: -rc)
        }
        // A binary tree of syscall numbers instead of a linear list: a large profile
        // (Docker's allows ~370 syscalls) costs a few comparisons per syscall, not hundreds.
        // Best effort: an older libseccomp without it still produces a correct filter.
        _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)

        let defaultDenies = !permissive(defaultAction)
        var unresolved: [String] = []
        for rule in spec.rules {
            let act = try action(rule.action, errno: rule.errno, subject: rule.origin)
            // libseccomp refuses a rule whose action is the default (EACCES); it changes nothing.
            if act == defaultAction { continue }
            var comparisons = try rule.args.map { arg in
                scmp_arg_cmp(arg: arg.index, op: compareOp(arg.op),
                             datum_a: arg.value, datum_b: arg.valueTwo)
            }
            for name in rule.syscalls {
                var nr = seccomp_syscall_resolve_name(name)
                if nr == -1 /* __NR_SCMP_ERROR */, let number = spec.syscallNumbers[name] { nr = number }
                if nr == -1 {
                    // Leaving the rule out gives this syscall the default action. That is
                    // safe when the rule would have allowed it, or when the default denies
                    // too; a deny rule under an allowing default must not vanish.
                    guard permissive(act) || defaultDenies else {
                        throw KernelError(operation: "seccomp_syscall_resolve_name", subject: name,
                                         detail: "libseccomp \(libseccompVersion()) does not know this system call "
                                             + "and no number was given; denying it is impossible (\(rule.origin))")
                    }
                    unresolved.append(name)
                    continue
                }
                rc = comparisons.withUnsafeMutableBufferPointer { buffer in
                    seccomp_rule_add_array(ctx, act, nr, UInt32(buffer.count), buffer.baseAddress)
                }
                guard rc == 0 else {
                    throw KernelError(operation: "seccomp_rule_add", subject: name, errno: -rc,
                                     detail: "\(rule.action.rawValue) from \(rule.origin)")
                }
            }
        }

        let memfd = sbx_fence_memfd("sandbox-seccomp-bpf")
        guard memfd >= 0 else {
            throw KernelError(operation: "memfd_create", subject: "sandbox-seccomp-bpf", errno: errno)
        }
        defer { Glibc.close(memfd) }
        rc = seccomp_export_bpf(ctx, memfd)
        guard rc == 0 else {
            throw KernelError(operation: "seccomp_export_bpf", subject: "memfd", errno: -rc)
        }
        guard lseek(memfd, 0, SEEK_SET) == 0, let bytes = readAll(memfd) else {
            throw KernelError(operation: "read", subject: "exported BPF (memfd)", errno: errno)
        }
        return (bytes, Array(Set(unresolved)).sorted())
    }

    /// Actions that let the syscall run (ALLOW, LOG).
    private static func permissive(_ action: UInt32) -> Bool {
        action == SCMP_ACT_ALLOW || action == SCMP_ACT_LOG
    }

    /// Every action the filter can return, resolved (for `usesNotify`).
    private static func resolvedActions(_ spec: SeccompSpec) throws -> [UInt32] {
        var actions = [try action(spec.defaultAction, errno: spec.defaultErrno, subject: "defaultAction")]
        for rule in spec.rules where !rule.syscalls.isEmpty {
            actions.append(try action(rule.action, errno: rule.errno, subject: rule.origin))
        }
        return actions
    }

    /// The libseccomp action value. `SCMP_ACT_KILL` is KILL_THREAD, as in libseccomp and runc.
    static func action(_ action: SeccompAction, errno: UInt32?, subject: String) throws -> UInt32 {
        switch action {
        case .allow: return SCMP_ACT_ALLOW
        case .errno:
            let value = errno ?? UInt32(EPERM)
            guard value <= 0xffff else {
                throw KernelError(operation: "seccomp", subject: subject, detail: "errno \(value) does not fit 16 bits")
            }
            return sbx_fence_scmp_act_errno(UInt16(value))
        case .kill, .killThread: return SCMP_ACT_KILL_THREAD
        case .killProcess: return SCMP_ACT_KILL_PROCESS
        case .trap: return SCMP_ACT_TRAP
        case .trace: return sbx_fence_scmp_act_trace(UInt16(truncatingIfNeeded: errno ?? 0))
        case .log: return SCMP_ACT_LOG
        case .notify: return SCMP_ACT_NOTIFY
        }
    }

    private static func compareOp(_ op: SeccompOperator) -> scmp_compare {
        switch op {
        case .notEqual: SCMP_CMP_NE
        case .lessThan: SCMP_CMP_LT
        case .lessOrEqual: SCMP_CMP_LE
        case .equal: SCMP_CMP_EQ
        case .greaterOrEqual: SCMP_CMP_GE
        case .greaterThan: SCMP_CMP_GT
        case .maskedEqual: SCMP_CMP_MASKED_EQ
        }
    }

    /// The spec's architecture must be this host's: the filter is native-only and the
    /// syscall numbers come from the native table. Returns libseccomp's name for it.
    private static func checkArch(_ arch: String, native: UInt32) throws -> String {
        var name = arch.lowercased()
        if name.hasPrefix("scmp_arch_") { name.removeFirst("scmp_arch_".count) }
        if name == "amd64" { name = "x86_64" }
        if name == "arm64" { name = "aarch64" }
        let token = seccomp_arch_resolve_name(name)
        guard token != 0, token == native else {
            let names: [String] = ["x86_64", "aarch64", "riscv64", "ppc64le", "s390x", "x86", "arm"]
            let nativeName = names.first { seccomp_arch_resolve_name($0) == native } ?? "0x\(String(native, radix: 16))"
            throw KernelError(operation: "seccomp", subject: "arch '\(arch)'",
                             detail: "this host's native architecture is \(nativeName)")
        }
        return name
    }

    /// The classic-BPF words the hand-built programs here use (socketFamilyPrefix,
    /// ioctlFence), and their encoding as `struct sock_filter`s.
    enum BPF {
        typealias Instruction = (op: UInt16, jt: UInt8, jf: UInt8, k: UInt32)
        static let ldAbs: UInt16 = 0x20    // BPF_LD | BPF_W | BPF_ABS
        static let jeq: UInt16 = 0x15      // BPF_JMP | BPF_JEQ | BPF_K
        static let ret: UInt16 = 0x06      // BPF_RET | BPF_K

        /// `code` as the kernel reads it: 8 bytes per instruction, host byte order.
        static func assemble(_ code: [Instruction]) -> [UInt8] {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(code.count * 8)
            for (op, jt, jf, k) in code {
                withUnsafeBytes(of: op) { bytes.append(contentsOf: $0) }
                bytes.append(jt)
                bytes.append(jf)
                withUnsafeBytes(of: k) { bytes.append(contentsOf: $0) }
            }
            return bytes
        }
    }

    /// The BPF prefix that fails socket(2) and socketpair(2) for families not in
    /// `families` with EAFNOSUPPORT, and socket(2) of the MPTCP protocol with
    /// EPROTONOSUPPORT, and lets everything else through to the program that follows
    /// (which begins right after the prefix; BPF jumps are relative, so libseccomp's
    /// program works unchanged behind it). socketpair reaches a family's create code
    /// as socket does (red team, session 46: AF_TIPC pairs where the module loads),
    /// except AF_UNIX, whose pair is two connected ends and nothing outside: it is
    /// always let through (programs make them without asking for unix sockets).
    /// Landlock's TCP rules do not see MPTCP sockets (the same review: an MPTCP socket
    /// connected past `connect_tcp = []` and fell back to TCP).
    ///
    ///     0      ld  [arch]
    ///     1      jeq native,     0, → lib       other arch: libseccomp kills it
    ///     2      ld  [nr]
    ///     3      jeq socket,     → 7, 0          x32 numbers (nr|0x40000000): killed there
    ///     4      jeq socketpair, 0, → lib
    ///     5      ld  [args[0] low 32 bits]       the kernel's `int family`
    ///     6      jeq AF_UNIX,    → lib, → 10
    ///     7      ld  [args[2] low 32 bits]       the protocol
    ///     8      jeq MPTCP,      → mptcp, 0
    ///     9      ld  [args[0] low 32 bits]
    ///     10…9+n jeq family_k,   → lib, 0
    ///     10+n   ret ERRNO(EAFNOSUPPORT)         (viaSupervisor: ret USER_NOTIF)
    ///     11+n   mptcp: ret ERRNO(EPROTONOSUPPORT) (viaSupervisor: ret USER_NOTIF)
    static func socketFamilyPrefix(arch: UInt32, socketNR: UInt32, socketpairNR: UInt32, families: [UInt32],
                                   viaSupervisor: Bool = false) throws -> [UInt8] {
        guard families.count <= 64 else {
            throw KernelError(operation: "seccomp", subject: "socket_families", detail: "at most 64 families")
        }
        let (ldAbs, jeq, ret) = (BPF.ldAbs, BPF.jeq, BPF.ret)
        // struct seccomp_data: nr @0, arch @4, instruction_pointer @8, args[6] @16.
        let little = UInt16(1).littleEndian == 1
        let a0Low: UInt32 = little ? 16 : 20, a2Low: UInt32 = little ? 32 : 36
        let n = families.count
        let lib = 12 + n, mptcp = 11 + n
        func to(_ target: Int, from index: Int) -> UInt8 { UInt8(target - index - 1) }
        var code: [BPF.Instruction] = [
            (ldAbs, 0, 0, 4),
            (jeq, 0, to(lib, from: 1), arch),
            (ldAbs, 0, 0, 0),
            (jeq, to(7, from: 3), 0, socketNR),
            (jeq, 0, to(lib, from: 4), socketpairNR),
            (ldAbs, 0, 0, a0Low),
            (jeq, to(lib, from: 6), to(10, from: 6), 1 /* AF_UNIX */),
            (ldAbs, 0, 0, a2Low),
            (jeq, to(mptcp, from: 8), 0, Self.ipprotoMPTCP),
            (ldAbs, 0, 0, a0Low),
        ]
        for family in families { code.append((jeq, to(lib, from: code.count), 0, family)) }
        code.append((ret, 0, 0, viaSupervisor ? SCMP_ACT_NOTIFY : sbx_fence_scmp_act_errno(UInt16(EAFNOSUPPORT))))
        code.append((ret, 0, 0, viaSupervisor ? SCMP_ACT_NOTIFY : sbx_fence_scmp_act_errno(UInt16(EPROTONOSUPPORT))))
        return BPF.assemble(code)
    }

    /// IPPROTO_MPTCP (linux/in.h).
    public static let ipprotoMPTCP: UInt32 = 262

    /// The fence: a filter of its own, stacked after the main one, that refuses what
    /// the main one cannot be trusted to refuse whatever its profile says, and allows
    /// everything else (the main filter decides that; the kernel takes the strictest
    /// answer of all). Another architecture (which the main filter kills) is allowed.
    /// - `ioctl` (nested runs): the commands refused with EPERM, compared on the low 32
    ///   bits of ioctl's second argument, as the kernel reads it (`unsigned int cmd`):
    ///   a caller's sign-extended 0xffffffff_800c6613 is the same command as 0x800c6613.
    /// - `namespaces` (a deny list with unshare beside profile rules for clone that
    ///   cannot be read as refusing namespaces): clone with one of `flags` in the low
    ///   32 bits of its flags (all the kernel reads) gets EPERM, and clone3, whose flags
    ///   lie behind a pointer, ENOSYS (glibc then uses clone).
    ///
    ///     0   ld  [arch]
    ///     1   jeq native,  0, → allow
    ///     2   ld  [nr]
    ///         namespaces:  jeq clone3, → enosys, 0
    ///                      jeq clone,  0, → ioctl block
    ///                      ld  [args[0] low 32 bits]
    ///                      jset CLONE_NEW*, → eperm, → allow
    ///         ioctl:       jeq ioctl,  0, → allow
    ///                      ld  [args[1] low 32 bits]
    ///                      jeq cmd_k,  → eperm, 0      (each command)
    ///         allow:  ret ALLOW
    ///         eperm:  ret ERRNO(EPERM)
    ///         enosys: ret ERRNO(ENOSYS)
    static func fence(arch: UInt32, ioctl: (nr: UInt32, commands: [UInt32])?,
                      namespaces: (clone: UInt32, clone3: UInt32?, flags: UInt64)?) throws -> [UInt8] {
        let commands = Array(Set(ioctl?.commands ?? [])).sorted()
        guard commands.count <= 200, ioctl == nil || !commands.isEmpty, ioctl != nil || namespaces != nil else {
            throw KernelError(operation: "seccomp", subject: "fence", detail: "\(commands.count) ioctl commands; 1 to 200 are supported")
        }
        let (ldAbs, jeq, ret) = (BPF.ldAbs, BPF.jeq, BPF.ret)
        let jset: UInt16 = 0x45   // BPF_JMP | BPF_JSET | BPF_K
        let little = UInt16(1).littleEndian == 1
        let a0Low: UInt32 = little ? 16 : 20, a1Low: UInt32 = little ? 24 : 28   // seccomp_data.args[0] @16, args[1] @24
        // Targets: an index, or one of the three returns at the end (resolved below).
        let allow = -1, eperm = -2, enosys = -3
        var code: [(op: UInt16, jt: Int?, jf: Int?, k: UInt32)] = [
            (ldAbs, nil, nil, 4), (jeq, nil, allow, arch), (ldAbs, nil, nil, 0),
        ]
        if let ns = namespaces {
            if let clone3 = ns.clone3 { code.append((jeq, enosys, nil, clone3)) }
            let afterClone = code.count + 3
            code.append((jeq, nil, afterClone, ns.clone))
            code.append((ldAbs, nil, nil, a0Low))
            code.append((jset, eperm, allow, UInt32(truncatingIfNeeded: ns.flags)))
        }
        if let ioctl {
            code.append((jeq, nil, allow, ioctl.nr))
            code.append((ldAbs, nil, nil, a1Low))
            for cmd in commands { code.append((jeq, eperm, nil, cmd)) }
        }
        let end = code.count
        func resolve(_ target: Int?, from index: Int) -> UInt8 {
            guard let target else { return 0 }
            let absolute = target >= 0 ? target : end + (-target - 1)
            return UInt8(absolute - index - 1)
        }
        var out: [BPF.Instruction] = code.enumerated().map { i, c in (c.op, resolve(c.jt, from: i), resolve(c.jf, from: i), c.k) }
        out.append((ret, 0, 0, 0x7fff_0000))                               // SECCOMP_RET_ALLOW
        out.append((ret, 0, 0, sbx_fence_scmp_act_errno(UInt16(EPERM))))
        out.append((ret, 0, 0, sbx_fence_scmp_act_errno(UInt16(ENOSYS))))
        return BPF.assemble(out)
    }

    /// Every system-call number this build can name on the native architecture:
    /// libseccomp's table (numbers below 1024; an architecture numbered above that,
    /// such as MIPS, gets none and so no prefix) and the spec's own numbers.
    static func knownNumbers(_ spec: SeccompSpec, native: UInt32) -> Set<UInt32> {
        var known = Set<UInt32>()
        for nr in Int32(0)..<1024 {
            if let name = seccomp_syscall_resolve_num_arch(native, nr) {
                free(name)
                known.insert(UInt32(nr))
            }
        }
        for nr in spec.syscallNumbers.values where nr >= 0 { known.insert(UInt32(nr)) }
        return known
    }

    /// The BPF prefix that answers numbers no table names with ERRNO(ENOSYS), or nil
    /// when the default action lets calls through (ALLOW, LOG, TRACE: an unknown
    /// number would not reach the supervisor, and a syscall newer than our tables must
    /// not be denied by a policy that allows by default) or nothing is known.
    ///
    /// "Unknown": above the highest known number, or in a gap below it (x86_64 has none
    /// from 335 to 423). A number the kernel has but neither libseccomp nor the planner
    /// names is answered ENOSYS too, as runc does, so a program falls back as it would
    /// on an older kernel. On x86_64, numbers with the x32 bit (0x40000000…0xfffffffe)
    /// go on to libseccomp's program, which kills them (x32 is not the native ABI).
    ///
    ///     ld  [arch]; jeq native, 0, →lib
    ///     ld  [nr];   jgt max, →above, 0
    ///     per gap lo…hi, ascending: jge lo, 0, →lib; jgt hi, 0, →enosys
    ///     ja  →lib
    ///     above: (x86_64) jge 0x40000000, 0, →enosys; jeq 0xffffffff, →enosys, →lib
    ///     enosys: ret ERRNO(ENOSYS)
    ///     lib: (the rest of the filter)
    static func unknownNumberPrefix(_ spec: SeccompSpec, native: UInt32) throws -> [UInt8]? {
        let defaultAction = try action(spec.defaultAction, errno: spec.defaultErrno, subject: "defaultAction")
        let tracing = defaultAction & 0xffff_0000 == sbx_fence_scmp_act_trace(0)
        guard !permissive(defaultAction), !tracing else { return nil }
        let known = knownNumbers(spec, native: native)
        guard let maxKnown = known.max() else { return nil }
        var gaps: [(lo: UInt32, hi: UInt32)] = []
        var nr: UInt32 = 0
        while nr < maxKnown {
            if known.contains(nr) { nr += 1; continue }
            let lo = nr
            while !known.contains(nr + 1) { nr += 1 }
            gaps.append((lo, nr))
            nr += 1
        }
        // Each gap costs two instructions on every call below it; more than this many
        // (no architecture has) would only cost time, and numbers in the gaps left out
        // still get the default action, as before.
        if gaps.count > 32 { gaps = Array(gaps.prefix(32)) }
        return prefixProgram(native: native, maxKnown: maxKnown, gaps: gaps)
    }

    /// ``unknownNumberPrefix(_:native:)`` for this host's architecture.
    static func unknownNumberPrefix(_ spec: SeccompSpec) throws -> [UInt8]? {
        try unknownNumberPrefix(spec, native: seccomp_arch_native())
    }

    static func prefixProgram(native: UInt32, maxKnown: UInt32, gaps: [(lo: UInt32, hi: UInt32)]) -> [UInt8] {
        enum Target { case next, lib, enosys, above }
        let ldAbs: UInt16 = 0x20, jeq: UInt16 = 0x15, jgt: UInt16 = 0x25, jge: UInt16 = 0x35
        let ja: UInt16 = 0x05, ret: UInt16 = 0x06
        var code: [(op: UInt16, jt: Target, jf: Target, k: UInt32)] = []
        code.append((ldAbs, .next, .next, 4))
        code.append((jeq, .next, .lib, native))
        code.append((ldAbs, .next, .next, 0))
        code.append((jgt, .above, .next, maxKnown))
        for gap in gaps {
            code.append((jge, .next, .lib, gap.lo))
            code.append((jgt, .next, .enosys, gap.hi))
        }
        code.append((ja, .lib, .next, 0))
        let above = code.count
        let x86_64: UInt32 = 0xC000_003E   // AUDIT_ARCH_X86_64
        if native == x86_64 {
            code.append((jge, .next, .enosys, 0x4000_0000))
            code.append((jeq, .enosys, .lib, 0xffff_ffff))
        }
        let enosys = code.count
        code.append((ret, .next, .next, sbx_fence_scmp_act_errno(UInt16(ENOSYS))))
        let lib = code.count
        func offset(_ t: Target, from i: Int) -> UInt32 {
            switch t {
            case .next: return 0
            case .lib: return UInt32(lib - i - 1)
            case .enosys: return UInt32(enosys - i - 1)
            case .above: return UInt32(above - i - 1)
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(code.count * 8)
        for (i, c) in code.enumerated() {
            var k = c.k
            var jt = UInt8(offset(c.jt, from: i)), jf = UInt8(offset(c.jf, from: i))
            // `ja` jumps by k; its jt/jf are unused.
            if c.op == ja { k = offset(c.jt, from: i); jt = 0; jf = 0 }
            withUnsafeBytes(of: c.op) { bytes.append(contentsOf: $0) }
            bytes.append(jt)
            bytes.append(jf)
            withUnsafeBytes(of: k) { bytes.append(contentsOf: $0) }
        }
        return bytes
    }

    /// libseccomp's name for `nr` on `arch` (its architecture tokens are the
    /// AUDIT_ARCH values an audit record carries), or `nr_<n>`.
    public static func syscallName(_ nr: Int32, arch: UInt32) -> String {
        if let p = seccomp_syscall_resolve_num_arch(arch, nr) {
            defer { free(p) }
            return String(cString: p)
        }
        return "nr_\(nr)"
    }

    static func libseccompVersion() -> String {
        let v = seccomp_version().pointee
        return "\(v.major).\(v.minor).\(v.micro)"
    }

    static func readAll(_ fd: Int32) -> [UInt8]? {
        let r = FD.read(fd)
        return r.errno == nil ? r.bytes : nil
    }
}

/// The on-disk cache of compiled filters (see ``SeccompCompiler/compile(_:cacheDir:)``).
///
/// File layout: `SBXBPF1\n`; a 4-byte little-endian length and that many bytes of
/// JSON naming the format, libseccomp version, architecture and rules digest; a
/// 4-byte length and a JSON array of the unresolved syscall names; a 4-byte length
/// and the unknown-number prefix's length in instructions (4 bytes); then the BPF. An
/// entry whose header differs from the current one is a miss.
struct FilterCache {
    let directory: String
    let path: String
    let header: [UInt8]
    static let magic = Array("SBXBPF1\n".utf8)

    typealias Entry = (filter: [UInt8], unresolved: [String], prefixLength: Int)

    /// The file of a spec's filter: its name holds everything the filter is compiled
    /// from (the rules digest, the architecture, libseccomp's and the format's versions).
    static func path(directory: String, spec: SeccompSpec, arch: String) -> String {
        "\(directory)/\(safeDigest(spec))-\(arch)-libseccomp\(SeccompCompiler.libseccompVersion())-v\(SeccompCompiler.formatVersion).bpf"
    }

    static func safeDigest(_ spec: SeccompSpec) -> String {
        String(spec.rulesDigest.map { $0.isASCIILetter || $0.isASCIIDigit || "-_.".contains($0) ? $0 : "_" })
    }

    /// SHA-256 (hex) of every field a filter is compiled from, in an unambiguous
    /// encoding (each string and list length-prefixed, `syscallNumbers` sorted):
    /// computed here from the spec itself, never taken from the caller.
    static func specDigest(_ spec: SeccompSpec) -> String {
        var b: [UInt8] = []
        b.reserveCapacity(8192)
        func int(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { b.append(contentsOf: $0) } }
        func str(_ s: String) { int(UInt64(s.utf8.count)); b.append(contentsOf: s.utf8) }
        func opt(_ v: UInt32?) { if let v { b.append(1); int(UInt64(v)) } else { b.append(0) } }
        str(spec.arch)
        str(spec.defaultAction.rawValue)
        opt(spec.defaultErrno)
        int(UInt64(spec.rules.count))
        for rule in spec.rules {
            int(UInt64(rule.syscalls.count))
            for name in rule.syscalls { str(name) }
            str(rule.action.rawValue)
            opt(rule.errno)
            int(UInt64(rule.args.count))
            for arg in rule.args { int(UInt64(arg.index)); str(arg.op.rawValue); int(arg.value); int(arg.valueTwo) }
            str(rule.origin)
        }
        if let families = spec.socketFamilies {
            b.append(1)
            int(UInt64(families.count))
            for f in families { str(f.rawValue) }
        } else {
            b.append(0)
        }
        b.append(spec.socketFamiliesViaSupervisor ? 1 : 0)
        // By number, then name (the names of one dictionary are never equal, so the
        // order is total); comparing names only on equal numbers keeps this cheap.
        let numbers = spec.syscallNumbers.sorted { $0.value != $1.value ? $0.value < $1.value : $0.key < $1.key }
        int(UInt64(numbers.count))
        for (name, nr) in numbers { str(name); int(UInt64(UInt32(bitPattern: nr))) }
        int(UInt64(spec.refusedIoctls.count))
        for cmd in spec.refusedIoctls { int(UInt64(cmd)) }
        var hex = [CChar](repeating: 0, count: Int(SBX_SHA256_HEX_LENGTH) + 1)
        b.withUnsafeBufferPointer { sbx_sha256_hex($0.baseAddress, $0.count, &hex) }
        return String(cString: hex)
    }

    /// Filters this process compiled or loaded: a long-lived `sandbox serve` reads and
    /// checks the cache file once per policy, not once per run. Only the last few are
    /// kept. A hit needs the same path, byte for byte, and an equal spec: the path
    /// alone trusts a digest a library caller may have set (and `safeDigest` is not
    /// one-to-one; red team, session 29).
    private static let memory = Mutex<[(path: [UInt8], spec: SeccompSpec, entry: Entry)]>([])
    static let memoryCapacity = 8

    static func remembered(_ path: String, _ spec: SeccompSpec) -> Entry? {
        let bytes = Array(path.utf8)
        return memory.withLock { m in m.first { $0.path == bytes && $0.spec == spec }?.entry }
    }

    static func remember(_ path: String, _ spec: SeccompSpec, _ entry: Entry) {
        let bytes = Array(path.utf8)
        memory.withLock { m in
            m.removeAll { $0.path == bytes }
            m.insert((bytes, spec, entry), at: 0)
            if m.count > memoryCapacity { m.removeLast() }
        }
    }

    init(directory: String, spec: SeccompSpec, arch: String) throws {
        let version = SeccompCompiler.libseccompVersion()
        let safeDigest = Self.safeDigest(spec)
        self.directory = directory
        self.path = Self.path(directory: directory, spec: spec, arch: arch)
        // The file is named by the planner's rulesDigest, but the header holds our own
        // digest of the whole spec: a library caller sets rulesDigest, and safeDigest
        // is not one-to-one, so a name alone could hand one spec another's filter.
        // Built by hand: this runs on every exec, and JSONEncoder was a measurable part
        // of start-up.
        self.header = Array(("{\"arch\":\"\(arch)\",\"format\":\(SeccompCompiler.formatVersion),\"libseccomp\":\"\(version)\","
            + "\"rulesDigest\":\"\(safeDigest)\",\"spec\":\"\(Self.specDigest(spec))\"}").utf8)
        try Self.prepareDirectory(directory)
    }

    /// Creates missing directories 0700 and refuses a directory that someone else
    /// could have filled: it must be a real directory (not a symlink), owned by us or
    /// root, and not writable by group or others.
    static func prepareDirectory(_ directory: String) throws {
        var prefix = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/") {
            prefix.append("/")
            prefix.append(contentsOf: component)   // not `+ component`: generic, a conformance scan cold
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST {
                throw KernelError(operation: "mkdir", subject: prefix, errno: errno, detail: "seccomp cache directory")
            }
        }
        var st = stat()
        guard lstat(directory, &st) == 0 else {
            throw KernelError(operation: "lstat", subject: directory, errno: errno, detail: "seccomp cache directory")
        }
        guard st.st_mode & S_IFMT == S_IFDIR else {
            throw KernelError(operation: "seccomp cache", subject: directory, detail: "not a directory (or a symlink)")
        }
        guard st.st_uid == geteuid() || st.st_uid == 0 else {
            throw KernelError(operation: "seccomp cache", subject: directory,
                             detail: "owned by uid \(st.st_uid), not by uid \(geteuid()) or root: its filters cannot be trusted")
        }
        guard st.st_mode & 0o022 == 0 else {
            throw KernelError(operation: "seccomp cache", subject: directory,
                             detail: "mode \(String(st.st_mode & 0o7777, radix: 8)) lets others write: its filters cannot be trusted")
        }
    }

    /// The cached program, or nil on a miss (absent, foreign, or compiled from another spec).
    func load() -> (filter: [UInt8], unresolved: [String], prefixLength: Int)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG,
              st.st_uid == geteuid() || st.st_uid == 0, st.st_mode & 0o022 == 0,
              let bytes = SeccompCompiler.readAll(fd) else { return nil }
        guard bytes.count > Self.magic.count, Array(bytes[0..<Self.magic.count]) == Self.magic else { return nil }
        var offset = Self.magic.count
        func block() -> ArraySlice<UInt8>? {
            guard bytes.count >= offset + 4 else { return nil }
            let length = bytes[offset..<(offset + 4)].reversed().reduce(0) { $0 << 8 | Int($1) }
            offset += 4
            guard bytes.count >= offset + length else { return nil }
            defer { offset += length }
            return bytes[offset..<(offset + length)]
        }
        guard let storedHeader = block(), Array(storedHeader) == header,
              let meta = block(), let unresolved = Self.names(fromJSON: meta),
              let lengthBlock = block(), lengthBlock.count == 4
        else { return nil }
        let prefixLength = lengthBlock.reversed().reduce(0) { $0 << 8 | Int($1) }
        let filter = Array(bytes[offset...])
        guard !filter.isEmpty, filter.count % 8 == 0, filter.count / 8 <= 4096, prefixLength * 8 <= filter.count else { return nil }
        return (filter, unresolved, prefixLength)
    }

    /// The unresolved syscall names as the JSON array JSONEncoder wrote before
    /// (`["a","b"]`), by hand: Foundation's JSON was a first-use cost of every exec.
    /// Only names of letters, digits and `_` (every syscall name); nil otherwise.
    static func json(ofNames names: [String]) -> [UInt8]? {
        var out: [UInt8] = [UInt8(ascii: "[")]
        for (i, name) in names.enumerated() {
            guard !name.isEmpty, name.utf8.allSatisfy(isNameByte) else { return nil }
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "\""))
            out += name.utf8
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "]"))
        return out
    }

    /// The names of `json(ofNames:)`'s array; nil for anything else (a miss).
    static func names(fromJSON bytes: ArraySlice<UInt8>) -> [String]? {
        var rest = bytes
        guard rest.popFirst() == UInt8(ascii: "["), rest.popLast() == UInt8(ascii: "]") else { return nil }
        if rest.isEmpty { return [] }
        var names: [String] = []
        for item in rest.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
            guard item.count > 2, item.first == UInt8(ascii: "\""), item.last == UInt8(ascii: "\"") else { return nil }
            let name = item.dropFirst().dropLast()
            guard name.allSatisfy(isNameByte) else { return nil }
            names.append(String(decoding: name, as: UTF8.self))
        }
        return names
    }

    static func isNameByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F
    }

    /// Writes the entry atomically. A failure only costs a compile next time, so it is
    /// not an error.
    func store(_ filter: [UInt8], unresolved: [String], prefixLength: Int) {
        guard let meta = Self.json(ofNames: unresolved) else { return }
        var length: [UInt8] = []
        withUnsafeBytes(of: UInt32(prefixLength).littleEndian) { length.append(contentsOf: $0) }
        var bytes = Self.magic
        for block in [header, meta, length] {
            withUnsafeBytes(of: UInt32(block.count).littleEndian) { bytes.append(contentsOf: $0) }
            bytes += block
        }
        bytes += filter
        try? FD.writeAtomically(path, bytes, mode: 0o600)
    }
}
