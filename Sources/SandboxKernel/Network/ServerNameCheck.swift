import CSandbox
import FoundationEssentials
import Glibc
import SandboxVocabulary

/// The server name check (Docs/network.md, "The server name check"): the first data
/// of every TCP flow a host rule admitted comes to the supervisor through an
/// nfnetlink_queue of the run's namespace; it passes when the TLS server_name (or
/// HTTP Host) it carries is a name that resolved to that destination in this run and
/// that a rule allows on that port, else the flow is reset. The verdict goes back as
/// a packet mark on a repeated packet, which the ruleset turns into the flow's
/// conntrack mark: later packets never come here. No proxy: the data stays in the
/// kernel. No bypass: while nothing reads the queue, its packets are dropped.
public final class ServerNameCheck: @unchecked Sendable {
    /// Bytes of each packet copied up: a first segment is at most an MSS.
    static let copyRange: UInt32 = 65535

    let queue: UInt16
    private let socket: OwnedFD
    private let stub: DNSStub
    /// The serving thread and the refusals, one entry per (address, port, name, reason).
    private let loop: ServingLoop<ServerNameRefusal>
    private let lock = Lock()
    private var flows = FlowBook()

    /// Appends the queue rule to the run's `sandbox_sni` chains and binds the queue,
    /// inside `netnsFD`. `queue`: a number of the run's own (queues are per namespace
    /// anyway; the run's address makes it unique on the host too).
    public static func start(queue: UInt16, netnsFD: Int32, stub: DNSStub) throws -> ServerNameCheck {
        let loop = try ServingLoop<ServerNameRefusal>(subject: "server name check")
        let fd = try Netns.run(in: netnsFD) { () throws -> Int32 in
            // NFPROTO_IPV4, NFPROTO_IPV6
            for (family, name) in [(Int32(2), "ip"), (Int32(10), "ip6")] {
                let r = sbx_nft_append_queue_rule(family, NftRunTable.sniTable, NftRunTable.sniChain, queue)
                guard r == 0 else {
                    throw KernelError(operation: "nft add rule (NFQUEUE)", subject: "\(name) \(NftRunTable.sniTable) \(NftRunTable.sniChain)", errno: -r)
                }
            }
            let fd = sbx_nfq_open(queue, copyRange)
            guard fd >= 0 else { throw KernelError(operation: "nfnetlink_queue bind", subject: "queue \(queue)", errno: -fd) }
            return fd
        }
        let check = ServerNameCheck(queue: queue, socket: OwnedFD(fd), stub: stub, loop: loop)
        loop.start(name: "sni-check") { check.serve() }
        return check
    }

    private init(queue: UInt16, socket: OwnedFD, stub: DNSStub, loop: ServingLoop<ServerNameRefusal>) {
        self.queue = queue; self.socket = socket; self.stub = stub; self.loop = loop
    }

    deinit { socket.close() }

    /// Stops reading (idempotent). Packets queued after it are dropped by the kernel.
    public func stop() { loop.stop() }

    /// The refusals so far, most frequent first.
    public func refusals() -> (kinds: [ServerNameRefusal], dropped: UInt64) {
        loop.refusals { ($0.daddr, $0.name) < ($1.daddr, $1.name) }
    }

    private func serve() {
        var buffer = [UInt8](repeating: 0, count: Int(Self.copyRange) + 4096)
        while true {
            var fds = [pollfd(fd: socket.raw, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: loop.stopFD, events: Int16(POLLIN), revents: 0)]
            let r = poll(&fds, 2, -1)
            if r < 0 { if errno == EINTR { continue } else { return } }
            if fds[1].revents != 0 { return }
            while true {
                var id: UInt32 = 0, offset: UInt32 = 0, length: UInt32 = 0
                let got = buffer.withUnsafeMutableBytes {
                    sbx_nfq_receive(socket.raw, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), $0.count, &id, &offset, &length)
                }
                if got == -EAGAIN || got == -EWOULDBLOCK { break }
                if got == -EINTR || got == -ENOBUFS || got == 0 { continue }  // ENOBUFS: the kernel dropped some (fail closed)
                if got < 0 { return }
                let (verdict, mark) = decide(buffer[Int(offset)..<Int(offset + length)])
                _ = sbx_nfq_verdict(socket.raw, queue, id, verdict, mark)
            }
        }
    }

    static let accept: UInt32 = 1    // NF_ACCEPT
    static let drop: UInt32 = 0      // NF_DROP
    static let repeatHook: UInt32 = 4  // NF_REPEAT: the chain again, with the mark set

    /// The verdict on one queued packet (what `FlowBook` says): a SYN opens the flow
    /// and passes, as does a segment without data; the data that starts right after
    /// the SYN decides for the flow; other data of an undecided flow is dropped.
    func decide(_ packet: ArraySlice<UInt8>) -> (verdict: UInt32, mark: UInt32) {
        guard let segment = TCPSegment(packet) else { return (Self.drop, 0) }
        lock.lock()
        let step = flows.step(segment)
        lock.unlock()
        switch step {
        case .accept: return (Self.accept, 0)
        case .drop: return (Self.drop, 0)
        case .known(let passed): return (Self.repeatHook, passed ? NftRunTable.sniPassed : NftRunTable.sniRefused)
        case .decide, .unknown: break
        }
        let daddr = AddressRange.format(segment.destination) ?? "?"
        var refusal: (name: String, reason: ServerNameRefusal.Reason)? = nil
        // Urgent data leaves the stream the server reads (unless it asked for it
        // inline): the bytes here would not be the bytes it reads. A flow not seen
        // opening has no first data to read.
        let claim = step == .unknown || segment.flags & TCPSegment.urg != 0
            ? .unreadable(.noName) : ServerName.claim(segment.payload)
        switch claim {
        case .tls(let name), .http(let name):
            if let reason = stub.refusal(name: name, address: segment.destination, port: segment.destinationPort) {
                refusal = (name, reason)
            }
        case .unreadable(let why):
            refusal = ("", why == .ech ? .ech : .noName)
        }
        lock.lock()
        flows.record(segment, passed: refusal == nil)
        lock.unlock()
        if let refusal {
            loop.count("\(daddr)\u{0}\(segment.destinationPort)\u{0}\(refusal.name)\u{0}\(refusal.reason.rawValue)",
                       ServerNameRefusal(daddr: daddr, dport: segment.destinationPort, name: refusal.name, reason: refusal.reason, count: 1))
        }
        return (Self.repeatHook, refusal == nil ? NftRunTable.sniPassed : NftRunTable.sniRefused)
    }
}

/// What the check remembers of each queued flow, by its four-tuple: the ISN of the
/// SYN that opened it (every SYN of a pending flow is queued) and, once the data right
/// after it was read, the verdict. A new SYN on the same four-tuple is a new
/// connection and starts afresh (red-team F1: a verdict must not outlive its
/// connection). Only the segment at ISN+1 (or data in the SYN itself) decides: when
/// the queue dropped the first segment, a later one must not decide for the stream
/// the server reads from its start; it is dropped and the first comes again,
/// retransmitted (red-team F4).
struct FlowBook {
    enum Step: Equatable {
        /// Pass, no verdict (the handshake, a bare ACK, FIN or RST).
        case accept
        /// Drop, no verdict: data of an undecided flow that is not its first.
        case drop
        /// Read this segment and `record` the verdict.
        case decide
        /// Data of a flow whose opening the check never saw (forgotten): refuse and record.
        case unknown
        /// Decided before; a segment queued before the verdict reached the kernel.
        case known(passed: Bool)
    }

    /// Flows remembered: when full, decided ones are forgotten (their later segments
    /// rarely still queue), then new SYNs are dropped until some decide (the client
    /// sends them again).
    static let maxFlows = 4096

    private struct Entry { var isn: UInt32; var passed: Bool? }
    private var entries: [[UInt8]: Entry] = [:]

    var count: Int { entries.count }

    mutating func step(_ s: TCPSegment) -> Step {
        let flow = s.flow
        if s.opens {
            if entries[flow] == nil && entries.count >= Self.maxFlows {
                entries = entries.filter { $0.value.passed == nil }
                if entries.count >= Self.maxFlows { return .drop }
            }
            entries[flow] = Entry(isn: s.sequence, passed: nil)
            return s.payload.isEmpty ? .accept : .decide
        }
        if s.payload.isEmpty { return .accept }
        guard let e = entries[flow] else { return .unknown }
        if let passed = e.passed { return .known(passed: passed) }
        return s.sequence == e.isn &+ 1 ? .decide : .drop
    }

    /// The verdict for the flow of a segment `step` said `.decide` or `.unknown` for.
    mutating func record(_ s: TCPSegment, passed: Bool) {
        let flow = s.flow
        if var e = entries[flow] {
            e.passed = passed
            entries[flow] = e
        } else if entries.count < Self.maxFlows {
            entries[flow] = Entry(isn: s.sequence &- 1, passed: passed)
        }
    }
}
