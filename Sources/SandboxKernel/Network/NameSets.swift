import Glibc
import SandboxVocabulary

/// The DNS stub's writes to the name sets of a run's `table inet sandbox`
/// (`name<i>_4`, `name<i>_6`: `type ipv4_addr`/`ipv6_addr`, `flags timeout`): the
/// addresses an allowed name resolved to, each for its answer's TTL, put in by one
/// nf_tables transaction (an nfnetlink batch of DELSETELEM and NEWSETELEM) on a
/// netfilter socket opened inside the run's namespace when the stub starts.
///
/// Why not libnftables (`nft add element …`, as before): each update then opened a
/// netlink socket of its own, which the kernel binds to the process's pid, so for the
/// moment of every update `/proc/net/netlink` inside the run showed the supervisor's
/// host pid (red team, session 31; Docs/status.md had it as a gap). This socket's
/// address is random (`sbx_net_netlink_bind`). It also spares each update a thread
/// that enters the namespace and libnftables' parse and cache fetch.
final class NameSets {
    // The numbers it speaks: `NFTables`.

    /// One element change: the address (4 or 16 bytes, network order) in `set`, added
    /// with `timeoutSeconds`, or deleted (nil).
    struct Change: Hashable {
        var set: String
        var address: [UInt8]
        var timeoutSeconds: UInt32?
    }

    /// The namespace (a duplicate): a socket whose state is in doubt is made again there.
    private let netns: OwnedFD
    /// nil after a failed transaction: stale answers must not be read as the next
    /// batch's.
    private var socket: RouteSocket?
    private let lock = Lock()   // one transaction at a time on the socket
    /// How long a transaction may wait for the kernel's answer.
    static let answerTimeoutMs: Int32 = 2000

    /// A writer for the namespace `netnsFD` (duplicated), its socket made there now.
    init(netnsFD: Int32) throws(KernelError) {
        netns = try Netns.duplicate(netnsFD)
        socket = try Self.openSocket(in: netns.raw)
    }

    /// The netfilter socket, made on a thread inside the namespace. Its buffers hold
    /// the largest batch (a netlink message must fit the send buffer whole: 4096 rules
    /// matching one name, up to two messages each) and an error for every message of
    /// it (the kernel drops what does not fit, and then the last answer), as
    /// libnftables sizes its own.
    private static func openSocket(in netns: Int32) throws(KernelError) -> RouteSocket {
        do {
            return try Netns.run(in: netns) { () throws -> RouteSocket in
                let s = try RouteSocket(family: RTNL.NETLINK_NETFILTER)
                var size: Int32 = 16 << 20
                for (forced, plain) in [(SO_RCVBUFFORCE, SO_RCVBUF), (SO_SNDBUFFORCE, SO_SNDBUF)]
                where setsockopt(s.fd, SOL_SOCKET, forced, &size, socklen_t(MemoryLayout<Int32>.size)) != 0 {
                    _ = setsockopt(s.fd, SOL_SOCKET, plain, &size, socklen_t(MemoryLayout<Int32>.size))
                }
                return s
            }
        } catch let e as KernelError {
            throw e
        } catch {
            throw KernelError(operation: "socket", subject: "NETLINK_NETFILTER", errno: EIO, detail: "\(error)")
        }
    }

    /// Applies every change at once: the kernel takes the whole batch or none of it
    /// (a set over its size refuses it). A change is made once (the same address twice
    /// in an answer would delete it twice in one batch, which the kernel refuses);
    /// deletions come before additions, set by set, as `delete element …; add element
    /// …` would. A timeout of 0 is refused: the kernel would keep that element for ever.
    func apply(_ changes: [Change], table: String = NftRunTable.name) throws(KernelError) {
        var seen = Set<Change>()
        let unique = changes.filter { seen.insert($0).inserted }
        guard !unique.isEmpty else { return }
        let subject = "\(NftRunTable.family) \(table)"
        guard !unique.contains(where: { $0.timeoutSeconds == 0 }) else {
            throw KernelError(operation: "nf_tables transaction", subject: subject, errno: EINVAL, detail: "an element timeout of 0 never expires")
        }
        lock.lock()
        defer { lock.unlock() }
        let s: RouteSocket
        if let open = socket { s = open } else { s = try Self.openSocket(in: netns.raw); socket = s }
        do {
            try s.transaction(Self.messages(unique, table: table), subject: subject, timeoutMs: Self.answerTimeoutMs)
        } catch {
            // After a failure answers may still come (no answer in time, answers lost):
            // the next batch gets a new socket rather than read them as its own.
            socket = nil
            throw error
        }
    }

    /// The batch's messages (without BATCH_BEGIN/END): per set, in the order sets first
    /// appear, one DELSETELEM with its deletions, then one NEWSETELEM with its additions.
    static func messages(_ changes: [Change], table: String) -> [NetlinkMessage] {
        // Grouped in one pass (an answer's changes times the rules its name matches
        // can be many: nothing here may be quadratic in them).
        var sets: [String] = []
        var bySet: [String: (deletes: [Change], adds: [Change])] = [:]
        for c in changes {
            if bySet[c.set] == nil { sets.append(c.set); bySet[c.set] = ([], []) }
            if c.timeoutSeconds == nil { bySet[c.set]!.deletes.append(c) } else { bySet[c.set]!.adds.append(c) }
        }
        var out: [NetlinkMessage] = []
        for set in sets {
            let (deletes, adds) = bySet[set]!
            if !deletes.isEmpty { out.append(message(NFTables.NFT_MSG_DELSETELEM, flags: 0, table: table, set: set, deletes)) }
            if !adds.isEmpty { out.append(message(NFTables.NFT_MSG_NEWSETELEM, flags: RTNL.NLM_F_CREATE, table: table, set: set, adds)) }
        }
        return out
    }

    private static func message(_ type: UInt16, flags: UInt16, table: String, set: String, _ elements: [Change]) -> NetlinkMessage {
        var m = NetlinkMessage(type: type, flags: flags)
        m.raw([NFTables.NFPROTO_INET, NFTables.NFNETLINK_V0, 0, 0])   // struct nfgenmsg
        m.attribute(NFTables.NFTA_SET_ELEM_LIST_TABLE, string: table)
        m.attribute(NFTables.NFTA_SET_ELEM_LIST_SET, string: set)
        m.nested(NFTables.NFTA_SET_ELEM_LIST_ELEMENTS | NFTables.NLA_F_NESTED) { list in
            for e in elements {
                list.nested(NFTables.NFTA_LIST_ELEM | NFTables.NLA_F_NESTED) { element in
                    element.nested(NFTables.NFTA_SET_ELEM_KEY | NFTables.NLA_F_NESTED) { key in
                        key.attribute(NFTables.NFTA_DATA_VALUE, e.address)
                    }
                    if let seconds = e.timeoutSeconds {
                        // Milliseconds, big-endian (NLA_U64 in network order).
                        let ms = UInt64(seconds) * 1000
                        element.attribute(NFTables.NFTA_SET_ELEM_TIMEOUT, (0..<8).map { UInt8((ms >> (56 - 8 * UInt64($0))) & 0xff) })
                    }
                }
            }
        }
        return m
    }
}

extension RouteSocket {
    /// An nf_tables transaction: BATCH_BEGIN, `messages`, BATCH_END in one send. The
    /// last message asks for an ack: the kernel answers each failed message with an
    /// error and then the last one, in order, so its answer closes the exchange (an
    /// ack per message would be one answer per message, which a large batch overflows
    /// the receive buffer with). The kernel commits all of them or, on any error,
    /// none (the first error is thrown). No answer within `timeoutMs`: ETIMEDOUT.
    func transaction(_ messages: [NetlinkMessage], subject: String, timeoutMs: Int32) throws(KernelError) {
        guard !messages.isEmpty else { return }
        // struct nfgenmsg of the batch markers: res_id = NFNL_SUBSYS_NFTABLES, big-endian.
        let marker: [UInt8] = [RTNL.AF_UNSPEC, NFTables.NFNETLINK_V0, 0, NFTables.NFNL_SUBSYS_NFTABLES]
        var begin = NetlinkMessage(type: NFTables.NFNL_MSG_BATCH_BEGIN, flags: RTNL.NLM_F_REQUEST)
        begin.raw(marker)
        var end = NetlinkMessage(type: NFTables.NFNL_MSG_BATCH_END, flags: RTNL.NLM_F_REQUEST)
        end.raw(marker)
        let beginSeq = nextSeq()
        var bytes = begin.encoded(seq: beginSeq)
        var lastSeq = beginSeq
        for (i, message) in messages.enumerated() {
            var m = message
            m.flags |= RTNL.NLM_F_REQUEST | (i == messages.count - 1 ? RTNL.NLM_F_ACK : 0)
            lastSeq = nextSeq()
            bytes += m.encoded(seq: lastSeq)
        }
        let endSeq = nextSeq()
        bytes += end.encoded(seq: endSeq)
        let operation = "netlink nf_tables transaction"
        let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == bytes.count else { throw KernelError.last(operation, subject) }
        var failure: KernelError? = nil
        try receive(operation: operation, subject: subject, timeoutMs: timeoutMs) { reply throws(KernelError) -> Bool in
            guard reply.type == RTNL.NLMSG_ERROR else { return false }
            let (code, text) = reply.error
            // An error on a batch marker (e.g. no memory for the error list) is the
            // only answer the batch gets.
            if code != 0 && (reply.seq == beginSeq || reply.seq == endSeq) {
                throw KernelError(operation: operation, subject: subject, errno: code, detail: text)
            }
            // The batch's messages have the numbers after its BATCH_BEGIN's; any other
            // answer is a stale one.
            let k = reply.seq &- beginSeq
            guard k >= 1, k <= UInt32(messages.count) else { return false }
            if code != 0 && failure == nil { failure = KernelError(operation: operation, subject: subject, errno: code, detail: text) }
            return reply.seq == lastSeq
        }
        if let failure { throw failure }
    }
}
