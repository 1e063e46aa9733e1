import FoundationEssentials
import Glibc
import SandboxVocabulary

/// The host side every egress run shares: the bridge, our own nft table, IPv4
/// forwarding and the address pool. Its defaults are documented in Docs/network.md;
/// every field is a hook an installation (or a test) may change.
public struct BridgeConfig: Sendable, Equatable {
    /// The bridge the runs' host veth ends are attached to.
    public var name: String
    /// The bridge's own address: the runs' default gateway.
    public var address: String
    /// The bridge subnet; run addresses are leased from it.
    public var prefixLength: Int
    /// Our nft table (family inet) on the host: forward + masquerade for the subnet.
    public var table: String
    /// Where the host-wide lock (`.net.lock`) and state (`.net.state`) live.
    public var stateDir: String
    /// Run directory bases whose leases count (the run's own base is always added).
    public var runBases: [String]
    /// Enable net.ipv4.ip_forward when it is 0 (and record that we did). Off: the
    /// installation manages forwarding itself; runs have no egress while it is 0.
    public var manageIPForward: Bool

    public init(name: String = "sbx0", address: String = "10.203.0.1", prefixLength: Int = 16,
                table: String = NftHostTable.name, stateDir: String = "/run/sandbox",
                runBases: [String] = ["/run/sandbox"], manageIPForward: Bool = true) {
        self.name = name; self.address = address; self.prefixLength = prefixLength; self.table = table
        self.stateDir = stateDir; self.runBases = runBases; self.manageIPForward = manageIPForward
    }

    /// sbx0, 10.203.0.1/16, table inet sandbox_host, state in /run/sandbox.
    public static let standard = BridgeConfig()

    /// The ownership mark (IFLA_IFALIAS) of a bridge we created.
    static let bridgeMark = "sandbox:bridge"
}

/// A BridgeConfig whose values were checked, so they can be rendered into nft text
/// and netlink messages.
struct Bridge: Sendable, Equatable {
    var name: String
    var gateway: IPv4
    var prefixLength: Int
    var table: String
    var stateDir: String
    var runBases: [String]
    var manageIPForward: Bool

    var network: IPv4 { IPv4(gateway.value & IPv4.mask(prefixLength)) }
    var broadcast: IPv4 { IPv4(network.value | ~IPv4.mask(prefixLength)) }
    var subnet: String { "\(network)/\(prefixLength)" }
    /// Addresses runs may lease: the subnet without network, broadcast and gateway.
    var pool: ClosedRange<UInt32> { (network.value + 1)...(broadcast.value - 1) }
    var lockPath: String { stateDir + "/.net.lock" }
    var statePath: String { stateDir + "/.net.state" }

    init(_ c: BridgeConfig) throws(KernelError) {
        func bad(_ what: String, _ why: String) -> KernelError {
            KernelError(operation: "bridge config", subject: what, errno: EINVAL, detail: why)
        }
        guard Bridge.isInterfaceName(c.name) else {
            throw bad(c.name, "an interface name is 1-15 characters of a-z, A-Z, 0-9, _ and -")
        }
        guard let gw = IPv4(c.address) else { throw bad(c.address, "not an IPv4 address") }
        guard (8...30).contains(c.prefixLength) else { throw bad("/\(c.prefixLength)", "the prefix length must be 8-30") }
        guard c.table.first?.isASCIILetter == true, c.table.count <= 32,
              c.table.allSatisfy({ $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" }) else {
            throw bad(c.table, "an nft table name is a letter, then letters, digits and _")
        }
        guard c.stateDir.hasPrefix("/") else { throw bad(c.stateDir, "the state directory must be absolute") }
        name = c.name; gateway = gw; prefixLength = c.prefixLength; table = c.table
        stateDir = c.stateDir; runBases = c.runBases; manageIPForward = c.manageIPForward
        guard gw != network, gw != broadcast else { throw bad(c.address, "the gateway is the network or broadcast address") }
    }

    static func isInterfaceName(_ s: String) -> Bool {
        (1...15).contains(s.utf8.count)
            && s.allSatisfy { $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" || $0 == "-" }
    }

    /// Our host table, replaced as a whole in one transaction (`add` makes the
    /// `delete` succeed on first use): forwarded traffic from the subnet out of the
    /// bridge is accepted, answers back in, nothing else to or from the bridge; the
    /// subnet is masqueraded behind whatever interface it leaves by. Other tables are
    /// never named, so never touched. Rendered only from validated values.
    var hostTable: String {
        """
        table inet \(table)
        delete table inet \(table)
        table inet \(table) {
          chain forward {
            type filter hook forward priority filter; policy accept;
            iifname "\(name)" ip saddr \(subnet) accept
            oifname "\(name)" ip daddr \(subnet) ct state established,related accept
            iifname "\(name)" drop
            oifname "\(name)" drop
          }
          chain postrouting {
            type nat hook postrouting priority srcnat; policy accept;
            ip saddr \(subnet) oifname != "\(name)" masquerade
          }
        }

        """
    }
}

/// The host-wide lock: an exclusive flock on `<stateDir>/.net.lock`, held across
/// every change of shared host state (bridge, host table, forwarding, pool), so two
/// runs never interleave them (pelagos' NAT race, Docs/design.md §8).
///
/// flock belongs to the open file description, so two runs of one process (each
/// opening the file) exclude each other as two processes would.
final class HostLock {
    private let fd: OwnedFD

    init(_ bridge: Bridge) throws(KernelError) {
        if mkdir(bridge.stateDir, 0o711) != 0 && errno != EEXIST { throw .last("mkdir", bridge.stateDir) }
        let raw = open(bridge.lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard raw >= 0 else { throw .last("open", bridge.lockPath) }
        fd = OwnedFD(raw)
        while flock(raw, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            let e = KernelError.last("flock", bridge.lockPath)
            fd.close()
            throw e
        }
    }

    func release() { fd.close() }
}

/// `<stateDir>/.net.state`: `key=value` lines — the pool cursor, and whether we
/// turned IPv4 forwarding on (so an operator knows who did; Docs/network.md).
struct HostState: Equatable {
    var values: [String: String] = [:]

    static func read(_ path: String) -> HostState {
        var s = HostState()
        for line in (RunDirectory.read(path) ?? "").split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            s.values[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return s
    }

    func write(_ path: String) throws(KernelError) {
        let text = values.keys.sorted().map { "\($0)=\(values[$0]!)\n" }.joinedText()
        try FD.writeAtomically(path, Array(text.utf8), mode: 0o644)
    }
}

extension Bridge {
    /// The bridge (created if missing, marked, addressed, up), our host table, and
    /// IPv4 forwarding. Idempotent; the caller holds the HostLock. Returns the
    /// bridge's ifindex.
    func ensureHostState(_ rtnl: RouteSocket, state: inout HostState) throws(KernelError) -> Int32 {
        var link = try rtnl.link(named: name)
        if link == nil {
            try rtnl.createBridge(name: name, alias: BridgeConfig.bridgeMark)
            link = try rtnl.link(named: name)
        }
        guard let bridge = link else {
            throw KernelError(operation: "netlink RTM_GETLINK", subject: name, errno: ENODEV)
        }
        guard bridge.kind == "bridge", bridge.alias == BridgeConfig.bridgeMark else {
            throw KernelError(operation: "bridge", subject: name, errno: EEXIST,
                               detail: "a link of that name exists (kind \(bridge.kind ?? "?"), alias \(bridge.alias.map { "\"\($0)\"" } ?? "none")) that sandbox did not create; remove it or configure another bridge name")
        }
        // A fixed, locally administered address from the bridge's name (set again on
        // every run: cheap, and it repairs a bridge made before this was done).
        let h = UInt32(Bridge.fnv1a(name), radix: 16) ?? 0
        let mac: [UInt8] = [0x02, 0x5b, UInt8(h >> 24), UInt8((h >> 16) & 0xff), UInt8((h >> 8) & 0xff), UInt8(h & 0xff)]
        if bridge.hardwareAddress != mac { try rtnl.setHardwareAddress(index: bridge.index, name: name, mac) }
        try rtnl.addAddress(index: bridge.index, name: name, address: gateway, prefixLength: prefixLength)
        if !bridge.isUp { try rtnl.setLink(index: bridge.index, name: name, up: true, alias: nil, master: nil) }
        // Replacing the table costs a kernel RCU grace period (~10 ms, under the lock):
        // only when it is missing, changed, or not the text we last loaded. Listing it
        // to check (libnftables, ~2 ms) is skipped while nf_tables' generation in the
        // host namespace is the one recorded at the last check: any committed change
        // of any table there changes it. It is read before the check, so a change
        // made during the check is caught by the next run.
        let digest = Bridge.fnv1a(hostTable)
        let generation = (try? RouteSocket(family: RTNL.NETLINK_NETFILTER).nftGeneration()).map(String.init)
        let unchanged = generation != nil && state.values["host_table_generation"] == generation
        if state.values["host_table"] != digest || !(unchanged || hostTableIsIntact()) {
            _ = try Nftables.run(hostTable, operation: "nft load host table", subject: "inet \(table)")
            state.values["host_table"] = digest
            state.values["host_table_generation"] = nil // our own commit changed it: checked next time
        } else {
            state.values["host_table_generation"] = generation
        }
        if manageIPForward { try enableIPv4Forwarding(&state) }
        return bridge.index
    }

    /// Our host table is there with its two base chains and five rules (read-only
    /// listing of that table alone).
    func hostTableIsIntact() -> Bool {
        guard let json = try? Nftables.run("list table inet \(table)", json: true, operation: "nft list table", subject: "inet \(table)"),
              let root = JSONTree.parse(json.utf8) as? [String: Any],
              let items = root["nftables"] as? [[String: Any]] else { return false }
        let chains = items.compactMap { $0["chain"] as? [String: Any] }
        let hooks = Set(chains.compactMap { $0["hook"] as? String })
        let rules = items.filter { $0["rule"] != nil }.count
        return hooks == ["forward", "postrouting"] && rules == 5
    }

    /// FNV-1a 32 in hex: a stable digest of short texts (not a security boundary).
    static func fnv1a(_ text: String) -> String {
        var h: UInt32 = 0x811c9dc5
        for b in text.utf8 { h = (h ^ UInt32(b)) &* 0x0100_0193 }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// net.ipv4.ip_forward = 1 if it is 0, through /proc/sys (no sysctl(8)). The
    /// change is host-wide and stays (other runs rely on it); the state file records
    /// that sandbox made it. IPv6 forwarding is never touched (the bridge carries no
    /// IPv6), least of all `net.ipv6.conf.all.forwarding`, which turns off router
    /// advertisements on every interface of the host.
    func enableIPv4Forwarding(_ state: inout HostState) throws(KernelError) {
        let path = Bridge.ipForwardPath
        guard let current = RunDirectory.read(path)?.trimmed else { throw .last("read", path) }
        guard current == "0" else { return }
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .last("open", path, detail: "1") }
        let ok = FD.writeAll(fd, Array("1\n".utf8))
        let e = errno
        Glibc.close(fd)
        guard ok else { throw KernelError(operation: "write", subject: path, errno: e, detail: "1") }
        state.values["ip_forward_enabled_by_sandbox"] = "1"
    }

    static let ipForwardPath = "/proc/sys/net/ipv4/ip_forward"
}

extension EgressNetwork {
    /// Removes the shared host side of `config` — its bridge (only if it carries our
    /// mark), our host table, the state file — when no live run holds a lease on it.
    /// Never reverts net.ipv4.ip_forward (other software may rely on it by now; the
    /// state file said whether sandbox turned it on). For an operator uninstalling,
    /// and for tests that built a bridge of their own.
    public static func removeHostState(_ config: BridgeConfig) throws {
        let bridge = try Bridge(config)
        let lock = try HostLock(bridge)
        defer { lock.release() }
        let rtnl = try RouteSocket()
        let held = AddressPool.addressesInUse(bridge: bridge, bases: bridge.runBases, rtnl: rtnl)
            .subtracting([bridge.gateway.value])
        guard held.isEmpty else {
            throw KernelError(operation: "remove bridge", subject: bridge.name, errno: EBUSY,
                               detail: "\(held.count) address(es) still leased by runs")
        }
        if let link = try rtnl.link(named: bridge.name), link.alias == BridgeConfig.bridgeMark {
            try rtnl.deleteLink(index: link.index, name: bridge.name)
        }
        _ = try Nftables.run("table inet \(bridge.table)\ndelete table inet \(bridge.table)\n",
                             operation: "nft delete table", subject: "inet \(bridge.table)")
        unlink(bridge.statePath)
    }
}
