import Glibc
import Testing
@testable import SandboxKernel

/// The host's kernel audit state is asked for on every call, not kept for the
/// process: a long-lived `serve` whose host turned audit off after it started would
/// otherwise claim to observe Landlock denials the kernel no longer logs.
@Suite struct AuditStateTests {
    @Test func theStateIsAskedOnEveryCall() {
        var calls = 0
        var answer: (ok: Bool, enabled: UInt32) = (true, 1)
        let ask = { AuditReader.kernelAuditState(status: { calls += 1; return answer }) }
        #expect(ask() == true)
        answer = (true, 0)
        #expect(ask() == false, "audit turned off since the first run")
        answer = (false, 0)
        #expect(ask() == nil, "the state could not be read")
        #expect(calls == 3)
    }

    @Test func theHostStateReadsTheSameTwice() {
        // The real AUDIT_GET (this suite runs as root): two reads in a row agree.
        #expect(AuditReader.kernelAuditState() == AuditReader.kernelAuditState())
    }

    /// The query in two halves (serve asks while a request is planned) answers what
    /// AUDIT_GET answers, once, whenever it is read; it says when it was asked.
    @Test func aQueryAskedNowAndReadLaterAnswersTheHostState() {
        let before = Clock.monotonicUs()
        let query = AuditReader.askAuditState()
        #expect(query.askedAtUs >= before)
        usleep(20_000)
        let answer = query.answer()
        #expect(answer != nil, "AUDIT_GET was not answered")
        #expect(answer == AuditReader.kernelAuditState())
        #expect(query.answer() == answer, "a second read differs")
        // Never read: its socket is closed with it.
        _ = AuditReader.askAuditState()
    }
}
