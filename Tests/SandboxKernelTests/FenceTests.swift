import CSandbox
import CSandboxTestSupport
import Foundation
import SandboxVocabulary
import Testing
@testable import SandboxKernel

#if canImport(Glibc)
import Glibc
#endif

// Landlock and seccomp against the real kernel (root). Every fence is proven by a
// forked child that applies it and tries the forbidden thing (sandbox_fence.h, TEST
// SUPPORT); the assertion is the exact errno or signal the child ended with.
//
// A missing kernel feature FAILS these tests; set SANDBOX_TESTS_ALLOW_SKIP=1 to let
// them pass without running on a host that lacks it.
//
// Serialized: the cache test reads the process-wide compile counter.
@Suite(.serialized)
struct FenceTests {

    // MARK: - helpers

    enum Outcome: Equatable, CustomStringConvertible {
        case exited(Int32)
        case signaled(Int32)
        case failed(Int32)

        init(status: Int32) {
            if status < 0 { self = .failed(errno); return }
            let signal = status & 0x7f
            self = signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
        }

        var description: String {
            switch self {
            case .exited(let code): return code == 0 ? "exit 0" : "exit \(code) (\(String(cString: strerror(code))))"
            case .signaled(let signal): return "killed by signal \(signal)"
            case .failed(let err): return "fork/wait failed: errno \(err)"
            }
        }
    }

    /// False when a needed kernel feature is missing (see TestSupport.swift).
    static func require(_ available: Bool, _ feature: String, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        SandboxKernelTests.require(available, feature, sourceLocation: sourceLocation)
    }

    static func probe(_ program: SeccompProgram?, _ probe: Int32, repeat count: Int32 = 1) -> Outcome {
        let bytes = program?.filter ?? []
        let status = bytes.withUnsafeBytes { buffer in
            sbx_fence_test_probe_seccomp(buffer.baseAddress, buffer.count, 0, probe, count)
        }
        return Outcome(status: status)
    }

    static func probe(_ ruleset: LandlockRuleset, _ probe: Int32, path: String = "", port: UInt16 = 0) -> Outcome {
        Outcome(status: sbx_fence_test_probe_landlock(ruleset.fd, probe, path, port))
    }

    /// A spec with `deny` rules taking `onViolation`'s action directly (the planner
    /// routes kill and log through notify; these tests look at the filter itself), and
    /// the denied names taken out of the profile's rules, as the planner does, so the
    /// deny wins.
    static func spec(deny: [String] = ["ptrace"], families: [SocketFamily]? = [.unix, .inet, .inet6],
                     onViolation: ViolationAction = .errno, defaultAction: SeccompAction = .allow,
                     profile: [SeccompSpec.Rule] = [], digest: String = "test") -> SeccompSpec {
        var rules = profile.compactMap { rule -> SeccompSpec.Rule? in
            var rule = rule
            rule.syscalls.removeAll(where: deny.contains)
            return rule.syscalls.isEmpty ? nil : rule
        }
        if !deny.isEmpty {
            let action: SeccompAction = switch onViolation {
            case .errno: .errno
            case .kill: .killProcess
            case .log: .log
            case .notify: .notify
            }
            rules.append(.init(syscalls: deny, action: action, origin: "seccomp.deny"))
        }
        return SeccompSpec(arch: "x86_64", defaultAction: defaultAction, rules: rules,
                           socketFamilies: families, rulesDigest: digest)
    }

    static func makeTempDir() -> String {
        var template = Array("/tmp/fence-test-XXXXXX".utf8CString)
        let path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        return path
    }

    static func mode(of path: String) -> mode_t {
        var st = stat()
        lstat(path, &st)
        return st.st_mode & 0o7777
    }

    // MARK: - Landlock

    @Test func landlockIsAvailable() {
        let abi = Landlock.probeABI()
        _ = Self.require(abi >= 1, "Landlock (probeABI() = \(abi))")
    }

    @Test func accessRightNamesFollowTheABI() throws {
        #expect(try Landlock.accessBits([.execute, .readFile, .readDir], abi: 1) == 0b1101)
        #expect(try Landlock.accessBits([.refer, .truncate, .ioctlDev], abi: 5) == (1 << 13 | 1 << 14 | 1 << 15))
        #expect(LandlockAccess.all(abi: 1).count == 13)
        #expect(LandlockAccess.all(abi: 2).last == .refer)
        #expect(LandlockAccess.all(abi: 3).last == .truncate)
        #expect(LandlockAccess.all(abi: 7).count == 16)
        // The bits are the kernel's (include/uapi/linux/landlock.h), in case order.
        #expect(LandlockAccess.allCases.enumerated().allSatisfy { $0.element.bit == 1 << UInt64($0.offset) })
        #expect(Landlock.fileAccessMask == (1 << 0 | 1 << 1 | 1 << 2 | 1 << 14 | 1 << 15))
        do {
            _ = try Landlock.accessBits([.readFile, .refer], abi: 1)
            Issue.record("refer accepted at ABI 1")
        } catch let error as KernelError {
            #expect(error.description.contains("'refer'"))
            #expect(error.description.contains("needs Landlock ABI 2"))
        }
    }

    @Test func rulesetFromHostPathsIsEnforcedInAChild() throws {
        let kernelABI = Landlock.probeABI()
        guard Self.require(kernelABI >= 1, "Landlock") else { return }
        let abi = min(kernelABI, Landlock.knownABI)
        let base = Self.makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: base) }
        for dir in ["ro", "rw"] { mkdir("\(base)/\(dir)", 0o755) }
        for file in ["ro/data", "rw/data", "single", "other"] {
            FileManager.default.createFile(atPath: "\(base)/\(file)", contents: Data("x".utf8))
        }
        let all = LandlockAccess.all(abi: abi)
        let readOnly: [LandlockAccess] = [.execute, .readFile, .readDir]
        let allowedPort: UInt16 = 1
        let deniedPort: UInt16 = 2
        let spec = LandlockSpec(
            abi: abi, handledAccessFS: all,
            rules: [
                .init(path: "/ro", hostPath: "\(base)/ro", access: readOnly),
                .init(path: "/rw", hostPath: "\(base)/rw", access: all),
                // A file with directory rights: the ruleset keeps only the file ones.
                .init(path: "/single", hostPath: "\(base)/single", access: all),
                .init(path: "/proc", hostPath: nil, access: [.readFile, .readDir]),
            ],
            connectTCP: abi >= 4 ? [allowedPort] : nil,
            scopes: abi >= 6 ? [.signal] : [])
        let ruleset = try LandlockRuleset(spec: spec)
        defer { ruleset.close() }

        #expect(ruleset.fd >= 0)
        #expect(ruleset.abi == abi)
        #expect(ruleset.innerRules.count == 1)
        #expect(ruleset.innerRules.first?.path == "/proc")
        #expect(ruleset.innerRules.first?.access == (1 << 2 | 1 << 3))
        #expect(fcntl(ruleset.fd, F_GETFD) & FD_CLOEXEC != 0)

        #expect(Self.probe(ruleset, Int32(SBX_FENCE_PROBE_OPEN_READ), path: "\(base)/ro/data") == .exited(0))
        #expect(Self.probe(ruleset, Int32(SBX_FENCE_PROBE_OPEN_WRITE), path: "\(base)/ro/data") == .exited(EACCES))
        #expect(Self.probe(ruleset, Int32(SBX_FENCE_PROBE_MKDIR), path: "\(base)/ro/new") == .exited(EACCES))
        #expect(Self.probe(ruleset, Int32(SBX_FENCE_PROBE_OPEN_WRITE), path: "\(base)/rw/data") == .exited(0))
        #expect(Self.probe(ruleset, Int32(SBX_FENCE_PROBE_MKDIR), path: "\(base)/rw/new") == .exited(0))
        #expect(Self.probe(ruleset, Int32(SBX_FENCE_PROBE_OPEN_WRITE), path: "\(base)/single") == .exited(0))
        #expect(Self.probe(ruleset, Int32(SBX_FENCE_PROBE_OPEN_READ), path: "\(base)/other") == .exited(EACCES))
        #expect(Self.probe(ruleset, Int32(SBX_FENCE_PROBE_OPEN_READ), path: "/etc/passwd") == .exited(EACCES))

        if Self.require(abi >= 4, "Landlock ABI 4 (TCP ports; kernel has \(kernelABI))") {
            #expect(Self.probe(ruleset, Int32(SBX_FENCE_PROBE_CONNECT_TCP), port: deniedPort) == .exited(EACCES))
            // Allowed: whatever the network says (refused, or unreachable) — not Landlock's EACCES.
            #expect(Self.probe(ruleset, Int32(SBX_FENCE_PROBE_CONNECT_TCP), port: allowedPort) != .exited(EACCES))
        }
        if Self.require(abi >= 6, "Landlock ABI 6 (scopes; kernel has \(kernelABI))") {
            #expect(Self.probe(ruleset, Int32(SBX_FENCE_PROBE_SIGNAL_PARENT)) == .exited(EPERM))
        }
    }

    @Test func rulesetWithAMissingHostPathNamesThePath() throws {
        guard Self.require(Landlock.probeABI() >= 1, "Landlock") else { return }
        let missing = "/nonexistent/fence-test-\(getpid())"
        let spec = LandlockSpec(abi: 1, handledAccessFS: LandlockAccess.all(abi: 1),
                                rules: [.init(path: "/data", hostPath: missing, access: [.readFile])])
        do {
            _ = try LandlockRuleset(spec: spec)
            Issue.record("a ruleset with a missing host path was built")
        } catch let error as KernelError {
            #expect(error.operation == "open")
            #expect(error.errno == Errno(ENOENT) && error.errno?.name == "ENOENT")
            #expect(error.description.contains(missing))
            #expect(error.description.contains("/data"))
        }
    }

    @Test func rulesetRefusesWhatItsABILacks() throws {
        guard Self.require(Landlock.probeABI() >= 1, "Landlock") else { return }
        let tooNew = LandlockSpec(abi: 3, handledAccessFS: [.readFile], rules: [], connectTCP: [443])
        #expect(throws: KernelError.self) { _ = try LandlockRuleset(spec: tooNew) }
        let scoped = LandlockSpec(abi: 5, handledAccessFS: [.readFile], rules: [], scopes: [.signal])
        #expect(throws: KernelError.self) { _ = try LandlockRuleset(spec: scoped) }
        let unhandled = LandlockSpec(abi: 1, handledAccessFS: [.readFile],
                                     rules: [.init(path: "/", hostPath: "/", access: [.writeFile])])
        #expect(throws: KernelError.self) { _ = try LandlockRuleset(spec: unhandled) }
    }

    // MARK: - seccomp: compiling and the cache

    @Test func compilesANonEmptyProgram() throws {
        let program = try SeccompCompiler.compile(Self.spec(), cacheDir: nil)
        #expect(program.instructionCount > 10)
        #expect(program.filter.count == program.instructionCount * 8)
        #expect(!program.cacheHit)
        #expect(!program.usesNotify)
        #expect(try SeccompCompiler.compile(Self.spec(onViolation: .notify), cacheDir: nil).usesNotify)
    }

    @Test func aSecondCompileIsACacheHit() throws {
        let base = Self.makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let dir = base + "/cache/seccomp"
        let spec = Self.spec(digest: "sha256:0123abcd")

        let first = try SeccompCompiler.compile(spec, cacheDir: dir)
        let compiled = SeccompCompiler.compileCount
        let second = try SeccompCompiler.compile(spec, cacheDir: dir)
        #expect(!first.cacheHit)
        #expect(second.cacheHit)
        #expect(SeccompCompiler.compileCount == compiled)
        #expect(second.filter == first.filter)
        #expect(second.usesNotify == first.usesNotify)

        #expect(Self.mode(of: dir) == 0o700)
        let entries = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(entries.count == 1)
        #expect(entries.first?.hasPrefix("sha256_0123abcd-x86_64-libseccomp") == true)
        #expect(Self.mode(of: "\(dir)/\(entries[0])") == 0o600)

        // Another rule set (the planner's digest covers every field of the spec) is a miss.
        let other = try SeccompCompiler.compile(Self.spec(onViolation: .kill, digest: "sha256:4567ef01"), cacheDir: dir)
        #expect(!other.cacheHit)
        #expect(other.filter != first.filter)
        #expect(SeccompCompiler.compileCount == compiled + 1)

        // A filter this process has compiled or loaded is kept in memory: with its file
        // gone, the next compile is still a hit, and nothing is compiled.
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) { unlink("\(dir)/\(name)") }
        let remembered = try SeccompCompiler.compile(spec, cacheDir: dir)
        #expect(remembered.cacheHit && remembered.filter == first.filter)
        #expect(SeccompCompiler.compileCount == compiled + 1)

        // A cache others can write to is refused, not trusted (a spec not in memory).
        chmod(dir, 0o777)
        #expect(throws: KernelError.self) { _ = try SeccompCompiler.compile(Self.spec(digest: "sha256:89ab"), cacheDir: dir) }
    }

    /// Red team, session 29: the memory matched paths as Swift strings (canonically
    /// equivalent ones are equal) and trusted the digest alone; a library caller's
    /// digests "é" and "e\u{301}" (two files on disk) got one filter.
    @Test func theMemoryNeedsTheSamePathBytesAndAnEqualSpec() throws {
        let dir = Self.makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let strict = Self.spec(deny: ["ptrace"], digest: "\u{e9}")
        let loose = Self.spec(deny: [], digest: "e\u{301}")
        let a = try SeccompCompiler.compile(strict, cacheDir: dir)
        let b = try SeccompCompiler.compile(loose, cacheDir: dir)
        #expect(!b.cacheHit && b.filter != a.filter, "another spec got a remembered filter")
        #expect(try SeccompCompiler.compile(strict, cacheDir: dir).filter == a.filter)
    }

    /// The cache file is named by the caller's rulesDigest; two specs under one digest
    /// (a library caller's mistake, or safeDigest folding two digests into one name)
    /// must not share a filter on disk: the second reads the first's file and finds
    /// its own spec digest missing from the header. Without the spec digest in the
    /// header (format 5) the second got the first's filter, a hit: the loose spec ran
    /// under the strict one's rules, or the other way round.
    @Test func aCacheFileIsOnlyReadForTheSpecItWasCompiledFrom() throws {
        let dir = Self.makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let strict = Self.spec(deny: ["ptrace", "personality"], digest: "collide")
        let loose = Self.spec(deny: [], digest: "collide")
        let a = try SeccompCompiler.compile(strict, cacheDir: dir)
        // The file is there, under the shared name.
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".bpf") }
        #expect(files.count == 1 && files[0].hasPrefix("collide-"), "\(files)")
        let b = try SeccompCompiler.compile(loose, cacheDir: dir)
        #expect(!b.cacheHit, "the loose spec was served the strict spec's cached filter")
        #expect(b.filter == (try SeccompCompiler.compile(loose, cacheDir: nil)).filter)
        #expect(b.filter != a.filter)
        // Each spec's digest tells the two apart, and is stable.
        #expect(FilterCache.specDigest(strict) != FilterCache.specDigest(loose))
        #expect(FilterCache.specDigest(strict) == FilterCache.specDigest(Self.spec(deny: ["ptrace", "personality"], digest: "other")))
    }

    /// Every field a filter is compiled from changes the spec digest.
    @Test func theSpecDigestCoversEveryField() {
        let base = Self.spec(deny: ["ptrace"], digest: "d")
        var variants: [SeccompSpec] = []
        var v = base; v.arch = "aarch64"; variants.append(v)
        v = base; v.defaultAction = .errno; variants.append(v)
        v = base; v.defaultErrno = 38; variants.append(v)
        v = base; v.rules[0].syscalls.append("acct"); variants.append(v)
        v = base; v.rules[0].action = .killProcess; variants.append(v)
        v = base; v.rules[0].errno = 1; variants.append(v)
        v = base; v.rules[0].args = [.init(index: 0, op: .equal, value: 1)]; variants.append(v)
        v = base; v.rules[0].args = [.init(index: 0, op: .equal, value: 2)]; variants.append(v)
        v = base; v.rules[0].args = [.init(index: 1, op: .equal, value: 1)]; variants.append(v)
        v = base; v.rules[0].args = [.init(index: 0, op: .maskedEqual, value: 1, valueTwo: 1)]; variants.append(v)
        v = base; v.socketFamilies = nil; variants.append(v)
        v = base; v.socketFamilies = [.unix]; variants.append(v)
        v = base; v.socketFamiliesViaSupervisor = true; variants.append(v)
        v = base; v.syscallNumbers = ["getxattrat": 464]; variants.append(v)
        v = base; v.syscallNumbers = ["getxattrat": 465]; variants.append(v)
        v = base; v.refusedIoctls = [0x5412]; variants.append(v)
        // Length prefixes: moving a byte from one name to the next is another spec.
        v = base; v.rules[0].syscalls = ["ab", "c"]; variants.append(v)
        v = base; v.rules[0].syscalls = ["a", "bc"]; variants.append(v)
        let digests = ([base] + variants).map(FilterCache.specDigest)
        #expect(Set(digests).count == digests.count, "\(digests)")
        // The caller's digest is not part of it.
        v = base; v.rulesDigest = "other"
        #expect(FilterCache.specDigest(v) == FilterCache.specDigest(base))
    }

    @Test func theCachedNamesAreJSONEncodersBytes() throws {
        for names in [[], ["getxattrat"], ["no_such_call", "getxattrat", "x86_64_only"]] {
            let hand = try #require(FilterCache.json(ofNames: names))
            #expect(hand == Array(try JSONEncoder().encode(names)))
            #expect(FilterCache.names(fromJSON: hand[...]) == names)
        }
        #expect(FilterCache.json(ofNames: ["a\"b"]) == nil)
        for bad in ["", "[", "[\"a\"", "[\"a\",]", "[\"\"]", "[\"a b\"]", "[a]", "{}"] {
            #expect(FilterCache.names(fromJSON: Array(bad.utf8)[...]) == nil, "\(bad)")
        }
    }

    @Test func refusesAnotherArchitecture() throws {
        var spec = Self.spec()
        spec.arch = "aarch64"
        do {
            _ = try SeccompCompiler.compile(spec, cacheDir: nil)
            Issue.record("compiled for a foreign architecture")
        } catch let error as KernelError {
            #expect(error.description.contains("x86_64"))
        }
    }

    @Test func namesLibseccompDoesNotKnow() throws {
        // getxattrat (Linux 6.13) is newer than libseccomp 2.5.4's table; "no_such_call" is in none.
        let allow = [SeccompSpec.Rule(syscalls: ["exit_group", "getxattrat", "no_such_call"],
                                      action: .allow, origin: "profile test")]
        var spec = Self.spec(deny: [], defaultAction: .errno, profile: allow, digest: "sha256:unresolved")
        // Allowed but unnumbered: left out (the default denies it), and reported.
        let skipped = try SeccompCompiler.compile(spec, cacheDir: nil)
        #expect(skipped.unresolvedSyscalls.contains("no_such_call"))

        // A number from the planner's table puts it in the filter.
        spec.syscallNumbers = ["getxattrat": 464]
        let numbered = try SeccompCompiler.compile(spec, cacheDir: nil)
        #expect(numbered.unresolvedSyscalls == ["no_such_call"])
        let jeq464: [UInt8] = [0x15, 0, 0, 0, 0xd0, 0x01, 0, 0]
        let hasJeq464 = stride(from: 0, to: numbered.filter.count, by: 8).contains {
            numbered.filter[$0] == 0x15 && Array(numbered.filter[($0 + 4)..<($0 + 8)]) == Array(jeq464[4...])
        }
        #expect(hasJeq464)

        // The cache gives the same report on a hit.
        let dir = Self.makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try SeccompCompiler.compile(spec, cacheDir: dir)
        let hit = try SeccompCompiler.compile(spec, cacheDir: dir)
        #expect(hit.cacheHit)
        #expect(hit.unresolvedSyscalls == ["no_such_call"])

        // A deny rule that cannot be numbered under an allowing default would open a hole: error.
        let open = Self.spec(deny: ["no_such_call"], defaultAction: .allow)
        #expect(throws: KernelError.self) { _ = try SeccompCompiler.compile(open, cacheDir: nil) }
    }

    // MARK: - seccomp: applied in a child

    @Test func denyAndSocketFamiliesInAChild() throws {
        let program = try SeccompCompiler.compile(Self.spec(), cacheDir: nil)
        // Baseline without a filter: as root these all work, so the denials below are the filter's.
        #expect(Self.probe(nil, Int32(SBX_FENCE_PROBE_SOCKET_NETLINK)) == .exited(0))
        #expect(Self.probe(nil, Int32(SBX_FENCE_PROBE_SOCKET_PACKET)) == .exited(0))

        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_PTRACE_TRACEME)) == .exited(EPERM))
        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_SOCKET_NETLINK)) == .exited(EAFNOSUPPORT))
        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_SOCKET_PACKET)) == .exited(EAFNOSUPPORT))
        // Upper bits set: the kernel reads an int and would open AF_NETLINK.
        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_SOCKET_NETLINK_HIGH)) == .exited(EAFNOSUPPORT))
        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_SOCKET_UNIX)) == .exited(0))
        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_SOCKET_INET)) == .exited(0))
        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_SOCKET_INET6)) == .exited(0))
    }

    @Test func onViolationKillEndsTheChildWithSIGSYS() throws {
        let program = try SeccompCompiler.compile(Self.spec(onViolation: .kill), cacheDir: nil)
        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_PTRACE_TRACEME)) == .signaled(SIGSYS))
        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_SOCKET_INET)) == .exited(0))
    }

    @Test func onViolationLogLetsTheCallThrough() throws {
        let program = try SeccompCompiler.compile(Self.spec(onViolation: .log), cacheDir: nil)
        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_PTRACE_TRACEME)) == .exited(0))
    }

    @Test func foreignArchitectureSyscallsAreKilled() throws {
        let program = try SeccompCompiler.compile(Self.spec(), cacheDir: nil)
        // Baseline: i386 getpid via int 0x80 works (IA32 emulation); x32 is ENOSYS when the
        // kernel lacks CONFIG_X86_X32_ABI — the filter must kill both before that.
        let i386Baseline = Self.probe(nil, Int32(SBX_FENCE_PROBE_I386_GETPID))
        _ = Self.require(i386Baseline == .exited(0), "i386 syscalls (int 0x80: \(i386Baseline))")
        let x32Baseline = Self.probe(nil, Int32(SBX_FENCE_PROBE_X32_GETPID))
        #expect(x32Baseline == .exited(ENOSYS) || x32Baseline == .exited(0))
        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_X32_GETPID)) == .signaled(SIGSYS))
        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_I386_GETPID)) == .signaled(SIGSYS))
        // The bad-arch verdict is KILL_PROCESS (`ret 0x80000000`), not libseccomp's default
        // KILL_THREAD: this filter has no other kill action, so the instruction is that one.
        let killProcess: [UInt8] = [0x06, 0, 0, 0, 0x00, 0x00, 0x00, 0x80]
        let instructions = stride(from: 0, to: program.filter.count, by: 8).map { Array(program.filter[$0..<($0 + 8)]) }
        #expect(instructions.contains(killProcess))
    }

    @Test func profileDecidesForAllowedFamiliesAndDenyWins() throws {
        // Allow-list profile (default ERRNO like Docker's) that allows socket and ptrace
        // unconditionally: the family check still applies, and deny (kill) beats the allow.
        let profile = [SeccompSpec.Rule(syscalls: ["exit_group", "exit", "socket", "close", "ptrace", "rt_sigreturn"],
                                        action: .allow, origin: "profile test")]
        let spec = Self.spec(onViolation: .kill, defaultAction: .errno, profile: profile)
        let program = try SeccompCompiler.compile(spec, cacheDir: nil)
        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_SOCKET_INET)) == .exited(0))
        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_SOCKET_NETLINK)) == .exited(EAFNOSUPPORT))
        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_PTRACE_TRACEME)) == .signaled(SIGSYS))

        // Without deny, the profile's own answers: ptrace allowed, mkdir not listed → EPERM.
        let plain = try SeccompCompiler.compile(Self.spec(deny: [], defaultAction: .errno, profile: profile),
                                                cacheDir: nil)
        #expect(Self.probe(plain, Int32(SBX_FENCE_PROBE_MKDIR)) == .exited(EPERM))
        #expect(Self.probe(plain, Int32(SBX_FENCE_PROBE_SOCKET_UNIX)) == .exited(0))
    }

    @Test func notifyRecordsEachCallAndAnswersEPERM() throws {
        let spec = Self.spec(onViolation: .notify)
        let program = try SeccompCompiler.compile(spec, cacheDir: nil)
        #expect(program.usesNotify)

        var pid: pid_t = -1
        let listener = program.filter.withUnsafeBytes { buffer in
            sbx_fence_test_spawn_notify(buffer.baseAddress, buffer.count,
                                        Int32(SBX_FENCE_PROBE_PTRACE_TRACEME), 3, &pid)
        }
        defer { if pid > 0 { _ = sbx_fence_test_wait(pid) } }
        guard Self.require(listener >= 0, "seccomp user notification (listener: errno \(errno))") else { return }

        let notifier = SeccompNotifier(listenerFD: listener, arch: spec.arch)
        defer { notifier.close() }
        var violations: [SeccompViolation] = []
        for _ in 0..<3 {
            var pfd = pollfd(fd: notifier.fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 10_000) == 1, pfd.revents & Int16(POLLIN) != 0 else {
                Issue.record("no notification within 10 s (revents \(pfd.revents))")
                return
            }
            if let violation = notifier.handleOne() { violations.append(violation) }
        }
        let status = sbx_fence_test_wait(pid)
        pid = -1
        // All three attempts got EPERM (the child exits 251 if they differed).
        #expect(Outcome(status: status) == .exited(EPERM))
        #expect(violations.count == 3)
        for violation in violations {
            #expect(violation.syscall == "ptrace")
            #expect(violation.number == 101)
            #expect(Array(violation.args.prefix(4)) == [0 /* PTRACE_TRACEME */, 0x1111, 0x2222, 0x3333])
            #expect(violation.action == "notify")
        }
        // The filter's last user is gone: the listener reports POLLHUP.
        var pfd = pollfd(fd: notifier.fd, events: Int16(POLLIN), revents: 0)
        #expect(poll(&pfd, 1, 5_000) == 1)
        #expect(pfd.revents & Int16(POLLHUP) != 0)
    }

    @Test func socketFamilyPrefixLayout() throws {
        // 12 fixed instructions + one per family; ERRNO(EAFNOSUPPORT), then the MPTCP
        // refusal, ERRNO(EPROTONOSUPPORT).
        let prefix = try SeccompCompiler.socketFamilyPrefix(arch: 0xC000_003E, socketNR: 41, socketpairNR: 53, families: [2, 10, 16])
        #expect(prefix.count == 15 * 8)
        func k(_ i: Int) -> UInt32 { prefix[(i * 8 + 4)..<(i * 8 + 8)].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * $1.offset) } }
        #expect(k(13) == 0x0005_0000 | UInt32(EAFNOSUPPORT))
        #expect(k(14) == 0x0005_0000 | UInt32(EPROTONOSUPPORT))
        // Each family jump lands right after the prefix (jt = length - index - 1).
        #expect(prefix[10 * 8 + 2] == 4)
        #expect(prefix[12 * 8 + 2] == 2)
        // A unix pair goes past the prefix, another pair to the family check (10);
        // MPTCP to its refusal (14).
        #expect(prefix[6 * 8 + 2] == 8 && prefix[6 * 8 + 3] == 3 && prefix[8 * 8 + 2] == 5)
    }

    /// The prefix in the kernel: socketpair of a family outside the list and an
    /// MPTCP socket are refused (red team, session 46: socketpair reached
    /// AF_NETLINK's create code, and MPTCP connected past Landlock's TCP rules).
    /// Controls: without the filter both work (as root; MPTCP where the kernel has
    /// it), and a unix pair works under it even where `unix` is not listed (its ends
    /// reach nothing outside; programs make them without asking for unix sockets).
    @Test func socketpairAndMPTCPAreRefused() throws {
        let program = try SeccompCompiler.compile(Self.spec(families: [.inet, .inet6]), cacheDir: nil)
        #expect(Self.probe(nil, Int32(SBX_FENCE_PROBE_SOCKETPAIR_NETLINK)) != .exited(EAFNOSUPPORT), "control: no filter")
        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_SOCKETPAIR_NETLINK)) == .exited(EAFNOSUPPORT))
        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_SOCKETPAIR_UNIX)) == .exited(0))
        #expect(Self.probe(nil, Int32(SBX_FENCE_PROBE_SOCKET_MPTCP)) != .exited(EPROTONOSUPPORT), "control: no filter")
        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_SOCKET_MPTCP)) == .exited(EPROTONOSUPPORT))
        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_SOCKET_INET)) == .exited(0))
    }

    /// The namespace fence, a filter of its own: clone with CLONE_NEWUSER gets EPERM
    /// and clone3 ENOSYS, a plain fork goes on; stacked after a filter that allows
    /// everything (what a profile with a rule refusing CLONE_NEWNET alone, or an
    /// always-true condition, amounts to: red team, session 47), the kernel's
    /// strictest answer still refuses. Control: without it both make a namespace.
    @Test func theNamespaceFenceRefusesNamespacesWhateverTheMainFilterAllows() throws {
        // x86_64: AUDIT_ARCH_X86_64, clone 56, clone3 435; CLONE_NEW* (the planner's mask).
        let fence = try SeccompCompiler.fence(arch: 0xC000_003E, ioctl: nil, namespaces: (56, 435, 0x7E02_0000))
        let program = SeccompProgram(filter: fence, cacheHit: false, usesNotify: false)
        #expect(Self.probe(nil, Int32(SBX_FENCE_PROBE_CLONE_NEWUSER)) == .exited(0), "control: clone(CLONE_NEWUSER)")
        #expect(Self.probe(nil, Int32(SBX_FENCE_PROBE_CLONE3_NEWUSER)) == .exited(0), "control: clone3(CLONE_NEWUSER)")
        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_CLONE_NEWUSER)) == .exited(EPERM))
        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_CLONE3_NEWUSER)) == .exited(ENOSYS))
        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_CLONE_PLAIN)) == .exited(0))
        #expect(Self.probe(program, Int32(SBX_FENCE_PROBE_SOCKET_UNIX)) == .exited(0))
    }

    /// io_uring makes sockets without socket(2) (IORING_OP_SOCKET), so a filter whose
    /// socket_families refuse AF_NETLINK still lets one be made once io_uring_setup
    /// runs: the attack, and why the planner refuses io_uring_setup in every filter
    /// whatever the profile says (`builtin: no io_uring`, PlanCompiler). Control:
    /// socket(2) of the same family gets EAFNOSUPPORT under the same filter. With
    /// io_uring_setup refused, as the built-in rule does, no ring is made.
    @Test func ioUringMakesSocketsPastTheFamilyFilterUnlessItIsRefused() throws {
        guard Self.require((try? String(contentsOfFile: "/proc/sys/kernel/io_uring_disabled", encoding: .utf8))?
                .hasPrefix("2") != true, "io_uring (kernel.io_uring_disabled is 2)") else { return }
        let families = try SeccompCompiler.compile(Self.spec(deny: ["ptrace"], families: [.inet, .inet6]), cacheDir: nil)
        #expect(Self.probe(families, Int32(SBX_FENCE_PROBE_SOCKET_NETLINK)) == .exited(EAFNOSUPPORT), "control: socket(2) is refused")
        #expect(Self.probe(families, Int32(SBX_FENCE_PROBE_IOURING_SOCKET_NETLINK)) == .exited(0),
                "the attack: IORING_OP_SOCKET made no AF_NETLINK socket past socket_families")
        let refused = try SeccompCompiler.compile(Self.spec(deny: ["ptrace", "io_uring_setup"], families: [.inet, .inet6]), cacheDir: nil)
        #expect(Self.probe(refused, Int32(SBX_FENCE_PROBE_IOURING_SOCKET_NETLINK)) == .exited(EPERM))
    }
}
