import CSandbox
import Foundation
import Glibc
@testable import SandboxKernel
import Testing

/// The child's step codes: what child.c's step lists send, what sandbox_child.h
/// defines and what Child.swift names must be one set.
@Suite struct ChildStepTests {
    static func sentSteps() -> [Int32] {
        let n = sbx_child_steps(nil, 0)
        var codes = [Int32](repeating: 0, count: n)
        _ = codes.withUnsafeMutableBufferPointer { sbx_child_steps($0.baseAddress, n) }
        return codes
    }

    /// Every code is sent by exactly one step, every defined code is sent (no dead
    /// codes in the header), and every one has a name in Child.swift. Child.swift can
    /// only name header codes, so this also covers "every name has a sender".
    @Test func everyStepCodeIsSentOnceAndNamed() {
        let sent = Self.sentSteps()
        #expect(sent.count > 30, "the step lists look empty: \(sent)")
        #expect(Set(sent).count == sent.count, "a code is sent by two steps: \(sent)")
        #expect(Set(sent) == Set(1..<Int32(SBX_STEP_END.rawValue)),
                "codes defined but never sent, or sent but not defined: \(sent)")
        for code in 1..<Int32(SBX_STEP_END.rawValue) {
            let name = ChildFailure(step: code, index: -1, errno: 0).stepName
            #expect(name != "step \(code)", "step code \(code) has no name in Child.swift")
        }
        #expect(ChildFailure(step: Int32(SBX_STEP_END.rawValue), index: -1, errno: 0).stepName == "step \(SBX_STEP_END.rawValue)")
    }

    /// Docs/architecture.md's table of the child's order of operations has one row per
    /// step, in the order the step lists run them, each naming its step as Child.swift
    /// reports it (an item number shows as N).
    @Test func architectureTableFollowsTheStepLists() throws {
        var docs = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { docs.deleteLastPathComponent() }
        let text = try String(contentsOf: docs.appendingPathComponent("Docs/architecture.md"), encoding: .utf8)
        let section = try #require(text.components(separatedBy: "## The child's order of operations").dropFirst().first)
        let rows = section.components(separatedBy: "\n## ")[0].split(separator: "\n")
            .filter { $0.range(of: #"^\| [0-9]+ \|"#, options: .regularExpression) != nil }
        let sent = Self.sentSteps()
        #expect(rows.count == sent.count, "the table has \(rows.count) rows for \(sent.count) steps")
        for (k, (row, code)) in zip(rows, sent).enumerated() {
            let cells = row.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            #expect(cells[1] == String(k + 1), "row \(k + 1) is numbered \(cells[1])")
            let name = ChildFailure(step: code, index: .min, errno: 0).stepName.replacingOccurrences(of: "\(Int32.min)", with: "N")
            #expect(cells[2].contains("`\(name)`"), "row \(k + 1) should name step `\(name)`: \(cells[2])")
        }
    }

    /// A spec asking the init to keep more descriptors than fit is refused at its own
    /// step, naming how many were asked for; before, the v1 cgroup files past the 24th
    /// were silently left out of the list (and closed). Needs no privilege: a plain
    /// clone3 with no namespaces fails at the init's second step.
    @Test func overlongKeepListIsRefusedWithItsStep() throws {
        var fds: [Int32] = [-1, -1]
        #expect(sbx_pipe_cloexec(&fds) == 0)
        defer { close(fds[0]) }
        var spec = ChildSpec()
        spec.errorFD = fds[1]
        spec.cgroupJoinFDs = Array(repeating: fds[1], count: Int(SBX_MAX_KEEP))
        spec.argv = ["/bin/true"]
        spec.hideSupervisorArgv = false
        let child = try Child.spawn(spec)
        close(fds[1])
        defer { close(child.pidfd) }

        var record = [UInt8](repeating: 0, count: 12)
        let n = read(fds[0], &record, 12)
        var code: Int32 = 0, status: Int32 = 0
        var usage = rusage()
        #expect(sbx_pidfd_wait(child.pidfd, &code, &status, &usage) == 0)
        #expect(code == CLD_EXITED && status == 125)

        #expect(n == 12)
        let failure = try #require(ChildFailure(record: record))
        let asked = Int32(SBX_MAX_KEEP) + 8 // the init's five channels and fence fds, the checked executable and script, the command socket
        #expect(failure == ChildFailure(step: Int32(SBX_STEP_KEEP_LIST.rawValue), index: asked, errno: E2BIG))
        #expect(failure.stepName == "keep \(asked) descriptors across the first close (at most \(SBX_MAX_KEEP))")
    }

    /// A network namespace made ahead that cannot be entered fails the spawn: the
    /// init is never cloned without CLONE_NEWNET in the caller's own namespace, and
    /// the calling thread is still in the namespace it was in. Needs no privilege:
    /// setns on a descriptor that is no namespace is EINVAL before any check.
    @Test func aNamespaceMadeAheadThatCannotBeEnteredFailsTheSpawn() throws {
        let before = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self/ns/net")
        let notANamespace = open("/dev/null", O_RDONLY | O_CLOEXEC)
        #expect(notANamespace >= 0)
        defer { close(notANamespace) }
        var spec = ChildSpec()
        spec.argv = ["/bin/true"]
        spec.cloneFlags = ChildSpec.newNet
        spec.joinNetworkNamespace = notANamespace
        spec.hideSupervisorArgv = false
        do {
            let child = try Child.spawn(spec)
            close(child.pidfd)
            Issue.record("cloned although the namespace could not be entered: pid \(child.pid)")
        } catch {
            #expect(error.errno?.rawValue == EINVAL, "\(error)")
        }
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self/ns/net") == before)
    }

    /// A sandbox built ahead waits for its command after the thread that built it may
    /// have gone, and an init cloned by a thread dies with it (PDEATHSIG): without a
    /// server's spawner it is refused before anything is cloned (EXDEV).
    @Test func aSandboxBuiltAheadIsClonedOnlyByTheSpawner() throws {
        var pair: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0)
        defer { close(pair[0]); close(pair[1]) }
        #expect(sbx_spawner_running() == 0)
        var spec = ChildSpec()
        spec.argv = ["/bin/true"]
        spec.commandSocket = pair[1]
        spec.hideSupervisorArgv = false
        do {
            let child = try Child.spawn(spec)
            close(child.pidfd)
            Issue.record("cloned without a spawner: pid \(child.pid)")
        } catch {
            #expect(error.errno?.rawValue == EXDEV, "\(error)")
        }
    }
}
