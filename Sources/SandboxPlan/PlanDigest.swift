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
}

extension RunPlan {
    /// The plan as people and tools read it: sorted keys, indented, digest included.
    public func prettyJSON() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
