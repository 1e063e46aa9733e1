import Foundation
import SandboxPolicy

/// Canonical JSON (`CanonicalJSON`: sorted keys, no whitespace) and its SHA-256: the
/// identity of a plan. Two plans with the same digest do the same.
public enum PlanDigest {
    public static func canonicalJSON<T: Encodable>(_ value: T) throws -> [UInt8] {
        try CanonicalJSON.encode(value)
    }

    public static func sha256Hex(_ bytes: [UInt8]) -> String { Digest.sha256Hex(bytes) }

    /// sha256 of the canonical JSON of `plan` with its `digest` field left out.
    public static func digest(of plan: RunPlan) throws -> String {
        var copy = plan
        copy.digest = nil
        return sha256Hex(try canonicalJSON(copy))
    }

    /// The digest of `plan` (as `digest(of:)`) and the canonical JSON of the plan with
    /// that digest set (as `canonicalJSON`), from one encoding: the second is the
    /// first's tree with the `digest` key added, which is what encoding the plan with
    /// its digest set gives (an optional is encoded only when present). Run start-up
    /// needs both, and the encoding is the larger part of their cost.
    public static func digestAndJSON(of plan: RunPlan) throws -> (digest: String, json: [UInt8]) {
        var copy = plan
        copy.digest = nil
        let tree = try CanonicalJSON.tree(copy)
        let digest = sha256Hex(CanonicalJSON.bytes(of: tree))
        guard case .object(let root) = tree else { return (digest, try canonicalJSON(plan)) }
        root.items["digest"] = .string(digest)
        return (digest, CanonicalJSON.bytes(of: tree))
    }
}

extension RunPlan {
    /// The plan as people and tools read it: sorted keys, indented, digest included.
    public func prettyJSON() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
