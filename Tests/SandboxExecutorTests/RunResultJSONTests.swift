import Foundation
@testable import SandboxExecutor
import SandboxKernel
import SandboxPlan
import SandboxVocabulary
import Testing

/// `RunResult.canonicalJSON()` is written by hand; it must stay the Codable encoding
/// byte for byte (debug builds also check every result they write).
struct RunResultJSONTests {
    @Test func aResultWithEveryFieldSetIsItsCodableEncoding() throws {
        var r = RunResult.refused(runId: "r-1", policy: "p\"é", argv: ["sh", "-c", "echo \u{1}\n"],
                                  error: ExecError(kind: .setup, step: "bind sources", subject: "/data\t",
                                                   errno: Errno(2), message: "bind /data: No such file"))
        r.planDigest = "d"; r.signal = 9; r.timedOut = true; r.wallMs = 12; r.cpuUserMs = 3; r.cpuSystemMs = 4
        r.cpuSource = .cgroup
        r.notApplied = ["a", "b\\"]
        r.fences = .init(landlockABI: 7, seccompRules: 40, seccompInstructions: 200, seccompAction: "errno",
                         seccompCacheHit: true, capabilitiesKept: ["net_bind_service"], noNewPrivs: true)
        r.violations = [.init(kind: "seccomp", syscall: "ptrace", args: [1, UInt64.max], calls: [[1, 2], []], count: 2),
                        .init(kind: "seccomp", syscall: nil, args: nil, calls: [], count: 0)]
        r.egressDenied = [.init(daddr: "10.0.0.1", dport: 443, proto: "tcp", packets: 3, reason: .notAllowed)]
        r.denials = [.init(kind: .syscall, what: "ptrace", detail: "EPERM", count: 5, first: 3, hint: "h"),
                     .init(kind: .filesystem, what: "/x", detail: nil, count: 1, first: nil, hint: "")]
        r.resources = .init(oomKilled: true, pidsLimitHit: false, memoryPeakBytes: 1 << 40, throttledUs: 7)
        r.hostUID = 1_878_982_656
        r.binary = CheckedBinary(path: "/usr/bin/python3.11", foundAs: "/usr/bin/python3", sha256: "ab", fence: .copy,
                                 interpreter: .init(path: "/bin/sh", foundAs: nil, sha256: "cd", fence: .lease))
        r.violationsTotal = 9; r.violationsDropped = 1
        r.createdEntries = ["/w/.git/hooks/x"]; r.createdEntriesTotal = 1; r.createdEntriesIncomplete = true
        r.dnsDenied = [.init(DNSRefusal(name: "e.org", type: "A", reason: .notAllowed, count: 2))]
        r.dnsDeniedDropped = 4
        r.sniDenied = [.init(ServerNameRefusal(daddr: "10.0.0.2", dport: 443, name: "x", reason: .ech, count: 1))]
        r.sniDeniedDropped = 0
        // (Its initializer is SandboxPlan's own.)
        r.isolation = try JSONDecoder().decode(IsolationPlan.self, from: Data("""
            {"accepted":["mask"],"layers":[{"applied":true,"how":"h","name":"landlock"}],"mode":"nested",
             "reason":"why","requested":"namespaces-or-nested"}
            """.utf8))
        #expect(String(decoding: r.canonicalJSON(), as: UTF8.self) == String(decoding: try CanonicalJSON.encode(r), as: UTF8.self))

        // And with every optional left out.
        let bare = RunResult.refused(runId: "r", policy: "p", argv: [], error: ExecError(kind: .plan, step: "s", message: "m"))
        var none = bare
        none.error = nil
        for result in [bare, none] {
            #expect(String(decoding: result.canonicalJSON(), as: UTF8.self) == String(decoding: try CanonicalJSON.encode(result), as: UTF8.self))
        }
    }
}
