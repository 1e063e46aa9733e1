import CSandbox
import Glibc

/// A network namespace made ahead for one egress run, with everything that does not
/// depend on the run already done: the ruleset loaded (its table, its policy drop,
/// its empty refusal sets), the refusal sets' reader opened, an address leased on the
/// bridge subnet with its veth pair (the peer `eth0` inside, addressed and up, the
/// default route through the bridge; the host end down, unattached and unmarked), `lo`
/// up. What the run adds at set-up is its own: the lease in its run directory and the
/// host end marked with its run id, attached to the bridge and up
/// (Docs/network.md, "Made ahead under serve").
///
/// Why: loading the ruleset is libnftables' parse and one transaction (about 1.9 ms),
/// creating the veth pair about 0.9 ms, the inside's address and route a thread and
/// a few round trips: most of what egress adds to a run under `sandbox serve`, where
/// the next egress run's ruleset is known (the last one's). A server makes a few while
/// it waits (`EgressNamespacePool`) and hands one to the spawner with the run's spec
/// (`ChildSpec.preparedNetworkNamespace`).
///
/// Nothing of one run reaches another: a prepared namespace is given to one run only,
/// has never held a process before that run's init, and is closed with it. Its ruleset
/// is the plan's text exactly (`ruleset`), and `EgressNetwork.setUp` relies on what
/// was prepared only when the init is in this very namespace (`holds(_:)`);
/// otherwise it sets the init's own up from the start. Until a run takes it, its
/// host veth has no mark and no master: `gc` never counts it as a run's, and if the
/// server dies the kernel removes the pair with the namespace.
public final class PreparedNamespace: @unchecked Sendable { // immutable but for the taken reader
    /// The host side made ahead: on which bridge, the leased address and the host end.
    public struct Link: Sendable {
        public let bridge: BridgeConfig
        public let address: IPv4
        public let hostInterface: String
        /// The host end's ifindex, read under the lock that created it: what the run
        /// attaches, never the name alone (red team, session 32: if the unmarked end
        /// were deleted meanwhile, another run's veth could carry the name).
        let index: Int32
    }

    /// The nft ruleset loaded inside, as the planner wrote it.
    public let ruleset: String
    public let link: Link
    /// The namespace (O_CLOEXEC); closed with this object.
    public let netns: OwnedFD
    private let identity: (dev: UInt64, ino: UInt64)
    private var reader: RefusalSets?

    /// Makes a namespace and prepares it for `bridge`. Owned by the caller's user
    /// namespace (the server's: the initial one, as the spawner's made-ahead ones are).
    /// A failure leaves nothing (the veth goes with the namespace, and is deleted).
    public static func make(ruleset: String, bridge config: BridgeConfig = .standard) throws(KernelError) -> PreparedNamespace {
        guard !ruleset.trimmed.isEmpty else {
            throw KernelError(operation: "egress", subject: "prepared namespace", errno: EINVAL, detail: "no nft ruleset")
        }
        let bridge = try Bridge(config)
        let netns = OwnedFD(try Netns.create())
        guard let identity = Self.identity(of: netns.raw) else {
            throw KernelError(operation: "fstat", subject: "network namespace", errno: errno)
        }
        var undo: [() -> Void] = []
        do {
            // The firewall first, as at any set-up: policy drop holds before any
            // interface inside is up.
            let reader = try Netns.run(in: netns.raw) { () throws -> RefusalSets in
                try EgressNetwork.loadFirewall(ruleset)
                return try RefusalSets()
            }
            let rtnl = try RouteSocket()
            let (address, name): (IPv4, String)
            let index: Int32
            do {
                let lock = try HostLock(bridge)
                defer { lock.release() }
                var state = HostState.read(bridge.statePath)
                (address, name) = try EgressNetwork.createVethUnderLock(bridge: bridge, state: &state, netns: netns.raw,
                                                                        rtnl: rtnl, undo: &undo)
                guard let made = try rtnl.link(named: name) else {
                    throw KernelError(operation: "netlink RTM_GETLINK", subject: name, errno: ENODEV)
                }
                index = made.index
                try state.write(bridge.statePath)
            }
            let (prefix, gateway) = (bridge.prefixLength, bridge.gateway)
            try Netns.run(in: netns.raw) {
                try EgressNetwork.configureLink(address: address, prefixLength: prefix, gateway: gateway)
            }
            return PreparedNamespace(ruleset: ruleset, link: Link(bridge: config, address: address, hostInterface: name, index: index),
                                     netns: netns, identity: identity, reader: reader)
        } catch {
            while let step = undo.popLast() { step() }
            if let e = error as? KernelError { throw e }
            throw KernelError(operation: "egress", subject: "prepared namespace", errno: EIO, detail: "\(error)")
        }
    }

    private init(ruleset: String, link: Link, netns: OwnedFD, identity: (dev: UInt64, ino: UInt64), reader: RefusalSets) {
        self.ruleset = ruleset; self.link = link; self.netns = netns; self.identity = identity; self.reader = reader
    }

    /// Whether `fd` (e.g. the init's namespace, from its pidfd) is this namespace.
    public func holds(_ fd: Int32) -> Bool {
        guard let other = Self.identity(of: fd) else { return false }
        return other.dev == identity.dev && other.ino == identity.ino
    }

    /// The refusal sets' reader, once (the run's `EgressNetwork` owns it then).
    func takeReader() -> RefusalSets? {
        defer { reader = nil }
        return reader
    }

    /// Closes the namespace's descriptor (the namespace lives on while a process is
    /// in it). Idempotent; also on deinit.
    public func close() {
        reader = nil
        netns.close()
    }

    private static func identity(of fd: Int32) -> (dev: UInt64, ino: UInt64)? {
        var st = stat()
        guard fd >= 0, fstat(fd, &st) == 0 else { return nil }
        return (UInt64(st.st_dev), UInt64(st.st_ino))
    }
}
