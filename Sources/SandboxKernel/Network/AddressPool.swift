import Glibc

/// A run's address on the bridge, persisted as `<runDir>/lease` so `gc` finds the
/// run's veth and `removeHostState` sees the bridge in use. (What keeps an address
/// from being handed out twice is its veth's name: `EgressNetwork.interfaceName`.)
/// Text, `key=value` lines: `address`, `bridge`, `veth`.
struct Lease: Sendable, Equatable {
    var address: IPv4
    var bridge: String
    var veth: String

    static let fileName = "lease"

    var text: String { "address=\(address)\nbridge=\(bridge)\nveth=\(veth)\n" }

    init(address: IPv4, bridge: String, veth: String) {
        self.address = address; self.bridge = bridge; self.veth = veth
    }

    init?(text: String) {
        var v: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            v[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        guard let a = v["address"].flatMap(IPv4.init), let b = v["bridge"], let n = v["veth"] else { return nil }
        address = a; bridge = b; veth = n
    }

    static func read(runDir: String) -> Lease? {
        RunDirectory.read(runDir + "/" + fileName).flatMap { Lease(text: $0) }
    }

    func write(runDir: String) throws(KernelError) {
        try FD.writeAtomically(runDir + "/" + Lease.fileName, Array(text.utf8), mode: 0o600)
    }

    /// Removes the lease file; a missing one counts as released.
    static func release(runDir: String) {
        unlink(runDir + "/" + fileName)
    }
}

/// Picks run addresses. Pure, so the wrap-around and exhaustion rules are tested
/// without a kernel.
enum AddressPool {
    /// The first address at or after `cursor` that is not in use, continuing from the
    /// start of the pool once; nil when every address is in use. Starting at a cursor
    /// (the address after the last one handed out) keeps a just-released address —
    /// whose conntrack entries may linger — out of use as long as possible. Wrapping
    /// never lands on an address in use: every candidate is checked.
    static func pick(pool: ClosedRange<UInt32>, inUse: Set<UInt32>, cursor: UInt32?) -> UInt32? {
        let start = cursor.flatMap { pool.contains($0) ? $0 : nil } ?? pool.lowerBound
        var a = start
        repeat {
            if !inUse.contains(a) { return a }
            a = a == pool.upperBound ? pool.lowerBound : a + 1
        } while a != start
        return nil
    }

    /// Addresses of `bridge` held by runs, for `removeHostState`: every lease of a live run (its
    /// run-directory lock is held), and the lease of a dead run whose veth still
    /// exists with that run's mark (gc has not cleaned it yet). Leases of dead runs
    /// whose veth is gone are free.
    static func addressesInUse(bridge: Bridge, bases: [String], rtnl: RouteSocket) -> Set<UInt32> {
        var used: Set<UInt32> = [bridge.gateway.value]
        var seen: Set<String> = []
        for base in bases where seen.insert(base).inserted {
            for entry in RunDirectory.list(base: base) {
                guard let lease = Lease.read(runDir: entry.path), lease.bridge == bridge.name else { continue }
                if entry.live {
                    used.insert(lease.address.value)
                } else if let link = try? rtnl.link(named: lease.veth), link.alias == EgressNetwork.ownershipMark(runId: entry.id) {
                    used.insert(lease.address.value)
                }
            }
        }
        return used
    }
}
