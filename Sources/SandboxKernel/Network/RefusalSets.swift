import Glibc
import SandboxVocabulary

/// The refusal sets of a run's `table inet sandbox` (`EgressRefusal.sets`), read
/// straight from nf_tables: one NFT_MSG_GETSETELEM dump per set on a netfilter netlink
/// socket opened inside the run's namespace when it was set up.
///
/// Why not libnftables (`nft -j list table`, as before): a listing fetches the whole
/// table first (its chains, every rule, every set), renders it as JSON text, and that
/// text has to be read back — about a quarter of the server's CPU for an egress run
/// under `sandbox serve` (issue 16). The dump returns only the elements, each a key
/// and its counter, in the kernel's own layout (<linux/netfilter/nf_tables.h>).
struct RefusalSets {
    // The numbers it speaks: `NFTables`.

    /// NETLINK_NETFILTER, in the namespace of the thread that makes it (the run's).
    private let socket: RouteSocket

    /// Call on a thread inside the run's namespace.
    init() throws(KernelError) { socket = try RouteSocket(family: RTNL.NETLINK_NETFILTER) }

    /// Every element of every refusal set of `table`, in no particular order; a set
    /// the table does not have contributes nothing.
    func read(table: String = NftRunTable.name) throws(KernelError) -> [DeniedDestination] {
        var out: [DeniedDestination] = []
        for reason in EgressRefusal.allCases {
            for (set, v6) in [(reason.sets.v4, false), (reason.sets.v6, true)] {
                let replies: [NetlinkReply]
                do {
                    replies = try socket.dumpConsistently(Self.request(table: table, set: set), subject: "\(NftRunTable.family) \(table) \(set)")
                } catch where error.errno?.rawValue == ENOENT {
                    continue   // a ruleset without this set
                }
                for reply in replies where reply.type == NFTables.NFT_MSG_NEWSETELEM {
                    out += Self.elements(reply.payload, v6: v6, reason: reason)
                }
            }
        }
        return out
    }

    /// GETSETELEM, a dump of one set's elements.
    static func request(table: String, set: String) -> NetlinkMessage {
        var m = NetlinkMessage(type: NFTables.NFT_MSG_GETSETELEM, flags: RTNL.NLM_F_DUMP)
        m.raw([NFTables.NFPROTO_INET, NFTables.NFNETLINK_V0, 0, 0])
        m.attribute(NFTables.NFTA_SET_ELEM_LIST_TABLE, string: table)
        m.attribute(NFTables.NFTA_SET_ELEM_LIST_SET, string: set)
        return m
    }

    /// The elements of one NEWSETELEM message (nfgenmsg, then the list). A key is
    /// `daddr . l4proto . dport`, each field in a 32-bit register of its own:
    /// the address (4 or 16 bytes), the protocol in the first byte of the next four,
    /// the port (network order) in the first two of the last four. An element whose
    /// key has another length is not one of ours and is skipped.
    static func elements(_ payload: [UInt8], v6: Bool, reason: EgressRefusal) -> [DeniedDestination] {
        let addressBytes = v6 ? 16 : 4
        var out: [DeniedDestination] = []
        for list in netlinkAttributes(payload, from: 4) where list.type == NFTables.NFTA_SET_ELEM_LIST_ELEMENTS {
            for element in netlinkAttributes(list.data, from: 0) where element.type == NFTables.NFTA_LIST_ELEM {
                var key: [UInt8]? = nil
                var packets: UInt64 = 0
                for a in netlinkAttributes(element.data, from: 0) {
                    switch a.type {
                    case NFTables.NFTA_SET_ELEM_KEY:
                        key = netlinkAttributes(a.data, from: 0).first { $0.type == NFTables.NFTA_DATA_VALUE }?.data
                    case NFTables.NFTA_SET_ELEM_EXPR:
                        packets = saturatingSum(packets, counterPackets(a.data))
                    case NFTables.NFTA_SET_ELEM_EXPRESSIONS:
                        for e in netlinkAttributes(a.data, from: 0) where e.type == NFTables.NFTA_LIST_ELEM {
                            packets = saturatingSum(packets, counterPackets(e.data))
                        }
                    default: break
                    }
                }
                guard let key, key.count == addressBytes + 8 else { continue }
                let proto = key[addressBytes]
                let port = UInt16(key[addressBytes + 4]) << 8 | UInt16(key[addressBytes + 5])
                guard let daddr = AddressRange.format(Array(key[..<addressBytes])) else { continue }
                out.append(DeniedDestination(daddr: daddr, dport: port, proto: protocolName(proto), packets: packets, reason: reason))
            }
        }
        return out
    }

    static func saturatingSum(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (sum, over) = a.addingReportingOverflow(b)
        return over ? .max : sum
    }

    /// The packets of a `counter` expression (name, then data); 0 for any other.
    static func counterPackets(_ expression: [UInt8]) -> UInt64 {
        let attributes = netlinkAttributes(expression, from: 0)
        guard let name = attributes.first(where: { $0.type == NFTables.NFTA_EXPR_NAME }), cString(name.data) == "counter",
              let data = attributes.first(where: { $0.type == NFTables.NFTA_EXPR_DATA }),
              let p = netlinkAttributes(data.data, from: 0).first(where: { $0.type == NFTables.NFTA_COUNTER_PACKETS }),
              p.data.count == 8 else { return 0 }
        return p.data.reduce(0) { $0 << 8 | UInt64($1) }   // big-endian
    }

    /// As nft prints them: the names of the two protocols the rules record.
    static func protocolName(_ p: UInt8) -> String {
        switch p {
        case UInt8(IPPROTO_TCP): "tcp"
        case UInt8(IPPROTO_UDP): "udp"
        default: String(p)
        }
    }
}
