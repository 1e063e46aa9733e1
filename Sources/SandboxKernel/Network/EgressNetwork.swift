import FoundationEssentials
import Glibc
import SandboxVocabulary

/// What `EgressNetwork.setUp` needs from the plan (`plan.network`) and the run.
public struct EgressConfig: Sendable {
    public var runId: String
    /// The run directory (`/run/sandbox/<run-id>`): the lease is kept there.
    public var runDir: String
    /// The nft ruleset text loaded inside the run's namespace (`plan.network.nftRuleset`).
    public var nftRuleset: String
    /// The shared host side; `.standard` unless an installation or a test says otherwise.
    public var bridge: BridgeConfig
    /// The namespace to set up (the sandbox init's own, from its pidfd); nil: a fresh
    /// one is made. Duplicated, not taken.
    public var netnsFD: Int32? = nil
    /// The DNS stub to serve inside the namespace (`plan.network.stub`); nil: none.
    public var stub: DNSStubConfig? = nil
    /// A namespace prepared ahead (a server's `PreparedNamespace`). When `netnsFD`
    /// is that very namespace, its firewall and lo are not set up again, and its
    /// ruleset must be `nftRuleset` (else set-up fails: never one loaded on top of
    /// another). When `netnsFD` is another namespace, it is ignored.
    public var prepared: PreparedNamespace? = nil

    public init(runId: String, runDir: String, nftRuleset: String, bridge: BridgeConfig = .standard) {
        self.runId = runId; self.runDir = runDir; self.nftRuleset = nftRuleset; self.bridge = bridge
    }
}

/// A destination the sandbox tried and the egress firewall denied, read from the
/// sets of its ruleset (Docs/design.md §5), with the packet count and why: the set it
/// was recorded in (`EgressRefusal.sets`).
public struct DeniedDestination: Codable, Sendable, Equatable, Hashable {
    public var daddr: String
    public var dport: UInt16
    public var proto: String
    public var packets: UInt64
    public var reason: EgressRefusal

    public init(daddr: String, dport: UInt16, proto: String, packets: UInt64, reason: EgressRefusal = .notAllowed) {
        self.daddr = daddr; self.dport = dport; self.proto = proto; self.packets = packets; self.reason = reason
    }
}

/// The network of one egress run (Docs/design.md §4 step 3, §5): its own network
/// namespace, held by fd; a veth pair whose host end (`sbx<hash>`, marked
/// `sandbox:<run-id>`) is a port of the shared bridge and whose peer is `eth0`
/// inside; an address leased from the bridge subnet; the run's nft ruleset loaded
/// inside, before any interface is up. The namespace is the sandbox init's own
/// (`EgressConfig.netnsFD`), set up before the init goes on; the command, without
/// CAP_NET_ADMIN and without netlink sockets, cannot change any of it. (resolv.conf
/// and hosts are written by the child itself: `file` mount steps.)
///
/// Set-up registers an undo for every step before taking the next, so a failure
/// leaves nothing. `tearDown()` is idempotent. `removeLeftovers` is for `gc`.
public final class EgressNetwork {
    public let runId: String
    public let runDir: String
    /// The host end of the veth pair (`sbx` + the run's address in 8 hex digits).
    public let hostInterface: String
    /// The peer's name inside the namespace.
    public let peerInterface = "eth0"
    /// The sandbox's address, e.g. 10.203.0.7.
    public let address: String
    /// Its default gateway: the bridge's address.
    public let gateway: String
    public let prefixLength: Int
    /// How long `setUp` took, in microseconds.
    public let setUpMicroseconds: UInt64

    /// The run's network namespace (a duplicate, for reading the denied sets after
    /// the run). Owned here: closed by `tearDown`; -1 after.
    public var netnsFD: Int32 { netns.raw }
    private let netns: OwnedFD
    /// The run's resolver when its policy names hosts (Docs/network.md, "Names").
    private let stub: DNSStub?
    /// The server name check of the host rules' TCP flows (with the stub).
    private let serverNames: ServerNameCheck?
    /// The refusal sets' reader, its socket made inside the namespace at set-up (so
    /// reading them after the run needs no thread to enter it). Dropped by `tearDown`.
    private var refusalSets: RefusalSets?

    private var tornDown = false

    private init(config: EgressConfig, hostInterface: String, address: IPv4, bridge: Bridge,
                 netns: OwnedFD, refusalSets: RefusalSets, stub: DNSStub?, serverNames: ServerNameCheck?,
                 setUpMicroseconds: UInt64) {
        runId = config.runId; runDir = config.runDir; self.stub = stub; self.serverNames = serverNames
        self.refusalSets = refusalSets
        self.hostInterface = hostInterface
        self.address = address.description; gateway = bridge.gateway.description; prefixLength = bridge.prefixLength
        self.netns = netns; self.setUpMicroseconds = setUpMicroseconds
    }

    deinit { tearDown() }

    // MARK: - Names

    /// `sbx` + the run's address in 8 hex digits (11 bytes; IFNAMSIZ is 16 with the
    /// NUL). Named after the address, the host end is the address's lock: the kernel
    /// keeps link names unique, so while a veth exists — a live run's, or a finished
    /// run's the kernel has not yet removed with its namespace — no other run can
    /// create one for the same address (EEXIST).
    public static func interfaceName(address: IPv4) -> String {
        let hex = String(address.value, radix: 16)
        return "sbx" + String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// The address an `interfaceName(address:)` name stands for; nil for any other name.
    static func address(ofInterface name: String) -> IPv4? {
        guard name.utf8.count == 11, name.hasPrefix("sbx"),
              name.dropFirst(3).allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { return nil }
        return UInt32(name.dropFirst(3), radix: 16).map(IPv4.init)
    }

    /// The IFLA_IFALIAS of a run's host veth: what `gc` checks before deleting, so
    /// it never touches another tool's (or another run's) link.
    public static func ownershipMark(runId: String) -> String { "sandbox:" + runId }

    /// The run id in a host veth's ownership mark; nil for the bridge's mark and for
    /// anything that is not a mark.
    static func runId(ofMark alias: String?) -> String? {
        guard let alias, alias.hasPrefix("sandbox:") else { return nil }
        let id = String(alias.dropFirst("sandbox:".count))
        return RunID.isValid(id) ? id : nil
    }

    /// `inet sandbox`: the run's own table, as the planner wrote it into the ruleset.
    static let runTable = "\(NftRunTable.family) \(NftRunTable.name)"

    // MARK: - Set-up

    public static func setUp(_ config: EgressConfig) throws -> EgressNetwork {
        let started = Clock.monotonicUs()
        let bridge = try Bridge(config.bridge)
        guard RunID.isValid(config.runId) else {
            throw KernelError(operation: "egress", subject: "run id \"\(config.runId)\"", errno: EINVAL,
                              detail: "a run id is \(RunID.rule)")
        }
        guard config.runDir.hasPrefix("/") else {
            throw KernelError(operation: "egress", subject: config.runDir, errno: EINVAL, detail: "the run directory must be absolute")
        }
        // Fail closed: an egress network without its firewall is never set up.
        guard !config.nftRuleset.trimmed.isEmpty else {
            throw KernelError(operation: "egress", subject: "run \(config.runId)", errno: EINVAL, detail: "the plan has no nft ruleset")
        }
        let mark = ownershipMark(runId: config.runId)

        var undo: [() -> Void] = []
        do {
            // 1. The namespace, as an fd, before anything refers to it.
            let netnsOwner: OwnedFD
            if let given = config.netnsFD {
                netnsOwner = try Netns.duplicate(given)
            } else {
                netnsOwner = OwnedFD(try Netns.create())
            }
            undo.append { netnsOwner.close() }
            let netns = netnsOwner.raw
            // A namespace prepared for this ruleset and bridge (`PreparedNamespace`):
            // its firewall, lo, veth pair, address and route are in place, and its
            // refusal sets' reader is made.
            var ready: (sets: RefusalSets, link: PreparedNamespace.Link)? = nil
            if let prepared = config.prepared, prepared.holds(netns) {
                // Never another ruleset loaded on top of the prepared one: the two
                // would merge into one table, the union of both allow lists.
                guard prepared.ruleset == config.nftRuleset, prepared.link.bridge == config.bridge,
                      let sets = prepared.takeReader() else {
                    throw KernelError(operation: "egress", subject: "run \(config.runId)", errno: EINVAL,
                                      detail: "the run's namespace was prepared for another ruleset or bridge, or was given to another run")
                }
                ready = (sets, prepared.link)
            }

            let rtnl = try RouteSocket()
            let address: IPv4, name: String, refusalSets: RefusalSets
            if let ready {
                // 2. Shared host state, under the host lock: the bridge, the lease,
                // the prepared veth made a marked port of the bridge.
                try attachPrepared(ready.link, config: config, bridge: bridge, mark: mark, rtnl: rtnl, undo: &undo)
                (address, name, refusalSets) = (ready.link.address, ready.link.hostInterface, ready.sets)
            } else {
                // 2. Shared host state, under the host lock from the first look at the
                // bridge to the moment our veth is a port of it with its lease on disk.
                (address, name) = try attachUnderLock(config: config, bridge: bridge, mark: mark,
                                                      netns: netns, rtnl: rtnl, undo: &undo)
                // 3. Inside: the firewall first — policy drop holds before any
                // interface inside is up — then lo, the address, eth0 up, the route.
                let ruleset = config.nftRuleset
                let prefix = bridge.prefixLength
                let gw = bridge.gateway
                refusalSets = try Netns.run(in: netns) {
                    try loadFirewall(ruleset)
                    try configureLink(address: address, prefixLength: prefix, gateway: gw)
                    return try RefusalSets()
                }
            }
            // 4. The DNS stub on the namespace's lo (up now), before the command runs.
            let stub = try config.stub.map { try DNSStub.start($0, netnsFD: netns) }
            undo.append { stub?.stop() }
            // 5. The server name check, when a host rule opens TCP ports: its queue
            // rule and reader, before the command runs (until then the ruleset drops
            // what would be queued). The queue is numbered after the run's address.
            var serverNames: ServerNameCheck? = nil
            if let stub, config.stub?.names.contains(where: { !$0.tcpPorts.isEmpty }) == true {
                serverNames = try ServerNameCheck.start(queue: UInt16(truncatingIfNeeded: address.value), netnsFD: netns, stub: stub)
            }
            undo.append { serverNames?.stop() }

            return EgressNetwork(config: config, hostInterface: name, address: address,
                                 bridge: bridge, netns: netnsOwner, refusalSets: refusalSets,
                                 stub: stub, serverNames: serverNames,
                                 setUpMicroseconds: Clock.monotonicUs() - started)
        } catch {
            while let step = undo.popLast() { step() }
            throw error
        }
    }

    /// Ensures the host side, leases an address and creates the veth pair attached to
    /// the bridge — all under the host lock, released on return whatever happens.
    private static func attachUnderLock(config: EgressConfig, bridge: Bridge, mark: String, netns: Int32,
                                        rtnl: RouteSocket, undo: inout [() -> Void]) throws -> (IPv4, String) {
        let lock = try HostLock(bridge)
        defer { lock.release() }
        var state = HostState.read(bridge.statePath)
        let bridgeIndex = try bridge.ensureHostState(rtnl, state: &state)
        let (address, name) = try createVethUnderLock(bridge: bridge, state: &state, netns: netns, rtnl: rtnl, undo: &undo)
        let runDir = config.runDir
        undo.append { Lease.release(runDir: runDir) }
        try Lease(address: address, bridge: bridge.name, veth: name).write(runDir: runDir)
        try state.write(bridge.statePath)
        // Mark, attach, up — one message (rtnl_newlink ignores the alias on create),
        // by name: created EXCL under the lock, the link of this name is ours.
        try rtnl.setLink(named: name, up: true, alias: mark, master: bridgeIndex)
        return (address, name)
    }

    /// A prepared namespace's veth, made a port of the bridge for this run: the host
    /// side ensured, the lease written (what `gc` reads if the run dies), the host end
    /// marked, attached and up. Under the host lock.
    private static func attachPrepared(_ link: PreparedNamespace.Link, config: EgressConfig, bridge: Bridge, mark: String,
                                       rtnl: RouteSocket, undo: inout [() -> Void]) throws {
        let lock = try HostLock(bridge)
        defer { lock.release() }
        let before = HostState.read(bridge.statePath)
        var state = before
        let bridgeIndex = try bridge.ensureHostState(rtnl, state: &state)
        // Still the link the server made: same name and index, unmarked, no master.
        // By index from here on: a name alone could by now be another run's veth, if
        // this one had been deleted and its address leased again (red team, session 32).
        let name = link.hostInterface, index = link.index
        guard let host = try rtnl.link(named: name), host.index == index, host.alias == nil, host.master == nil else {
            throw KernelError(operation: "egress", subject: name, errno: ENODEV,
                              detail: "the veth prepared for this run is gone or changed (ifindex \(index), unmarked, no master)")
        }
        undo.append { try? rtnl.deleteLink(index: index, name: name) }
        let runDir = config.runDir
        undo.append { Lease.release(runDir: runDir) }
        try Lease(address: link.address, bridge: bridge.name, veth: name).write(runDir: runDir)
        if state != before { try state.write(bridge.statePath) }   // the address was leased ahead
        try rtnl.setLink(index: index, name: name, up: true, alias: mark, master: bridgeIndex)
    }

    /// Leases an address and creates the veth pair for it, the peer born inside
    /// `netns` as eth0 (the host end down, unattached, unmarked). The caller holds the
    /// host lock and writes `state` (the cursor moved on) afterwards.
    static func createVethUnderLock(bridge: Bridge, state: inout HostState, netns: Int32, rtnl: RouteSocket,
                                    undo: inout [() -> Void]) throws -> (IPv4, String) {
        // The address, from the cursor on: the first whose host veth name can be
        // created. The pair in one message: the peer is born inside the namespace as
        // eth0. NLM_F_EXCL: a link of that name (ours, still alive or not yet removed by
        // the kernel, or anyone's) is never adopted; its address is skipped.
        var taken: Set<UInt32> = [bridge.gateway.value]
        var cursor = state.values["next"].flatMap(IPv4.init)?.value
        var collisions = 0
        var address = IPv4(0), name = ""
        while true {
            guard let a = AddressPool.pick(pool: bridge.pool, inUse: taken, cursor: cursor) else {
                throw KernelError(operation: "lease", subject: bridge.subnet, errno: EADDRNOTAVAIL,
                                   detail: "every address of the bridge subnet has a veth on the host (a live run's, or one the kernel is still removing)")
            }
            address = IPv4(a); name = interfaceName(address: address)
            if try createVeth(rtnl, name: name, netns: netns) { break }
            // EEXIST is the host name's (the namespace is new: eth0 cannot clash);
            // after a few, one dump names every address taken at once.
            taken.insert(a)
            cursor = a == bridge.pool.upperBound ? bridge.pool.lowerBound : a + 1
            collisions += 1
            if collisions == 4 {
                for link in try rtnl.links() { if let t = EgressNetwork.address(ofInterface: link.name) { taken.insert(t.value) } }
            }
        }
        let created = name
        undo.append {
            // Created EXCL by us under the lock: the link of this name is ours.
            if let link = try? rtnl.link(named: created) { try? rtnl.deleteLink(index: link.index, name: created) }
        }
        state.values["next"] = IPv4(address.value == bridge.pool.upperBound ? bridge.pool.lowerBound : address.value + 1).description
        state.values["bridge"] = bridge.name
        state.values["subnet"] = bridge.subnet
        return (address, name)
    }

    /// The veth pair, or false when a link of that name exists.
    private static func createVeth(_ rtnl: RouteSocket, name: String, netns: Int32) throws(KernelError) -> Bool {
        do {
            try rtnl.createVeth(name: name, peerName: "eth0", peerNetnsFD: netns)
            return true
        } catch where error.errno?.rawValue == EEXIST {
            return false
        }
    }

    /// The run's firewall, on a thread inside its namespace, before any interface
    /// there is up.
    static func loadFirewall(_ ruleset: String) throws {
        _ = try Nftables.run(ruleset, operation: "nft load ruleset", subject: runTable)
    }

    /// On a thread inside the namespace, after its firewall: lo up, the address on
    /// eth0, eth0 up, the default route through the bridge.
    static func configureLink(address: IPv4, prefixLength: Int, gateway: IPv4) throws {
        let rtnl = try RouteSocket()
        try rtnl.setLink(named: "lo", up: true, alias: nil, master: nil)
        guard let eth = try rtnl.link(named: "eth0") else { throw KernelError(operation: "netlink RTM_GETLINK", subject: "eth0", errno: ENODEV) }
        try rtnl.addAddress(index: eth.index, name: "eth0", address: address, prefixLength: prefixLength)
        try rtnl.setLink(index: eth.index, name: "eth0", up: true, alias: nil, master: nil)
        try rtnl.addDefaultRoute(gateway: gateway, index: eth.index, name: "eth0")
    }

    // MARK: - Results

    /// The questions the DNS stub refused (none without a stub). Stops the stub: call
    /// when the run is over, before `tearDown`.
    public func dnsRefusals() -> (kinds: [DNSRefusal], dropped: UInt64) {
        guard let stub else { return ([], 0) }
        stub.stop()
        return stub.refusals()
    }

    /// The flows the server name check refused. Stops it: call when the run is over.
    public func serverNameRefusals() -> (kinds: [ServerNameRefusal], dropped: UInt64) {
        guard let serverNames else { return ([], 0) }
        serverNames.stop()
        return serverNames.refusals()
    }

    /// The denied destinations with their packet counts; [] if they cannot be read
    /// (the error is in `readDeniedDestinations`). Call before `tearDown`.
    public func deniedDestinations() -> [DeniedDestination] {
        (try? readDeniedDestinations()) ?? []
    }

    /// The elements of the refusal sets of `table inet sandbox` (`denied4`,
    /// `limit4`…, each with its packet counter), read on the socket made inside the
    /// run's namespace at set-up (`RefusalSets`). A ruleset without one of the sets
    /// contributes nothing.
    public func readDeniedDestinations() throws -> [DeniedDestination] {
        guard let refusalSets else {   // nil once torn down
            throw KernelError(operation: "nft list set", subject: Self.runTable, errno: EBADF, detail: "the run's network is torn down")
        }
        return try refusalSets.read().sorted {
            ($0.proto, $0.daddr, $0.dport, $0.reason.rawValue) < ($1.proto, $1.daddr, $1.dport, $1.reason.rawValue)
        }
    }

    // MARK: - Teardown

    /// Releases the lease and closes the namespace fd. Idempotent.
    ///
    /// The veth is not deleted here: the kernel removes the pair with the namespace,
    /// in a worker of its own, once the namespace's last process and fd are gone (the
    /// run's have, or go with the supervisor). RTM_DELLINK would make the run wait for
    /// that same work — an RCU grace period and the device's last references, 10–30 ms
    /// — and gain nothing: until the kernel is done the link keeps its name, so no
    /// later run can take its address (`interfaceName(address:)`), and nothing is left
    /// in the namespace to use it. A namespace kept alive past the run (an fd of it
    /// passed out of the sandbox) keeps its veth — still behind the run's firewall —
    /// until `sandbox gc` removes it (`removeOrphanLinks`).
    public func tearDown() {
        guard !tornDown else { return }
        tornDown = true
        serverNames?.stop()
        stub?.stop()
        Lease.release(runDir: runDir)
        refusalSets = nil
        netns.close()
    }

    /// For `sandbox gc`, while it holds the dead run's lock: deletes the run's host
    /// veth — named in its lease, deleted only if its alias carries this run's mark —
    /// and releases the lease. Safe to repeat.
    public static func removeLeftovers(runId: String, runDir: String) {
        if let lease = Lease.read(runDir: runDir), let rtnl = try? RouteSocket(),
           let link = try? rtnl.link(named: lease.veth), link.alias == ownershipMark(runId: runId) {
            try? rtnl.deleteLink(index: link.index, name: lease.veth)
        }
        Lease.release(runDir: runDir)
    }

    /// For `sandbox gc`: deletes every host veth on the bridge of `config` whose mark
    /// names a run that is not alive (no lock held on its directory under any of the
    /// bridge's run bases or `runBases`) — a namespace some process still holds past
    /// its run, or one the kernel has not removed yet. A live run's, the bridge, and
    /// links without our mark are never touched. Returns the names deleted.
    @discardableResult
    public static func removeOrphanLinks(_ config: BridgeConfig = .standard, runBases: [String] = []) -> [String] {
        guard let bridge = try? Bridge(config), let rtnl = try? RouteSocket(),
              let links = try? rtnl.links(),
              let bridgeIndex = links.first(where: { $0.name == bridge.name && $0.alias == BridgeConfig.bridgeMark })?.index
        else { return [] }
        var live: Set<String> = []
        for base in Set(bridge.runBases + runBases) {
            for entry in RunDirectory.list(base: base) where entry.live { live.insert(entry.id) }
        }
        var removed: [String] = []
        for link in links where link.master == bridgeIndex && link.kind == "veth" && address(ofInterface: link.name) != nil {
            guard let id = runId(ofMark: link.alias), !live.contains(id) else { continue }
            if (try? rtnl.deleteLink(index: link.index, name: link.name)) != nil { removed.append(link.name) }
        }
        return removed
    }
}
