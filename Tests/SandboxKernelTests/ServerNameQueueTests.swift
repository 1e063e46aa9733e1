import CSandbox
import Glibc
import Testing
@testable import SandboxKernel

/// The server name check fails closed (issue 17): the queue rule the supervisor
/// appends has no bypass, so while nobody reads the queue its packets are dropped.
/// In a namespace of the test's own, on its loopback: a connect whose SYN is queued
/// does not complete while no socket is bound to the queue; control: bound, and the
/// SYN accepted by a verdict, the same connect completes.
@Suite struct ServerNameQueueTests {
    @Test func anUnreadQueueDropsAndAVerdictPasses() throws {
        guard require(getuid() == 0, "root") else { return }
        let ns = try Netns.create()
        defer { close(ns) }
        let (unread, verdicted) = try Netns.run(in: ns) { () throws -> (Bool, Bool) in
            let rtnl = try RouteSocket()
            let lo = try #require(try rtnl.link(named: "lo"))
            try rtnl.setLink(index: lo.index, name: "lo", up: true, alias: nil, master: nil)
            _ = try Nftables.run("table ip sbxq {\n chain o {\n type filter hook output priority filter + 1; policy accept;\n tcp dport != 7777 accept\n }\n}\n",
                                 operation: "nft", subject: "test table")
            #expect(sbx_nft_append_queue_rule(2, "sbxq", "o", 77) == 0)
            let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(listener) }
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET); sin.sin_port = UInt16(7777).bigEndian
            sin.sin_addr.s_addr = UInt32(0x7f000001).bigEndian
            let bound = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            #expect(bound == 0 && listen(listener, 8) == 0)
            /// Starts a non-blocking connect; true once it completes within `ms`.
            func connects(_ ms: Int32, while step: () -> Void = {}) -> Bool {
                let c = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
                defer { close(c) }
                _ = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(c, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
                step()
                var p = pollfd(fd: c, events: Int16(POLLOUT), revents: 0)
                guard poll(&p, 1, ms) == 1 else { return false }
                var err: Int32 = 0
                var len = socklen_t(4)
                getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len)
                return err == 0
            }
            let unread = connects(500)
            let q = sbx_nfq_open(77, 256)
            #expect(q >= 0)
            defer { close(q) }
            let verdicted = connects(2000) {
                var buffer = [UInt8](repeating: 0, count: 4096)
                var p = pollfd(fd: q, events: Int16(POLLIN), revents: 0)
                guard poll(&p, 1, 2000) == 1 else { return }
                var id: UInt32 = 0, offset: UInt32 = 0, length: UInt32 = 0
                let got = buffer.withUnsafeMutableBytes { sbx_nfq_receive(q, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), $0.count, &id, &offset, &length) }
                if got == 1 { _ = sbx_nfq_verdict(q, 77, id, 1, 0) }
            }
            return (unread, verdicted)
        }
        #expect(!unread, "a connect completed while nobody read the queue")
        #expect(verdicted, "control: the connect did not complete with the SYN accepted")
    }
}
