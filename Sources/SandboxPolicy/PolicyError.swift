/// One problem found in a policy file: where (file, key path, line when the TOML
/// parser gives one) and what is wrong, including what would be allowed.
public struct PolicyDiagnostic: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    /// Dotted key path, e.g. `resources.memory` or `network.allow[1].ports[0]`.
    public var keyPath: String?
    public var line: Int?
    public var column: Int?
    public var message: String

    public init(file: String, keyPath: String? = nil, line: Int? = nil, column: Int? = nil, message: String) {
        self.file = file; self.keyPath = keyPath; self.line = line; self.column = column; self.message = message
    }

    public var description: String {
        var location = file
        if let line { location += ":\(line)"; if let column { location += ":\(column)" } }
        if let keyPath { return "\(location): \(keyPath): \(message)" }
        return "\(location): \(message)"
    }
}

/// Every problem found while loading a policy (loading does not stop at the first).
public struct PolicyError: Error, Sendable, Equatable, CustomStringConvertible {
    public var diagnostics: [PolicyDiagnostic]
    public init(_ diagnostics: [PolicyDiagnostic]) { self.diagnostics = diagnostics }
    public var description: String { diagnostics.map(\.description).joinedText(separator: "\n") }
}
