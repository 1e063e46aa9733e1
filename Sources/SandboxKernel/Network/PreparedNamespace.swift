import CSandbox
import Glibc

/// A network namespace made ahead for one egress run, with everything of its inside
/// that does not depend on the run already done: the ruleset loaded (its table, its
/// policy drop, its empty refusal sets), `lo` up, the refusal sets' reader opened.
/// What the run adds at set-up is its own: the veth pair and the leased address,
/// `eth0` up, the default route (Docs/network.md, "Made ahead under serve").
///
/// Why: loading the ruleset is libnftables' parse and one transaction, about 1.9 ms,
/// and the namespace itself about 0.8 ms: most of what egress adds to a run under
/// `sandbox serve`, where the next egress run's ruleset is known (the last one's). A
/// server makes a few while it waits (`EgressNamespacePool`) and hands one to the
/// spawner with the run's spec (`ChildSpec.preparedNetworkNamespace`).
///
/// Nothing of one run reaches another: a prepared namespace is given to one run only,
/// has never held a process before that run's init, and is closed with it. Its ruleset
/// is the plan's text exactly (`ruleset`), and `EgressNetwork.setUp` relies on what
/// was prepared only when the init is in this very namespace (`holds(_:)`);
/// otherwise it sets the init's own up from the start.
public final class PreparedNamespace: @unchecked Sendable { // immutable but for the taken reader
    /// The nft ruleset loaded inside, as the planner wrote it.
    public let ruleset: String
    /// The namespace (O_CLOEXEC); closed with this object.
    public let netns: OwnedFD
    private let identity: (dev: UInt64, ino: UInt64)
    private var reader: RefusalSets?

    /// Makes a namespace and prepares its inside. Owned by the caller's user namespace
    /// (the server's: the initial one, as the spawner's made-ahead namespaces are).
    public static func make(ruleset: String) throws(KernelError) -> PreparedNamespace {
        guard !ruleset.trimmed.isEmpty else {
            throw KernelError(operation: "egress", subject: "prepared namespace", errno: EINVAL, detail: "no nft ruleset")
        }
        let netns = OwnedFD(try Netns.create())
        guard let identity = Self.identity(of: netns.raw) else {
            throw KernelError(operation: "fstat", subject: "network namespace", errno: errno)
        }
        let reader: RefusalSets
        do {
            reader = try Netns.run(in: netns.raw) { () throws -> RefusalSets in
                // The firewall first, as at any set-up: policy drop holds before lo is up.
                _ = try Nftables.run(ruleset, operation: "nft load ruleset", subject: EgressNetwork.runTable)
                let sets = try RefusalSets()
                try RouteSocket().setLink(named: "lo", up: true, alias: nil, master: nil)
                return sets
            }
        } catch let e as KernelError {
            throw e
        } catch {
            throw KernelError(operation: "egress", subject: "prepared namespace", errno: EIO, detail: "\(error)")
        }
        return PreparedNamespace(ruleset: ruleset, netns: netns, identity: identity, reader: reader)
    }

    private init(ruleset: String, netns: OwnedFD, identity: (dev: UInt64, ino: UInt64), reader: RefusalSets) {
        self.ruleset = ruleset; self.netns = netns; self.identity = identity; self.reader = reader
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
