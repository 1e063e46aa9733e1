import FoundationEssentials
import SandboxPolicy

/// Canonical JSON (`CanonicalJSON`: sorted keys, no whitespace) and its SHA-256: the
/// identity of a plan. Two plans with the same digest do the same.
public enum PlanDigest {
    public static func canonicalJSON<T: Encodable>(_ value: T) throws -> [UInt8] {
        try CanonicalJSON.encode(value)
    }

    public static func sha256Hex(_ bytes: [UInt8]) -> String { Digest.sha256Hex(bytes) }

    /// A plan's canonical JSON, written by hand (`RunPlan.canonicalJSON()`, the same
    /// bytes as the generic form above, without `Codable`'s start-up cost).
    public static func canonicalJSON(_ plan: RunPlan) -> [UInt8] { plan.canonicalJSON() }

    /// sha256 of the canonical JSON of `plan` with its `digest` field left out.
    public static func digest(of plan: RunPlan) throws -> String {
        var copy = plan
        copy.digest = nil
        return sha256Hex(copy.canonicalJSON())
    }

    /// The digest of `plan` (as `digest(of:)`) and the canonical JSON of the plan with
    /// that digest set (as `canonicalJSON`): run start-up needs both.
    public static func digestAndJSON(of plan: RunPlan) throws -> (digest: String, json: [UInt8]) {
        var (json, at) = plan.canonicalJSONWithoutDigest()
        let digest = sha256Hex(json)
        json.insert(contentsOf: Array(#","digest":""#.utf8) + Array(digest.utf8) + [UInt8(ascii: "\"")], at: at)
        #if DEBUG
        var copy = plan
        copy.digest = digest
        precondition(json == copy.canonicalJSON(), "PlanDigest.digestAndJSON: the spliced digest differs from the plan's own JSON")
        #endif
        return (digest, json)
    }
}

extension RunPlan {
    /// The plan as people and tools read it: its canonical JSON (digest included)
    /// indented as `JSONEncoder`'s `.prettyPrinted` lays it out (`"key" : value`, two
    /// spaces a level). Written from the canonical bytes, not by `JSONEncoder`, whose
    /// `Codable` walk was a sixth of `sandbox plan`'s time; the strings are the
    /// canonical form's (`\n`, `\u00xx`), the keys in its byte order.
    public func prettyJSON() throws -> String {
        String(decoding: CanonicalJSON.indented(canonicalJSON()), as: UTF8.self)
    }
}
