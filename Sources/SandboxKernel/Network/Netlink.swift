import CSandbox
import Glibc

// rtnetlink messages built and parsed in Swift, byte by byte. The numbers are the
// kernel's ABI (<linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_link.h>,
// <linux/veth.h>, <linux/if_addr.h>); each carries its C name so the code and the
// golden-byte tests (Tests/SandboxKernelTests/NetworkTests.swift) read like the
// headers. Only socket setup is in C (sbx_net_rtnl_open), for <linux/netlink.h>.

enum RTNL {
    // Message types.
    static let NLMSG_ERROR: UInt16 = 2
    static let NLMSG_DONE: UInt16 = 3
    static let RTM_NEWLINK: UInt16 = 16
    static let RTM_DELLINK: UInt16 = 17
    static let RTM_GETLINK: UInt16 = 18
    static let RTM_NEWADDR: UInt16 = 20
    static let RTM_GETADDR: UInt16 = 22
    static let RTM_NEWROUTE: UInt16 = 24

    // nlmsghdr.nlmsg_flags.
    static let NLM_F_REQUEST: UInt16 = 0x1
    static let NLM_F_MULTI: UInt16 = 0x2
    static let NLM_F_ACK: UInt16 = 0x4
    static let NLM_F_DUMP: UInt16 = 0x300
    static let NLM_F_DUMP_INTR: UInt16 = 0x10   // on a dump's messages: the dumped state changed meanwhile
    static let NLM_F_REPLACE: UInt16 = 0x100
    static let NLM_F_EXCL: UInt16 = 0x200
    static let NLM_F_CREATE: UInt16 = 0x400
    static let NLM_F_CAPPED: UInt16 = 0x100   // on NLMSG_ERROR: the request is not echoed
    static let NLM_F_ACK_TLVS: UInt16 = 0x200 // on NLMSG_ERROR: extended-ack attributes follow
    static let NLMSGERR_ATTR_MSG: UInt16 = 1

    // struct ifinfomsg attributes.
    static let IFLA_ADDRESS: UInt16 = 1
    static let IFLA_IFNAME: UInt16 = 3
    static let IFLA_MASTER: UInt16 = 10
    static let IFLA_LINKINFO: UInt16 = 18
    static let IFLA_IFALIAS: UInt16 = 20
    static let IFLA_NET_NS_FD: UInt16 = 28
    static let IFLA_INFO_KIND: UInt16 = 1
    static let IFLA_INFO_DATA: UInt16 = 2
    static let VETH_INFO_PEER: UInt16 = 1

    // struct ifaddrmsg / struct rtmsg attributes.
    static let IFA_ADDRESS: UInt16 = 1
    static let IFA_LOCAL: UInt16 = 2
    static let IFA_BROADCAST: UInt16 = 4
    static let RTA_OIF: UInt16 = 4
    static let RTA_GATEWAY: UInt16 = 5

    // The nfnetlink family (its messages' numbers: `NFTables`).
    static let NETLINK_NETFILTER: Int32 = 12

    static let AF_UNSPEC: UInt8 = 0
    static let AF_INET: UInt8 = 2
    static let AF_INET6: UInt8 = 10
    static let IFF_UP: UInt32 = 0x1
    static let RT_TABLE_MAIN: UInt8 = 254
    static let RTPROT_STATIC: UInt8 = 4
    static let RT_SCOPE_UNIVERSE: UInt8 = 0
    static let RTN_UNICAST: UInt8 = 1

    static func name(_ type: UInt16) -> String {
        switch type {
        case RTM_NEWLINK: return "RTM_NEWLINK"
        case RTM_DELLINK: return "RTM_DELLINK"
        case RTM_GETLINK: return "RTM_GETLINK"
        case RTM_NEWADDR: return "RTM_NEWADDR"
        case RTM_NEWROUTE: return "RTM_NEWROUTE"
        case RTM_GETADDR: return "RTM_GETADDR"
        case NFTables.NFT_MSG_GETGEN: return "NFT_MSG_GETGEN"
        default: return "type \(type)"
        }
    }
}

/// A netlink message under construction: the family header, then attributes, each
/// padded to 4 bytes (NLA_ALIGN). Integers are host byte order, as the kernel reads
/// them; addresses are network byte order.
struct NetlinkMessage {
    var type: UInt16
    var flags: UInt16
    private(set) var payload: [UInt8] = []

    init(type: UInt16, flags: UInt16) { self.type = type; self.flags = flags }

    /// struct ifinfomsg { u8 family, pad; u16 type; s32 index; u32 flags, change; }
    mutating func ifinfomsg(index: Int32 = 0, flags: UInt32 = 0, change: UInt32 = 0) {
        payload += NetlinkMessage.ifinfomsgBytes(index: index, flags: flags, change: change)
    }

    static func ifinfomsgBytes(index: Int32 = 0, flags: UInt32 = 0, change: UInt32 = 0) -> [UInt8] {
        [RTNL.AF_UNSPEC, 0] + le(UInt16(0)) + le(UInt32(bitPattern: index)) + le(flags) + le(change)
    }

    /// struct ifaddrmsg { u8 family, prefixlen, flags, scope; u32 index; }
    mutating func ifaddrmsg(prefixLength: UInt8, index: Int32) {
        payload += [RTNL.AF_INET, prefixLength, 0, RTNL.RT_SCOPE_UNIVERSE] + le(UInt32(bitPattern: index))
    }

    /// struct rtmsg { u8 family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags; }
    mutating func rtmsg(dstLength: UInt8) {
        payload += [RTNL.AF_INET, dstLength, 0, 0, RTNL.RT_TABLE_MAIN, RTNL.RTPROT_STATIC,
                    RTNL.RT_SCOPE_UNIVERSE, RTNL.RTN_UNICAST] + le(UInt32(0))
    }

    mutating func attribute(_ type: UInt16, _ data: [UInt8]) {
        payload += le(UInt16(4 + data.count)) + le(type) + data
        pad()
    }

    /// A NUL-terminated string attribute (IFLA_IFNAME, IFLA_INFO_KIND, IFLA_IFALIAS).
    mutating func attribute(_ type: UInt16, string: String) { attribute(type, Array(string.utf8) + [0]) }
    mutating func attribute(_ type: UInt16, u32: UInt32) { attribute(type, le(u32)) }
    mutating func attribute(_ type: UInt16, s32: Int32) { attribute(type, le(UInt32(bitPattern: s32))) }

    /// An attribute whose payload is built by `body` (nested attributes, or a family
    /// header followed by attributes, as VETH_INFO_PEER is); its length is filled in
    /// afterwards.
    mutating func nested(_ type: UInt16, _ body: (inout NetlinkMessage) -> Void) {
        let start = payload.count
        payload += le(UInt16(0)) + le(type)
        body(&self)
        let length = UInt16(payload.count - start)
        payload[start] = UInt8(length & 0xff)
        payload[start + 1] = UInt8(length >> 8)
        pad()
    }

    mutating func raw(_ bytes: [UInt8]) { payload += bytes }

    private mutating func pad() {
        while payload.count % 4 != 0 { payload.append(0) }
    }

    /// struct nlmsghdr { u32 len; u16 type, flags; u32 seq, pid; } + payload.
    func encoded(seq: UInt32) -> [UInt8] {
        le(UInt32(16 + payload.count)) + le(type) + le(flags) + le(seq) + le(UInt32(0)) + payload
    }
}

func le(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
func le(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * UInt32($0))) & 0xff) } }

extension Array where Element == UInt8 {
    func u16(at i: Int) -> UInt16 { UInt16(self[i]) | UInt16(self[i + 1]) << 8 }
    func u32(at i: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(self[i + $1]) << (8 * UInt32($1)) } }
    func s32(at i: Int) -> Int32 { Int32(bitPattern: u32(at: i)) }
}

/// Netlink attributes parsed from a payload: (type without the NLA_F_* bits, data).
func netlinkAttributes(_ bytes: [UInt8], from start: Int) -> [(type: UInt16, data: [UInt8])] {
    var out: [(UInt16, [UInt8])] = []
    var i = start
    while i + 4 <= bytes.count {
        let len = Int(bytes.u16(at: i))
        guard len >= 4, i + len <= bytes.count else { break }
        out.append((bytes.u16(at: i + 2) & 0x3fff, Array(bytes[(i + 4)..<(i + len)])))
        i += (len + 3) & ~3
    }
    return out
}

func cString(_ data: [UInt8]) -> String {
    String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)
}

/// One received netlink message.
struct NetlinkReply {
    var type: UInt16
    var flags: UInt16
    var seq: UInt32
    var payload: [UInt8]

    /// For NLMSG_ERROR: the (positive) errno, 0 for an ack, and the kernel's
    /// extended-ack text if it sent one.
    var error: (errno: Int32, message: String?) {
        guard payload.count >= 4 else { return (EPROTO, nil) }
        let code = -payload.s32(at: 0)
        var message: String? = nil
        if flags & RTNL.NLM_F_ACK_TLVS != 0, payload.count >= 20 {
            // The echoed request: its header only when capped, else all of it.
            let echoed = flags & RTNL.NLM_F_CAPPED != 0 ? 16 : Int(payload.u32(at: 4))
            for a in netlinkAttributes(payload, from: 4 + ((echoed + 3) & ~3)) where a.type == RTNL.NLMSGERR_ATTR_MSG {
                message = cString(a.data)
            }
        }
        return (code, message)
    }
}

/// A link as RTM_GETLINK reports it.
struct LinkInfo: Sendable, Equatable {
    var index: Int32
    var name: String
    var flags: UInt32
    var alias: String?
    var kind: String?
    var master: Int32?
    /// IFLA_ADDRESS: the hardware address.
    var hardwareAddress: [UInt8]?
    var isUp: Bool { flags & RTNL.IFF_UP != 0 }

    init(index: Int32, name: String, flags: UInt32, alias: String?, kind: String?, master: Int32?) {
        self.index = index; self.name = name; self.flags = flags; self.alias = alias; self.kind = kind; self.master = master
    }

    /// Parses an RTM_NEWLINK payload (struct ifinfomsg + attributes).
    init?(payload: [UInt8]) {
        guard payload.count >= 16 else { return nil }
        index = payload.s32(at: 4)
        flags = payload.u32(at: 8)
        name = ""
        for a in netlinkAttributes(payload, from: 16) {
            switch a.type {
            case RTNL.IFLA_IFNAME: name = cString(a.data)
            case RTNL.IFLA_IFALIAS: alias = cString(a.data)
            case RTNL.IFLA_MASTER where a.data.count >= 4: master = a.data.s32(at: 0)
            case RTNL.IFLA_ADDRESS: hardwareAddress = a.data
            case RTNL.IFLA_LINKINFO:
                for i in netlinkAttributes(a.data, from: 0) where i.type == RTNL.IFLA_INFO_KIND { kind = cString(i.data) }
            default: break
            }
        }
    }
}

/// An rtnetlink socket (or, `family:`, another netlink family's) in the network
/// namespace of the thread that opened it (the namespace is fixed when the socket is
/// created, whichever thread uses it later).
/// One request at a time: send, then read until the kernel's ack for that sequence
/// number; an NLMSG_ERROR becomes a KernelError with the kernel's own message.
final class RouteSocket {
    let fd: Int32
    private var seq: UInt32 = 0

    init(family: Int32 = 0 /* NETLINK_ROUTE */) throws(KernelError) {
        let r = sbx_net_netlink_open(family)
        guard r >= 0 else {
            throw KernelError(operation: "socket", subject: family == 0 ? "NETLINK_ROUTE" : "netlink family \(family)", errno: -r)
        }
        fd = r
        seq = UInt32.random(in: 1...0xffff)
    }

    deinit { Glibc.close(fd) }

    /// The next sequence number (each request's own, so stale answers are told apart).
    func nextSeq() -> UInt32 {
        seq &+= 1
        return seq
    }

    /// A dump (NLM_F_DUMP) taken again while the kernel reports it interrupted by a
    /// change, up to `attempts` times; then the EINTR error: never a partial answer.
    func dumpConsistently(_ message: NetlinkMessage, subject: String, attempts: Int = 16) throws(KernelError) -> [NetlinkReply] {
        var attempt = 1
        while true {
            do { return try request(message, subject: subject) } catch where error.errno?.rawValue == EINTR && attempt < attempts {
                attempt += 1
            }
        }
    }

    /// Sends `message` with NLM_F_REQUEST|NLM_F_ACK and returns the replies that came
    /// before the ack (e.g. the RTM_NEWLINK answering an RTM_GETLINK). A dump the
    /// kernel marks interrupted (NLM_F_DUMP_INTR) is an EINTR error.
    @discardableResult
    func request(_ message: NetlinkMessage, subject: String) throws(KernelError) -> [NetlinkReply] {
        let seq = nextSeq()
        var m = message
        m.flags |= RTNL.NLM_F_REQUEST | RTNL.NLM_F_ACK
        let bytes = m.encoded(seq: seq)
        let operation = "netlink " + RTNL.name(message.type)
        let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == bytes.count else { throw KernelError.last(operation, subject) }

        var replies: [NetlinkReply] = []
        var interrupted = false
        try receive(operation: operation, subject: subject) { reply throws(KernelError) -> Bool in
            guard reply.seq == seq else { return false } // a stale answer to an earlier request
            if reply.flags & RTNL.NLM_F_DUMP_INTR != 0 { interrupted = true }
            if reply.type == RTNL.NLMSG_ERROR {
                let (code, text) = reply.error
                if code == 0 { return true }
                throw KernelError(operation: operation, subject: subject, errno: code, detail: text)
            }
            if reply.type == RTNL.NLMSG_DONE {
                // A dump that failed part-way ends with its errno here.
                if reply.payload.count >= 4, reply.payload.s32(at: 0) < 0 {
                    throw KernelError(operation: operation, subject: subject, errno: -reply.payload.s32(at: 0), detail: "the dump ended early")
                }
                // What changed while it was dumped may be missing or twice in it
                // (red team, session 31: host addresses lost under churn).
                if interrupted {
                    throw KernelError(operation: operation, subject: subject, errno: EINTR,
                                      detail: "the dump was interrupted by a change (NLM_F_DUMP_INTR)")
                }
                return true
            }
            replies.append(reply)
            return false
        }
        return replies
    }

    /// Reads messages from the socket and hands each to `handle` until it says the
    /// exchange is over (true). With `timeoutMs`, ETIMEDOUT when nothing more came
    /// within that long of the call.
    func receive(operation: String, subject: String, timeoutMs: Int32? = nil,
                 _ handle: (NetlinkReply) throws(KernelError) -> Bool) throws(KernelError) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = timeoutMs.map { Clock.monotonicMs() + UInt64($0) }
        while true {
            if let deadline {
                let now = Clock.monotonicMs()
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let r = now >= deadline ? 0 : poll(&p, 1, Int32(deadline - now))
                if r < 0 && Glibc.errno == EINTR { continue }
                if r <= 0 {
                    throw KernelError(operation: operation + " (receive)", subject: subject, errno: r == 0 ? ETIMEDOUT : Glibc.errno,
                                      detail: r == 0 ? "no answer from the kernel within \(timeoutMs ?? 0) ms" : nil)
                }
            }
            let n = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                throw KernelError.last(operation + " (receive)", subject)
            }
            var i = 0
            while i + 16 <= n {
                let len = Int(buffer.u32(at: i))
                guard len >= 16, i + len <= n else { break }
                let reply = NetlinkReply(type: buffer.u16(at: i + 4), flags: buffer.u16(at: i + 6),
                                         seq: buffer.u32(at: i + 8), payload: Array(buffer[(i + 16)..<(i + len)]))
                i += (len + 3) & ~3
                if try handle(reply) { return }
            }
        }
    }
}
