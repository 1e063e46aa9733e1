import FoundationEssentials
import SandboxPolicy

/// Files outside `.git` that git on the host runs or reads because the repository's
/// own config says so: `core.hooksPath` (husky and lefthook point it into the work
/// tree), `core.fsmonitor` (a command), `include.path` and `includeIf.<cond>.path`.
/// Protecting `.git` alone leaves these writable, and the host's next `git commit`
/// or `git status` would run what the command planted there. The planner protects
/// the ones that exist (`PlanCompiler.mountPlan`) when the policy protects `.git`.
enum GitIndirections {
    struct Target: Equatable {
        /// The config key, e.g. `core.hooksPath`.
        var key: String
        /// Absolute, normalised.
        var path: String
        /// Set when the value uses config syntax this reading does not follow as git
        /// does (escapes, a quote inside it, a continued line), or a key that moves
        /// where git resolves the others (`core.worktree`): the plan is refused rather
        /// than protect another path than git's (red team, session 43).
        var unreadable: String? = nil
        /// The word as written, for a word of a command-valued key (`commandWords`):
        /// protected when it names a file that exists, reported missing only when it
        /// is written as a path.
        var commandWord: String? = nil
    }

    /// Keys whose value is a command git runs (from the top of the work tree, where
    /// a relative word names a file the command can write), by the key's last part:
    /// `core.pager`, `pager.<cmd>`, `core.editor`, `sequence.editor`,
    /// `core.sshCommand`, `core.askPass`, `core.gitProxy`, `diff.external`,
    /// `diff.<driver>.command`/`textconv`, `filter.<driver>.clean`/`smudge`/
    /// `process`, `merge.<driver>.driver`, `credential.helper`, `gpg.program`,
    /// `gpg.ssh.defaultKeyCommand`, `difftool`/`mergetool.<tool>.cmd`/`path`,
    /// `interactive.diffFilter`, `alias.*` (`!` commands), `submodule.<name>.update`
    /// (`!` commands), `remote.<name>.uploadpack`/`receivepack`, `trailer.*.cmd`.
    static let commandKeys: Set<String> = ["pager", "editor", "sshcommand", "askpass", "gitproxy", "external",
                                           "command", "textconv", "clean", "smudge", "process", "driver", "helper",
                                           "program", "defaultkeycommand", "cmd", "difffilter", "uploadpack",
                                           "receivepack", "browser"]

    static func isCommand(section: String, key: String) -> Bool {
        if section == "alias" || section == "pager" { return true }
        if key == "path" { return section.hasPrefix("difftool") || section.hasPrefix("mergetool") }
        if key == "update" { return section.hasPrefix("submodule") }
        return commandKeys.contains(key)
    }

    /// The words of a command value that may name a file: split at blanks and at
    /// shell syntax, quotes and escapes (an over-reading: a word that is not a file
    /// names nothing to protect), without a leading `!` or option words.
    static func commandWords(_ value: String) -> [String] {
        let separators = Set(" \t\"'\\$`;|&<>(){}=,".unicodeScalars)
        return Substring(value).unicodeScalars.split(whereSeparator: { separators.contains($0) }).compactMap {
            var w = String(Substring($0))
            while w.unicodeScalars.first == "!" { w.unicodeScalars.removeFirst() }
            return w.isEmpty || w.hasPrefix("-") || w.hasPrefix("~") ? nil : w
        }
    }

    /// Values of `core.fsmonitor` that select git's built-in daemon, not a command.
    static let fsmonitorBooleans: Set<String> = ["true", "false", "yes", "no", "on", "off", "1", "0"]

    /// Whether (section, key) is an include (`include.path`, `includeIf.<cond>.path`).
    static func isInclude(section: String, key: String) -> Bool {
        key == "path" && (section == "include" || section.hasPrefix("includeif"))
    }

    /// Whether (section, key) names a file git runs or reads: a hooks directory, an
    /// fsmonitor command, an include.
    static func namesAFile(section: String, key: String, value: String) -> Bool {
        (section == "core" && key == "hookspath") || isInclude(section: section, key: key)
            || (section == "core" && key == "fsmonitor" && !value.isEmpty && !fsmonitorBooleans.contains(value.lowercased()))
    }

    /// The targets named by `config`: hooks and fsmonitor relative to the work tree
    /// `repoRoot`, includes relative to `configDir` (the directory of the config file).
    /// `home`: the invoker's, for a value git expands from `~/` (red team, session 43:
    /// `hooksPath = ~/.githooks` with HOME in the work tree was taken literally).
    static func targets(config: String, repoRoot: String, configDir: String? = nil, home: String? = nil) -> [Target] {
        let gitDir = configDir ?? repoRoot + "/.git"
        var out: [Target] = []
        for (section, key, value, plain) in entries(config) {
            // Trimmed already as git trims (ASCII blanks of an unquoted value only).
            var v = value
            if v.unicodeScalars.first == "~" {
                // git expands `~/…` and `~` with HOME, `~user/…` with that user's.
                if v == "~" || v.hasPrefix("~/"), let home, home.hasPrefix("/") {
                    v = home + String(v.dropFirst())
                } else if (section == "core" && key == "hookspath") || isInclude(section: section, key: key) {
                    out.append(Target(key: "\(section).\(key)", path: "", unreadable: "it names another user's home (~user)"))
                    continue
                }
            }
            // `diff "y"` and `textconv` read back as git writes them: `diff.y.textconv`.
            var keyName = ""
            for c in section.unicodeScalars where c != "\"" { keyName.unicodeScalars.append(c == " " ? "." : c) }
            keyName += "." + key
            let relevant = (section == "core" && ["hookspath", "fsmonitor", "worktree"].contains(key))
                || isInclude(section: section, key: key)
            if relevant && !plain {
                out.append(Target(key: keyName, path: "", unreadable: "its value uses escapes, an inner quote or a continued line"))
                continue
            }
            if v.isEmpty { continue }
            switch (section, key) {
            case ("core", "worktree"):
                out.append(Target(key: "core.worktree", path: "", unreadable: "it moves the work tree the other paths are resolved against"))
            case ("core", "hookspath"):
                out.append(Target(key: "core.hooksPath", path: resolve(v, against: repoRoot)))
            case ("core", "fsmonitor"):
                // A boolean selects git's built-in daemon; anything else is a command.
                if fsmonitorBooleans.contains(v.lowercased()) { continue }
                // A command line, run by a shell from the work tree: every word may
                // name a file (`sh fsmon.sh`), and shell syntax could name any.
                if v.unicodeScalars.contains(where: { "\"'\\$`;|&<>(){}*?[~\t".unicodeScalars.contains($0) }) {
                    out.append(Target(key: "core.fsmonitor", path: "", unreadable: "its command uses shell syntax"))
                    continue
                }
                let words = Substring(v).unicodeScalars.split(separator: " ").map { String(Substring($0)) }
                for w in words {
                    out.append(Target(key: "core.fsmonitor", path: resolve(w, against: repoRoot)))
                }
            case _ where isInclude(section: section, key: key):
                out.append(Target(key: section.hasPrefix("includeif") ? "includeIf.path" : "include.path",
                                  path: resolve(v, against: gitDir)))
            case _ where isCommand(section: section, key: key):
                for w in commandWords(v) {
                    out.append(Target(key: keyName, path: resolve(w, against: repoRoot), commandWord: w))
                }
            default: continue
            }
        }
        return out
    }

    static func resolve(_ value: String, against base: String) -> String {
        let raw = value.hasPrefix("/") ? value : base + "/" + value
        // Split at slash bytes: a slash and a combining mark are one Character, so
        // `.git/../\u{301}h` kept its `..` inside a part and looked like a path under
        // .git (red team, session 43).
        var parts: [String] = []
        for p in PathText.components(raw) {
            if PathText.same(p, ".") { continue }
            if PathText.same(p, "..") { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(p)
        }
        return "/" + parts.joinedText(separator: "/")
    }

    /// (section, key, value) with section and key lower-cased; a subsection is kept
    /// in the section name (`includeif "gitdir:x"`). Enough of git-config(1) for the
    /// keys above: comments, quoted values, no continuation lines. Parsed by Unicode
    /// scalars, not Characters: a combining mark after `=`, `[`, `"` or `#` is one
    /// Character with it, which hid the syntax from a Character parse while git,
    /// which reads bytes, sees it (red team, session 43: `hooksPath =\u{301}h` was
    /// skipped and the hooks it names left writable).
    static func entries(_ text: String) -> [(String, String, String, Bool)] {
        typealias Scalars = Substring.UnicodeScalarView
        func trimmed(_ s: Scalars) -> Scalars {
            var s = s
            while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
            while let l = s.last, l == " " || l == "\t" { s.removeLast() }
            return s
        }
        func string(_ s: Scalars) -> String { String(Substring(s)) }
        var section = ""
        var out: [(String, String, String, Bool)] = []
        for rawLine in Substring(text).unicodeScalars.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            var line = trimmed(rawLine)
            if line.isEmpty || line.first == "#" || line.first == ";" { continue }
            if line.first == "[" {
                // The header ends at the first `]` outside the quoted subsection
                // (`[includeIf "gitdir:/r[2]/"] path = x`: the first `]` is inside
                // the quotes; red team, session 43).
                var close: Scalars.Index? = nil
                var quoted = false, escaped = false
                for i in line.indices {
                    let c = line[i]
                    if escaped { escaped = false; continue }
                    if quoted && c == "\\" { escaped = true; continue }
                    if c == "\"" { quoted.toggle(); continue }
                    if c == "]" && !quoted { close = i; break }
                }
                guard let close else { continue }
                section = string(line[line.index(after: line.startIndex)..<close]).lowercased()
                let rest = trimmed(line[line.index(after: close)...])
                if rest.isEmpty { continue }
                line = rest   // `[core] hooksPath = x` on one line
            }
            guard let eq = line.firstIndex(of: "=") else { continue }
            let key = string(trimmed(line[..<eq])).lowercased()
            var value = trimmed(line[line.index(after: eq)...])
            // Plain: no backslash (escapes, a continued line) and either no quote or
            // one pair around the whole value, as git reads it then.
            var plain = !value.contains("\\")
            if value.first == "\"" {
                value.removeFirst()
                if let end = value.firstIndex(of: "\"") {
                    let after = trimmed(value[value.index(after: end)...])
                    if !(after.isEmpty || after.first == "#" || after.first == ";") { plain = false }
                    value = value[..<end]
                } else { plain = false }
            } else {
                if let c = value.firstIndex(where: { $0 == "#" || $0 == ";" }) { value = trimmed(value[..<c]) }
                if value.contains("\"") { plain = false }
            }
            out.append((section, key, string(value), plain))
        }
        return out
    }
}
