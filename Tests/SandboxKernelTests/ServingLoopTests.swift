import Glibc
import SandboxVocabulary
import Testing
@testable import SandboxKernel

/// The serving thread and refusal count the DNS stub and the server name check share.
@Suite struct ServingLoopTests {
    func refusal(_ name: String) -> DNSRefusal { DNSRefusal(name: name, type: "A", reason: .notAllowed, count: 1) }

    /// A kind counted again adds to its entry; past 256 kinds, refusals are only
    /// counted; the list is most frequent first, ties in the caller's order.
    @Test func countsKindsUpToTheCapMostFrequentFirst() throws {
        let loop = try ServingLoop<DNSRefusal>(subject: "test")
        for _ in 0..<3 { loop.count("b", refusal("b")) }
        for _ in 0..<3 { loop.count("a", refusal("a")) }
        loop.count("c", refusal("c"))
        for i in 0..<300 { loop.count("x\(i)", refusal("x\(i)")) }
        let (kinds, dropped) = loop.refusals { $0.name < $1.name }
        #expect(kinds.count == 256 && dropped == 47)
        #expect(kinds.prefix(3).map { "\($0.name)×\($0.count)" } == ["a×3", "b×3", "c×1"])
        // A kept kind still counts after the cap is reached.
        loop.count("c", refusal("c"))
        #expect(loop.refusals { $0.name < $1.name }.kinds.first { $0.name == "c" }?.count == 2)
    }

    /// `stop()` wakes the thread polling `stopFD` and returns after it has; again, at once.
    @Test func stopReturnsAfterTheThreadHas() throws {
        let loop = try ServingLoop<DNSRefusal>(subject: "test")
        final class Flag: @unchecked Sendable { var done = false }
        let flag = Flag()
        let fd = loop.stopFD
        loop.start(name: "test-loop") {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            while poll(&p, 1, -1) < 0 {}
            usleep(50_000)
            flag.done = true
        }
        loop.stop()
        #expect(flag.done)
        loop.stop()
    }
}
