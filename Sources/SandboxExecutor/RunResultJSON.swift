import SandboxPlan

/// The run result's canonical JSON (`CanonicalJSON`'s form), written field by field
/// without `Codable`, as the plan's is (`PlanJSONWriter`).
///
/// Why: every `exec` writes its result and every `serve` reply carries one. The
/// `Codable` path made the runtime instantiate each result type's keyed container and
/// coding keys on first use, scanning the binary's conformance tables, in every new
/// process (about a quarter of a cold `exec`'s conformance scans), and it was the
/// largest part of a serve reply (issue 16).
///
/// Must give byte for byte what `CanonicalJSON.encode` gives (an optional left out
/// when nil): debug builds check every result they write against it, so the whole
/// test suite does, and `RunResultJSONTests` checks a result with every field set.
/// A field added to a result type must be added here, its key in UTF-8 byte order.
extension RunResult {
    public func canonicalJSON() -> [UInt8] {
        var w = PlanJSONWriter(capacity: 2048)
        write(to: &w)
        #if DEBUG
        if let codable = try? CanonicalJSON.encode(self), codable != w.out {
            preconditionFailure("RunResult: the hand-written JSON differs from its Codable encoding (a field missing in RunResultJSON.swift?):\n\(String(decoding: w.out, as: UTF8.self))\n\(String(decoding: codable, as: UTF8.self))")
        }
        #endif
        return w.out
    }

    func write(to w: inout PlanJSONWriter) {
        w.object { w in
            w.field("argv", argv)
            if let binary { w.key("binary"); binary.write(to: &w) }
            if let cpuSource { w.field("cpuSource", cpuSource) }
            w.field("cpuSystemMs", cpuSystemMs)
            w.field("cpuUserMs", cpuUserMs)
            w.field("createdEntries", createdEntries)
            w.field("createdEntriesIncomplete", createdEntriesIncomplete)
            w.field("createdEntriesTotal", createdEntriesTotal)
            w.key("denials"); w.array(denials) { w, d in
                w.object { w in
                    w.field("count", d.count)
                    w.field("detail", d.detail)
                    w.field("first", d.first)
                    w.field("hint", d.hint)
                    w.field("kind", d.kind)
                    w.field("what", d.what)
                }
            }
            if let dnsDenied {
                w.key("dnsDenied"); w.array(dnsDenied) { w, d in
                    w.object { w in
                        w.field("count", d.count)
                        w.field("hint", d.hint)
                        w.field("name", d.name)
                        w.field("reason", d.reason)
                        w.field("type", d.type)
                    }
                }
            }
            w.field("dnsDeniedDropped", dnsDeniedDropped)
            w.key("egressDenied"); w.array(egressDenied) { w, d in
                w.object { w in
                    w.field("daddr", d.daddr)
                    w.field("dport", d.dport)
                    w.field("packets", d.packets)
                    w.field("proto", d.proto)
                    w.field("reason", d.reason)
                }
            }
            if let error {
                w.key("error"); w.object { w in
                    w.field("errno", error.errno)
                    w.field("errnoName", error.errnoName)
                    w.field("kind", error.kind)
                    w.field("message", error.message)
                    w.field("step", error.step)
                    w.field("subject", error.subject)
                }
            }
            w.field("exitCode", exitCode)
            w.key("fences"); w.object { w in
                w.field("capabilitiesKept", fences.capabilitiesKept)
                w.field("landlockABI", fences.landlockABI)
                w.field("noNewPrivs", fences.noNewPrivs)
                w.field("seccompAction", fences.seccompAction)
                if let hit = fences.seccompCacheHit { w.field("seccompCacheHit", hit) }
                w.field("seccompInstructions", fences.seccompInstructions)
                w.field("seccompRules", fences.seccompRules)
            }
            w.field("hostUID", hostUID)
            if let isolation { w.key("isolation"); isolation.write(to: &w) }
            w.field("notApplied", notApplied)
            w.field("planDigest", planDigest)
            w.field("policy", policy)
            if let resources {
                w.key("resources"); w.object { w in
                    w.field("memoryPeakBytes", resources.memoryPeakBytes)
                    w.field("oomKilled", resources.oomKilled)
                    w.field("pidsLimitHit", resources.pidsLimitHit)
                    w.field("throttledUs", resources.throttledUs)
                }
            }
            w.field("runId", runId)
            w.field("signal", signal)
            if let sniDenied {
                w.key("sniDenied"); w.array(sniDenied) { w, d in
                    w.object { w in
                        w.field("count", d.count)
                        w.field("daddr", d.daddr)
                        w.field("dport", d.dport)
                        w.field("hint", d.hint)
                        w.field("name", d.name)
                        w.field("reason", d.reason)
                    }
                }
            }
            w.field("sniDeniedDropped", sniDeniedDropped)
            w.field("timedOut", timedOut)
            w.key("violations"); w.array(violations) { w, v in
                w.object { w in
                    if let args = v.args { w.key("args"); w.ints(args) }
                    w.key("calls"); w.array(v.calls) { w, call in w.ints(call) }
                    w.field("count", v.count)
                    w.field("kind", v.kind)
                    w.field("syscall", v.syscall)
                }
            }
            w.field("violationsDropped", violationsDropped)
            w.field("violationsTotal", violationsTotal)
            w.field("wallMs", wallMs)
        }
    }
}

extension CheckedBinary {
    func write(to w: inout PlanJSONWriter) {
        w.object { w in
            if let fence { w.field("fence", fence) }
            w.field("foundAs", foundAs)
            if let interpreter {
                w.key("interpreter"); w.object { w in
                    if let fence = interpreter.fence { w.field("fence", fence) }
                    w.field("foundAs", interpreter.foundAs)
                    w.field("path", interpreter.path)
                    w.field("sha256", interpreter.sha256)
                }
            }
            w.field("path", path)
            w.field("sha256", sha256)
        }
    }
}
