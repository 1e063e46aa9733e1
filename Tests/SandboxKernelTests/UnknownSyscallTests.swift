import CSandbox
import CSandboxTestSupport
import Foundation
import SandboxVocabulary
import Testing
@testable import SandboxKernel

#if canImport(Glibc)
import Glibc
#endif

// Issue 12, item 1: a system-call number no table names is answered ENOSYS by the
// filter itself, so it never reaches the notify listener (where each new number used
// to become an entry in the supervisor's memory and the result). In FenceTests (an
// extension) so it is serialized with the cache test's compile counter.
extension FenceTests {
    /// A notify-by-default filter (as `on_violation = "notify"` makes one) that lets
    /// the test child itself hand over the listener and exit.
    static func notifyByDefault() -> SeccompSpec {
        let own = SeccompSpec.Rule(syscalls: ["sendmsg", "close", "exit", "exit_group"], action: .allow,
                                   origin: "test child")
        return spec(deny: [], families: nil, onViolation: .notify, defaultAction: .notify,
                    profile: [own], digest: "unknown-nr-test")
    }

    /// Runs `probe` `count` times in a child under `filter`, answering every
    /// notification with EPERM; returns how the child ended and what was notified.
    static func underNotify(_ filter: [UInt8], _ probe: Int32, repeat count: Int32) -> (Outcome, [SeccompViolation])? {
        var pid: pid_t = -1
        let listener = filter.withUnsafeBytes { buffer in
            sbx_fence_test_spawn_notify(buffer.baseAddress, buffer.count, probe, count, &pid)
        }
        guard require(listener >= 0, "seccomp user notification (listener: errno \(errno))") else {
            if pid > 0 { _ = sbx_fence_test_wait(pid) }
            return nil
        }
        let notifier = SeccompNotifier(listenerFD: listener, arch: "x86_64")
        defer { notifier.close() }
        var seen: [SeccompViolation] = []
        // Until the child is gone (POLLHUP: the filter has no user left).
        for _ in 0..<1000 {
            var pfd = pollfd(fd: notifier.fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 10_000) == 1 else { break }
            if pfd.revents & Int16(POLLIN) != 0, let v = notifier.handleOne() { seen.append(v); continue }
            if pfd.revents & Int16(POLLHUP) != 0 { break }
        }
        return (Outcome(status: sbx_fence_test_wait(pid)), seen)
    }

    @Test func unknownSyscallNumbersGetENOSYSInTheFilter() throws {
        let spec = Self.notifyByDefault()
        let program = try SeccompCompiler.compile(spec, cacheDir: nil)
        let prefix = try #require(try SeccompCompiler.unknownNumberPrefix(spec))
        #expect(Array(program.filter.prefix(prefix.count)) == prefix, "the prefix comes first")

        // With the prefix: ENOSYS from the kernel, nothing reaches the listener.
        guard let (outcome, seen) = Self.underNotify(program.filter, Int32(SBX_FENCE_PROBE_UNKNOWN_NR), repeat: 50) else { return }
        #expect(outcome == .exited(ENOSYS), "\(outcome)")
        #expect(seen.isEmpty, "notified: \(seen.map(\.syscall))")
        #if arch(x86_64)
        guard let (gapOutcome, gapSeen) = Self.underNotify(program.filter, Int32(SBX_FENCE_PROBE_GAP_NR), repeat: 5) else { return }
        #expect(gapOutcome == .exited(ENOSYS), "\(gapOutcome)")
        #expect(gapSeen.isEmpty, "notified: \(gapSeen.map(\.syscall))")
        #endif
        // A known, denied call still goes to the listener (answered EPERM there).
        guard let (known, knownSeen) = Self.underNotify(program.filter, Int32(SBX_FENCE_PROBE_PTRACE_TRACEME), repeat: 2) else { return }
        #expect(known == .exited(EPERM), "\(known)")
        #expect(knownSeen.map(\.syscall) == ["ptrace", "ptrace"])

        // Control: the same program without the prefix hands every unknown number to
        // the supervisor (one nr_<n> each — what filled its memory).
        let bare = Array(program.filter.dropFirst(prefix.count))
        guard let (bareOutcome, bareSeen) = Self.underNotify(bare, Int32(SBX_FENCE_PROBE_UNKNOWN_NR), repeat: 50) else { return }
        #expect(bareOutcome == .exited(EPERM), "\(bareOutcome)")
        #expect(bareSeen.count == 50 && bareSeen.allSatisfy { $0.syscall == "nr_100000" }, "\(bareSeen.prefix(3))")
    }

    @Test func unknownNumberPrefixKeepsTheOtherAnswers() throws {
        let spec = Self.notifyByDefault()
        let program = try SeccompCompiler.compile(spec, cacheDir: nil)
        #if arch(x86_64)
        // x32 (nr | 0x40000000) is still killed by libseccomp's bad-arch check.
        let errnoSpec = Self.spec(deny: ["ptrace"], families: nil, onViolation: .errno, defaultAction: .errno,
                                  profile: [.init(syscalls: ["exit", "exit_group", "getpid"], action: .allow, origin: "t")])
        let errnoProgram = try SeccompCompiler.compile(errnoSpec, cacheDir: nil)
        #expect(Self.probe(errnoProgram, Int32(SBX_FENCE_PROBE_X32_GETPID)) == .signaled(SIGSYS))
        #expect(Self.probe(errnoProgram, Int32(SBX_FENCE_PROBE_UNKNOWN_NR)) == .exited(ENOSYS))
        #expect(Self.probe(errnoProgram, Int32(SBX_FENCE_PROBE_PTRACE_TRACEME)) == .exited(EPERM))
        #endif
        // A default that allows gets no prefix: a syscall newer than our tables is not
        // denied by a policy that allows by default.
        #expect(try SeccompCompiler.unknownNumberPrefix(Self.spec(defaultAction: .allow)) == nil)
        #expect(try SeccompCompiler.unknownNumberPrefix(Self.spec(defaultAction: .log)) == nil)
        #expect(program.instructionCount < 4096)
    }
}
