import SandboxVocabulary

/// The plan's canonical JSON (`CanonicalJSON`'s form: keys sorted by UTF-8 bytes, no
/// whitespace, minimal escaping), written field by field without `Codable`.
///
/// Why: every run encodes its plan (the digest, `plan.json`), and the `Codable` path
/// cost more than anything else the supervisor computes: each type's keyed container
/// and coding keys are generic metadata the runtime instantiates on first use, by
/// scanning the binary's conformance tables, in every new process (issue 16). Here
/// every key is written in its sorted place by hand.
///
/// Must give byte for byte what `CanonicalJSON.encode` gives for the same plan (an
/// optional left out when nil, as synthesized `Codable` does): `PlanSpellingTests`
/// compares the two on the shipped plans and on a plan with every optional set, the
/// policy fuzzer on each plan it compiles, and debug builds check every object's keys
/// are written in increasing order. A field added to a plan type must be added here.
/// The run result is written with it too (`RunResult.canonicalJSON`, SandboxExecutor).
public struct PlanJSONWriter {
    public private(set) var out: [UInt8] = []
    @usableFromInline var first = true
    #if DEBUG
    private var lastKey: [UInt8]? = nil
    #endif

    public init(capacity: Int = 24 << 10) { out.reserveCapacity(capacity) }

    // MARK: Containers

    public mutating func object(_ fill: (inout PlanJSONWriter) -> Void) {
        out.append(UInt8(ascii: "{"))
        let saved = first
        first = true
        #if DEBUG
        let savedKey = lastKey
        lastKey = nil
        #endif
        fill(&self)
        first = saved
        #if DEBUG
        lastKey = savedKey
        #endif
        out.append(UInt8(ascii: "}"))
    }

    /// Inlinable so that a caller in another module (the run result) gets its own
    /// specialisation: the generic one looks up `S.Element` at run time, which made
    /// the Swift runtime scan the binary's conformance records on a cold run.
    @inlinable
    public mutating func array<S: Sequence>(_ items: S, _ each: (inout PlanJSONWriter, S.Element) -> Void) {
        appendByte(UInt8(ascii: "["))
        var firstItem = true
        for item in items {
            if !firstItem { appendByte(UInt8(ascii: ",")) }
            firstItem = false
            let saved = first
            each(&self, item)
            first = saved
        }
        appendByte(UInt8(ascii: "]"))
    }

    @usableFromInline mutating func appendByte(_ byte: UInt8) { out.append(byte) }

    /// A key of the object being written; keys must come in increasing byte order.
    public mutating func key(_ k: StaticString) {
        if !first { out.append(UInt8(ascii: ",")) }
        first = false
        k.withUTF8Buffer { b in
            #if DEBUG
            let bytes = Array(b)
            if let lastKey { precondition(lastKey.lexicographicallyPrecedes(bytes), "PlanJSONWriter: key \(k) out of order") }
            lastKey = bytes
            #endif
            CanonicalJSON.appendQuoted(bytes: b, into: &out)
        }
        out.append(UInt8(ascii: ":"))
    }

    // MARK: Values

    /// A value this writer wrote before, in another writer (`SeccompPlanMemo`).
    public mutating func append(rendered bytes: [UInt8]) { out.append(contentsOf: bytes) }

    public mutating func string(_ s: String) { CanonicalJSON.appendQuoted(s, into: &out) }
    public mutating func bool(_ b: Bool) { out.append(contentsOf: (b ? "true" : "false").utf8) }
    public mutating func int<I: BinaryInteger>(_ n: I) {
        // Digits by hand: `String(n)` is the stdlib's generic `init(_:radix:uppercase:)`
        // here, whose metadata lookups cost a cold run (perf, session 40).
        guard let v = Int64(exactly: n) else { out.append(contentsOf: String(n).utf8); return }
        if v < 0 { out.append(UInt8(ascii: "-")) }
        var m = v.magnitude
        let start = out.count
        repeat {
            out.append(UInt8(ascii: "0") + UInt8(m % 10))
            m /= 10
        } while m > 0
        out[start...].reverse()
    }
    public mutating func strings(_ items: [String]) { array(items) { $0.string($1) } }
    public mutating func raw<R: RawRepresentable>(_ v: R) where R.RawValue == String { string(v.rawValue) }
    public mutating func raws<R: RawRepresentable>(_ items: [R]) where R.RawValue == String { array(items) { $0.raw($1) } }
    public mutating func ints<I: BinaryInteger>(_ items: [I]) { array(items) { $0.int($1) } }

    /// A `[String: V]` as an object, keys in UTF-8 byte order (as `CanonicalJSON`).
    public mutating func dictionary<V>(_ d: [String: V], _ value: (inout PlanJSONWriter, V) -> Void) {
        let entries = d.map { (key: Array($0.key.utf8), value: $0.value) }
            .sorted { $0.key.lexicographicallyPrecedes($1.key) }
        out.append(UInt8(ascii: "{"))
        var firstItem = true
        for e in entries {
            if !firstItem { out.append(UInt8(ascii: ",")) }
            firstItem = false
            e.key.withUnsafeBufferPointer { CanonicalJSON.appendQuoted(bytes: $0, into: &out) }
            out.append(UInt8(ascii: ":"))
            let saved = first
            value(&self, e.value)
            first = saved
        }
        out.append(UInt8(ascii: "}"))
    }

    // Fields: the key and its value; an optional's key only when it has one.
    public mutating func field(_ k: StaticString, _ s: String) { key(k); string(s) }
    public mutating func field(_ k: StaticString, _ s: String?) { if let s { key(k); string(s) } }
    public mutating func field(_ k: StaticString, _ b: Bool) { key(k); bool(b) }
    public mutating func field<I: BinaryInteger>(_ k: StaticString, _ n: I) { key(k); int(n) }
    public mutating func field<I: BinaryInteger>(_ k: StaticString, _ n: I?) { if let n { key(k); int(n) } }
    public mutating func field(_ k: StaticString, _ items: [String]) { key(k); strings(items) }
    public mutating func field<R: RawRepresentable>(_ k: StaticString, _ v: R) where R.RawValue == String { key(k); raw(v) }
}

extension RunPlan {
    /// The canonical JSON of this plan as it is (`digest` included when set): what
    /// `CanonicalJSON.encode(self)` gives, without `Codable`.
    public func canonicalJSON() -> [UInt8] {
        var w = PlanJSONWriter()
        write(to: &w)
        #if DEBUG
        // Every plan a debug build makes (the whole test suite's) is checked against
        // the Codable encoding: a plan field added without its line here stops here.
        if let codable = try? CanonicalJSON.encode(self), codable != w.out {
            preconditionFailure("PlanJSONWriter: the plan's hand-written JSON differs from its Codable encoding (a field missing in PlanJSON.swift?):\n\(String(decoding: w.out, as: UTF8.self))\n\(String(decoding: codable, as: UTF8.self))")
        }
        #endif
        return w.out
    }

    /// The canonical JSON of this plan without its digest, and where the `digest`
    /// field goes in it: writing `,"digest":"<hex>"` there gives, byte for byte, the
    /// JSON of the plan with that digest set (`"capabilities"`, always present, comes
    /// before it), so a run's start-up encodes its plan once, not twice.
    func canonicalJSONWithoutDigest() -> (json: [UInt8], digestAt: Int) {
        var copy = self
        copy.digest = nil
        var w = PlanJSONWriter()
        var at = 0
        copy.write(to: &w, digestAt: &at)
        return (w.out, at)
    }

    func write(to w: inout PlanJSONWriter) {
        var at = 0
        write(to: &w, digestAt: &at)
    }

    private func write(to w: inout PlanJSONWriter, digestAt: inout Int) {
        w.object { w in
            w.key("audit"); audit.write(to: &w)
            w.key("binary"); binary.write(to: &w)
            w.key("capabilities"); w.object { w in
                w.field("keep", capabilities.keep)
                w.field("keepMask", capabilities.keepMask)
            }
            digestAt = w.out.count
            w.field("digest", digest)
            w.key("host"); host.write(to: &w)
            if let isolation { w.key("isolation"); isolation.write(to: &w) }
            w.key("landlock"); landlock.write(to: &w)
            w.key("mounts"); w.array(mounts) { w, m in m.write(to: &w) }
            w.key("network"); network.write(to: &w)
            w.field("notApplied", notApplied)
            w.field("planVersion", planVersion)
            w.key("policy"); w.object { w in
                w.field("digest", policy.digest)
                w.field("name", policy.name)
                w.field("sources", policy.sources)
            }
            w.key("process"); process.write(to: &w)
            w.field("reportCreated", reportCreated)
            w.key("resources"); resources.write(to: &w)
            w.field("runId", runId)
            w.key("seccomp"); seccomp.write(to: &w)
        }
    }
}

extension AuditPlan {
    func write(to w: inout PlanJSONWriter) {
        w.object { w in
            w.field("keyFile", keyFile)
            w.field("path", path)
        }
    }
}

extension BinaryPlan {
    func write(to w: inout PlanJSONWriter) {
        w.object { w in
            w.key("pin"); w.dictionary(pin) { $0.string($1) }
            w.field("rejectSetuid", rejectSetuid)
            w.field("rejectWritable", rejectWritable)
            w.field("requireRootOwned", requireRootOwned)
        }
    }
}

extension HostInfo {
    func write(to w: inout PlanJSONWriter) {
        w.object { w in
            w.field("arch", arch)
            w.field("invokerGID", invokerGID)
            w.field("invokerUID", invokerUID)
            w.field("kernel", kernel)
            w.field("landlockABI", landlockABI)
            w.field("rootless", rootless)
        }
    }
}

extension LandlockPlan {
    func write(to w: inout PlanJSONWriter) {
        w.object { w in
            w.field("abi", abi)
            if let bindTCP { w.key("bindTCP"); w.ints(bindTCP) }
            if let connectTCP { w.key("connectTCP"); w.ints(connectTCP) }
            w.key("handledAccessFS"); w.raws(handledAccessFS)
            w.field("mode", mode)
            w.field("requiredABI", requiredABI)
            w.key("rules"); w.array(rules) { w, r in
                w.object { w in
                    w.key("access"); w.raws(r.access)
                    w.field("hostPath", r.hostPath)
                    w.field("path", r.path)
                }
            }
            w.key("scopes"); w.raws(scopes)
        }
    }
}

extension MountStep {
    func write(to w: inout PlanJSONWriter) {
        w.object { w in
            w.field("cwdRelative", cwdRelative)
            w.field("destination", destination)
            w.field("kind", kind)
            w.field("optional", optional)
            w.field("options", options)
            w.field("origin", origin)
            w.field("readOnly", readOnly)
            w.field("source", source)
            if let sourceIdentity {
                w.key("sourceIdentity"); w.object { w in
                    w.field("device", sourceIdentity.device)
                    w.field("inode", sourceIdentity.inode)
                }
            }
        }
    }
}

extension NetworkPlan {
    func write(to w: inout PlanJSONWriter) {
        w.object { w in
            w.key("allow"); w.array(allow) { w, a in
                w.object { w in
                    w.field("cidr", a.cidr)
                    w.key("ports"); w.ints(a.ports)
                    w.field("proto", a.proto)
                }
            }
            if let connections {
                w.key("connections"); w.object { w in
                    w.field("burst", connections.burst)
                    w.field("max", connections.max)
                    w.field("perSecond", connections.perSecond)
                }
            }
            w.field("dns", dns)
            w.field("hosts", hosts)
            w.field("mode", mode)
            w.field("nftRuleset", nftRuleset)
            w.field("resolvConf", resolvConf)
            if let stub {
                w.key("stub"); w.object { w in
                    w.field("address", stub.address)
                    w.field("denyResolved", stub.denyResolved)
                    w.key("names"); w.array(stub.names) { w, n in
                        w.object { w in
                            w.field("host", n.host.description)
                            w.key("ports"); w.ints(n.ports)
                            w.field("proto", n.proto)
                            w.field("set4", n.set4)
                            w.field("set6", n.set6)
                        }
                    }
                    if let check = stub.serverNameCheck {
                        w.key("serverNameCheck"); w.object { w in
                            w.key("claims"); w.raws(check.claims)
                            w.key("resetWhen"); w.raws(check.resetWhen)
                            w.key("rules"); w.array(check.rules) { w, r in
                                w.object { w in
                                    w.field("host", r.host.description)
                                    w.key("ports"); w.ints(r.ports)
                                }
                            }
                        }
                    }
                    w.key("ttl"); w.object { w in
                        w.field("max", stub.ttl.max)
                        w.field("min", stub.ttl.min)
                    }
                    w.field("upstream", stub.upstream)
                    w.field("upstreamSource", stub.upstreamSource)
                }
            }
        }
    }
}

extension ProcessPlan {
    func write(to w: inout PlanJSONWriter) {
        w.object { w in
            w.field("argv", argv)
            w.field("env", env)
            w.field("gid", gid)
            w.field("graceMs", graceMs)
            w.field("hostUID", hostUID)
            w.field("hostname", hostname)
            w.field("newSession", newSession)
            w.key("rlimits"); w.array(rlimits) { w, r in
                w.object { w in
                    w.field("hard", r.hard)
                    w.field("name", r.name)
                    w.field("resource", r.resource)
                    w.field("soft", r.soft)
                }
            }
            w.field("searchPath", searchPath)
            w.field("timeoutMs", timeoutMs)
            w.field("uid", uid)
            if let userNamespace {
                w.key("userNamespace"); w.object { w in
                    w.field("gidMap", userNamespace.gidMap)
                    w.field("uidMap", userNamespace.uidMap)
                }
            }
            w.field("workdir", workdir)
        }
    }
}

extension ResourcePlan {
    func write(to w: inout PlanJSONWriter) {
        w.object { w in
            w.field("bestEffort", bestEffort)
            w.field("cpuPeriodUs", cpuPeriodUs)
            w.field("cpuQuotaUs", cpuQuotaUs)
            w.field("ioWeight", ioWeight)
            w.field("memoryBytes", memoryBytes)
            w.field("pids", pids)
            w.field("swapBytes", swapBytes)
        }
    }
}

extension IsolationPlan {
    /// In the plan and in the run result alike.
    public func write(to w: inout PlanJSONWriter) {
        w.object { w in
            w.key("accepted"); w.raws(accepted)
            w.key("layers"); w.array(layers) { w, l in
                w.object { w in
                    w.field("applied", l.applied)
                    w.field("how", l.how)
                    w.field("name", l.name)
                }
            }
            w.field("mode", mode)
            w.field("reason", reason)
            w.field("requested", requested)
        }
    }
}

extension SeccompPlan {
    /// A section the planner remembers (`SeccompPlanMemo`) is written once per process.
    func write(to w: inout PlanJSONWriter) {
        let remembered = SeccompPlanMemo.shared.json(of: self) {
            var own = PlanJSONWriter()
            render(to: &own)
            return own.out
        }
        if let remembered { w.append(rendered: remembered) } else { render(to: &w) }
    }

    private func render(to w: inout PlanJSONWriter) {
        w.object { w in
            w.field("arch", arch)
            w.field("defaultAction", defaultAction)
            w.field("defaultErrno", defaultErrno)
            w.field("enabled", enabled)
            if let explicitTimesViaSupervisor { w.field("explicitTimesViaSupervisor", explicitTimesViaSupervisor) }
            if let namespaceFence { w.field("namespaceFence", namespaceFence) }
            w.field("onViolation", onViolation)
            w.field("profile", profile)
            if let refusedIoctls {
                w.key("refusedIoctls"); w.array(refusedIoctls) { w, c in
                    w.object { w in
                        w.field("name", c.name)
                        w.field("number", c.number)
                    }
                }
            }
            w.key("rules"); w.array(rules) { w, r in
                w.object { w in
                    w.field("action", r.action)
                    w.key("args"); w.array(r.args) { w, a in
                        w.object { w in
                            w.field("index", a.index)
                            w.field("op", a.op)
                            w.field("value", a.value)
                            w.field("valueTwo", a.valueTwo)
                        }
                    }
                    w.field("errno", r.errno)
                    w.field("origin", r.origin)
                    w.field("syscalls", r.syscalls)
                }
            }
            w.field("rulesDigest", rulesDigest)
            if let socketFamilies { w.key("socketFamilies"); w.raws(socketFamilies) }
            w.key("syscallNumbers"); w.dictionary(syscallNumbers) { $0.int($1) }
            w.field("unknownSyscalls", unknownSyscalls)
        }
    }
}
