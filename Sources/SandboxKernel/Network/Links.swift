import Glibc

/// The rtnetlink requests the egress facility makes, one message each. The message
/// builders are separate (static, pure) so tests compare them with golden bytes.
extension RouteSocket {
    /// The link called `name`, or nil when there is none (ENODEV).
    func link(named name: String) throws(KernelError) -> LinkInfo? {
        do {
            let replies = try request(RouteSocket.getLinkMessage(name: name), subject: name)
            return replies.first { $0.type == RTNL.RTM_NEWLINK }.flatMap { LinkInfo(payload: $0.payload) }
        } catch where error.errno?.rawValue == ENODEV {
            return nil
        }
    }

    /// Every link of the namespace (one RTM_GETLINK dump).
    func links() throws(KernelError) -> [LinkInfo] {
        var m = NetlinkMessage(type: RTNL.RTM_GETLINK, flags: RTNL.NLM_F_DUMP)
        m.ifinfomsg()
        return try dumpConsistently(m, subject: "every link").compactMap {
            $0.type == RTNL.RTM_NEWLINK ? LinkInfo(payload: $0.payload) : nil
        }
    }

    /// nf_tables' ruleset generation in this socket's namespace (NETLINK_NETFILTER
    /// sockets only): it changes with every committed change of any table there, so an
    /// unchanged value means a ruleset checked before is still as it was.
    func nftGeneration() throws(KernelError) -> UInt32 {
        var m = NetlinkMessage(type: NFTables.NFT_MSG_GETGEN, flags: 0)
        m.raw([RTNL.AF_UNSPEC, 0, 0, 0]) // struct nfgenmsg { family, version, res_id (be16) }
        for reply in try request(m, subject: "nf_tables generation") where reply.type == NFTables.NFT_MSG_NEWGEN {
            for a in netlinkAttributes(reply.payload, from: 4) where a.type == NFTables.NFTA_GEN_ID && a.data.count == 4 {
                return UInt32(a.data[0]) << 24 | UInt32(a.data[1]) << 16 | UInt32(a.data[2]) << 8 | UInt32(a.data[3])
            }
        }
        throw KernelError(operation: "netlink NFT_MSG_GETGEN", subject: "nf_tables generation", errno: EPROTO, detail: "no NFTA_GEN_ID in the answer")
    }

    func createBridge(name: String, alias: String) throws(KernelError) {
        try request(RouteSocket.newBridgeMessage(name: name), subject: name)
        // rtnl_newlink ignores IFLA_IFALIAS when it creates a link; it is set after.
        guard let link = try link(named: name) else {
            throw KernelError(operation: "netlink RTM_GETLINK", subject: name, errno: ENODEV, detail: "the bridge vanished after creation")
        }
        try setLink(index: link.index, name: name, up: nil, alias: alias, master: nil)
    }

    /// The veth pair: `name` here, down, unowned until `setLink` marks it; its peer
    /// created directly inside the namespace `netnsFD` as `peerName` (one message, so
    /// the peer never exists in the host namespace).
    func createVeth(name: String, peerName: String, peerNetnsFD: Int32) throws(KernelError) {
        try request(RouteSocket.newVethMessage(name: name, peerName: peerName, peerNetnsFD: peerNetnsFD), subject: name)
    }

    /// RTM_NEWLINK on an existing link: up/down, alias and master in one message.
    func setLink(index: Int32, name: String, up: Bool?, alias: String?, master: Int32?) throws(KernelError) {
        try request(RouteSocket.setLinkMessage(index: index, up: up, alias: alias, master: master), subject: name)
    }

    /// The same for the link of that name (no RTM_GETLINK first for its index: the
    /// kernel looks the name up when the index is 0).
    func setLink(named name: String, up: Bool?, alias: String?, master: Int32?) throws(KernelError) {
        try request(RouteSocket.setLinkMessage(index: 0, up: up, alias: alias, master: master, name: name), subject: name)
    }

    /// Sets the link's hardware address. A bridge with an address of its own keeps
    /// it; without one it takes the lowest address of its ports, and every time such
    /// a port goes away, each live sandbox's cached gateway address points nowhere.
    func setHardwareAddress(index: Int32, name: String, _ mac: [UInt8]) throws(KernelError) {
        var m = NetlinkMessage(type: RTNL.RTM_NEWLINK, flags: 0)
        m.ifinfomsg(index: index)
        m.attribute(RTNL.IFLA_ADDRESS, mac)
        try request(m, subject: name)
    }

    /// Deletes the link with this index. ENODEV counts as done (the link went with
    /// its namespace, or an earlier teardown).
    func deleteLink(index: Int32, name: String) throws(KernelError) {
        var m = NetlinkMessage(type: RTNL.RTM_DELLINK, flags: 0)
        m.ifinfomsg(index: index)
        do { try request(m, subject: name) } catch where error.errno?.rawValue == ENODEV {}
    }

    /// Adds `address/prefix` to the link, or leaves it as it is when present
    /// (NLM_F_CREATE|NLM_F_REPLACE).
    func addAddress(index: Int32, name: String, address: IPv4, prefixLength: Int) throws(KernelError) {
        try request(RouteSocket.newAddressMessage(index: index, address: address, prefixLength: prefixLength),
                    subject: "\(address)/\(prefixLength) on \(name)")
    }

    func addDefaultRoute(gateway: IPv4, index: Int32, name: String) throws(KernelError) {
        try request(RouteSocket.defaultRouteMessage(gateway: gateway, index: index), subject: "default via \(gateway) dev \(name)")
    }

    // MARK: - Messages

    static func getLinkMessage(name: String) -> NetlinkMessage {
        var m = NetlinkMessage(type: RTNL.RTM_GETLINK, flags: 0)
        m.ifinfomsg()
        m.attribute(RTNL.IFLA_IFNAME, string: name)
        return m
    }

    static func newBridgeMessage(name: String) -> NetlinkMessage {
        var m = NetlinkMessage(type: RTNL.RTM_NEWLINK, flags: RTNL.NLM_F_CREATE | RTNL.NLM_F_EXCL)
        m.ifinfomsg()
        m.attribute(RTNL.IFLA_IFNAME, string: name)
        m.nested(RTNL.IFLA_LINKINFO) { $0.attribute(RTNL.IFLA_INFO_KIND, string: "bridge") }
        return m
    }

    static func newVethMessage(name: String, peerName: String, peerNetnsFD: Int32) -> NetlinkMessage {
        var m = NetlinkMessage(type: RTNL.RTM_NEWLINK, flags: RTNL.NLM_F_CREATE | RTNL.NLM_F_EXCL)
        m.ifinfomsg()
        m.attribute(RTNL.IFLA_IFNAME, string: name)
        m.nested(RTNL.IFLA_LINKINFO) { info in
            info.attribute(RTNL.IFLA_INFO_KIND, string: "veth")
            info.nested(RTNL.IFLA_INFO_DATA) { data in
                // VETH_INFO_PEER carries a struct ifinfomsg, then the peer's attributes.
                data.nested(RTNL.VETH_INFO_PEER) { peer in
                    peer.raw(NetlinkMessage.ifinfomsgBytes())
                    peer.attribute(RTNL.IFLA_IFNAME, string: peerName)
                    peer.attribute(RTNL.IFLA_NET_NS_FD, s32: peerNetnsFD)
                }
            }
        }
        return m
    }

    static func setLinkMessage(index: Int32, up: Bool?, alias: String?, master: Int32?, name: String? = nil) -> NetlinkMessage {
        var m = NetlinkMessage(type: RTNL.RTM_NEWLINK, flags: 0)
        m.ifinfomsg(index: index, flags: up == true ? RTNL.IFF_UP : 0, change: up == nil ? 0 : RTNL.IFF_UP)
        if let name { m.attribute(RTNL.IFLA_IFNAME, string: name) }
        if let alias { m.attribute(RTNL.IFLA_IFALIAS, Array(alias.utf8)) }
        if let master { m.attribute(RTNL.IFLA_MASTER, s32: master) }
        return m
    }

    static func newAddressMessage(index: Int32, address: IPv4, prefixLength: Int) -> NetlinkMessage {
        var m = NetlinkMessage(type: RTNL.RTM_NEWADDR, flags: RTNL.NLM_F_CREATE | RTNL.NLM_F_REPLACE)
        m.ifaddrmsg(prefixLength: UInt8(prefixLength), index: index)
        m.attribute(RTNL.IFA_LOCAL, address.bytes)
        m.attribute(RTNL.IFA_ADDRESS, address.bytes)
        return m
    }

    static func defaultRouteMessage(gateway: IPv4, index: Int32) -> NetlinkMessage {
        var m = NetlinkMessage(type: RTNL.RTM_NEWROUTE, flags: RTNL.NLM_F_CREATE | RTNL.NLM_F_REPLACE)
        m.rtmsg(dstLength: 0)
        m.attribute(RTNL.RTA_GATEWAY, gateway.bytes)
        m.attribute(RTNL.RTA_OIF, s32: index)
        return m
    }
}
