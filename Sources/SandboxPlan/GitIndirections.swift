import FoundationEssentials
import SandboxPolicy

/// What a git config names that git on the host runs or reads, read as git reads it:
/// `core.hooksPath` and `init.templateDir` (husky and lefthook point the first into
/// the work tree; the second's hooks are copied into every clone), `core.fsmonitor`
/// and every other command-valued key (`isCommand`), `include.path` and
/// `includeIf.<cond>.path`, and local remotes (their hooks run on push). Protecting
/// `.git` alone leaves these writable, and the host's next `git commit`, `git status`
/// or `git push` would run what the command planted there. `GitProtection` protects
/// them when the policy protects `.git`.
enum GitIndirections {
    struct Target: Equatable {
        /// The config key as git writes it, e.g. `core.hooksPath`, `diff.y.textconv`.
        var key: String
        /// Absolute, normalised.
        var path: String
        /// Set for a value that cannot be resolved as git would (`~user`), or a key
        /// that moves where git resolves the others (`core.worktree`): the plan is
        /// refused rather than protect another path than git's (red team, session 43).
        var unreadable: String? = nil
        /// The word as written, for a word of a command-valued key (`commandWords`):
        /// protected when it names a file that exists, reported missing only when it
        /// is written as a path.
        var commandWord: String? = nil
        /// An included config, to be read in turn.
        var isInclude = false
        /// A local remote: protected only when it is a repository.
        var isRemote = false
    }

    /// Keys whose value is a command or a program git runs (from the top of the work
    /// tree, where a relative word names a file the command can write), by the key's
    /// last part: `core.pager`, `core.editor`, `sequence.editor`, `core.sshCommand`,
    /// `core.askPass`, `core.gitProxy`, `diff.external`, `diff.<driver>.command`/
    /// `textconv`, `filter.<driver>.clean`/`smudge`/`process`, `merge.<driver>.driver`,
    /// `credential.helper`, `gpg.program`, `gpg.ssh.defaultKeyCommand`,
    /// `interactive.diffFilter`, `remote.<name>.uploadpack`/`receivepack`,
    /// `imap.tunnel`, `instaweb.httpd`, `sendemail.smtpServer`; every key ending in
    /// `cmd`, `command` or `hook` (`sendemail.toCmd`, `core.alternateRefsCommand`,
    /// `uploadpack.packObjectsHook`, `trailer.*.cmd`, difftool and mergetool `cmd`);
    /// a `path` of difftool, mergetool, browser, man and lfs.customtransfer tools;
    /// `alias.*` and `pager.*` whole; `submodule.<name>.update`.
    static let commandKeys: Set<String> = ["pager", "editor", "sshcommand", "askpass", "gitproxy", "external",
                                           "textconv", "clean", "smudge", "process", "driver", "helper",
                                           "program", "difffilter", "uploadpack", "receivepack", "browser",
                                           "tunnel", "httpd", "smtpserver"]

    static func isCommand(section: String, key: String) -> Bool {
        if section == "alias" || section == "pager" { return true }
        if key == "path" {
            return ["difftool", "mergetool", "browser", "man", "lfs"].contains { section.hasPrefix($0) }
        }
        if key == "update" { return section.hasPrefix("submodule") }
        if section.hasPrefix("remote") && (key == "uploadpack" || key == "receivepack") { return true }
        return commandKeys.contains(key) || key.hasSuffix("cmd") || key.hasSuffix("command") || key.hasSuffix("hook")
    }

    /// Whether `targets` reads (section, key): a value of any other key may hold
    /// what is not UTF-8 (a Latin-1 `user.name`) without refusing the plan.
    static func isRead(section: String, key: String) -> Bool {
        isCommand(section: section, key: key) || isInclude(section: section, key: key)
            || (section == "core" && ["hookspath", "fsmonitor", "worktree"].contains(key))
            || (section == "init" && key == "templatedir") || (section == "extensions" && key == "objectformat")
            || (section.hasPrefix("remote") && ["url", "pushurl", "pushdefault"].contains(key))
            || (section.hasPrefix("branch") && ["remote", "pushremote"].contains(key))
    }

    /// `diff "y"` and `textconv` as git writes them: `diff.y.textconv`.
    static func keyName(section: String, key: String) -> String {
        guard !section.isEmpty else { return key }
        let s = section.unicodeScalars
        guard let space = s.firstIndex(of: " ") else { return section + "." + key }
        // `base "subsection"`: the subsection between the first quote and the last.
        let sub = s[s.index(space, offsetBy: 2)..<s.index(before: s.endIndex)]
        return String(String.UnicodeScalarView(s[..<space])) + "." + String(String.UnicodeScalarView(sub)) + "." + key
    }

    /// The words of a command value that may name a file: split at blanks and at
    /// shell syntax, quotes and escapes (an over-reading: a word that is not a file
    /// names nothing to protect), without a leading `!`, option words or variable
    /// assignments; `~` and `~/` expanded with `home` as the shell would (red team,
    /// session 44: `sh ~/dotfiles/bin/editor` was dropped).
    static func commandWords(_ value: String, home: String) -> [String] {
        let separators = Set(" \t\n\"'\\$`;|&<>(){},".unicodeScalars)
        return Substring(value).unicodeScalars.split(whereSeparator: { separators.contains($0) }).compactMap {
            var w = String(Substring($0))
            while w.unicodeScalars.first == "!" { w.unicodeScalars.removeFirst() }
            // `-c core.hooksPath=./h`, `-oProxyCommand=./p`, `VAR=./x`: what follows
            // the first `=` may name a file (red team, session 44).
            if let eq = w.unicodeScalars.firstIndex(of: "=") {
                w = String(String.UnicodeScalarView(w.unicodeScalars[w.unicodeScalars.index(after: eq)...]))
            }
            if w.isEmpty || w.hasPrefix("-") { return nil }
            if w.unicodeScalars.first == "~" {
                guard w == "~" || w.unicodeScalars.dropFirst().first == "/", PathText.isAbsolute(home) else { return nil }
                w = home + String(String.UnicodeScalarView(w.unicodeScalars.dropFirst()))
            }
            return w
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

    /// The targets named by `config`'s text (one target refusing the plan when git
    /// would refuse the file).
    static func targets(config: String, repoRoot: String, configDir: String? = nil, home: String? = nil) -> [Target] {
        guard let entries = entries(config) else {
            return [Target(key: "config", path: "", unreadable: "it is not a config git can read (git would refuse it)")]
        }
        return targets(entries: entries, repoRoot: repoRoot, configDir: configDir ?? repoRoot + "/.git", home: home)
    }

    /// The targets named by a config's entries: hooks, templates, fsmonitor and
    /// command words relative to the work tree `repoRoot`, includes relative to
    /// `configDir` (the directory of the config file). `home`: the invoker's, for a
    /// value git expands from `~/` (red team, session 43: `hooksPath = ~/.githooks`
    /// with HOME in the work tree was taken literally).
    static func targets(entries: [(String, String, String)], repoRoot: String, configDir: String, home: String?) -> [Target] {
        var out: [Target] = []
        for (section, key, value) in entries {
            let keyName = keyName(section: section, key: key)
            let isPath = (section == "core" && key == "hookspath") || (section == "init" && key == "templatedir")
                || isInclude(section: section, key: key)
            var v = value
            if isPath && v.unicodeScalars.first == "~" {
                // git expands `~/…` and `~` with HOME, `~user/…` with that user's.
                if v == "~" || v.unicodeScalars.dropFirst().first == "/", let home, PathText.isAbsolute(home) {
                    v = home + String(String.UnicodeScalarView(v.unicodeScalars.dropFirst()))
                } else {
                    out.append(Target(key: keyName, path: "", unreadable: "it names another user's home (~user)"))
                    continue
                }
            }
            if isPath && v.utf8.starts(with: "%(prefix)/".utf8) {
                out.append(Target(key: keyName, path: "", unreadable: "it names git's install prefix"))
                continue
            }
            if section == "core" && key == "worktree" {
                // The work tree it was found as (a submodule's, `../../../lib`) is no move.
                if !v.isEmpty, PathText.same(resolve(v, against: configDir), repoRoot) { continue }
                out.append(Target(key: "core.worktree", path: "", unreadable: "it moves the work tree the other paths are resolved against"))
                continue
            }
            // Only an alias starting with `!` runs a shell; the others are git's own
            // commands (red team, session 44: `alias.lg = log …` beside a link `log`).
            if section == "alias" && v.unicodeScalars.first != "!" { continue }
            if v.isEmpty { continue }
            switch (section, key) {
            case ("core", "hookspath"):
                out.append(Target(key: "core.hooksPath", path: join(v, against: repoRoot)))
                // Husky's `.husky/_`: each hook there runs `.husky/<hook>` (red team,
                // session 44), so the directory above is protected too.
                if PathText.components(v).last.map({ PathText.same($0, "_") }) == true {
                    out.append(Target(key: "core.hooksPath (husky)", path: join(v + "/..", against: repoRoot)))
                }
            case ("init", "templatedir"):
                out.append(Target(key: "init.templateDir", path: join(v, against: repoRoot)))
            case ("core", "fsmonitor"):
                // A boolean selects git's built-in daemon; anything else is a command.
                if fsmonitorBooleans.contains(v.lowercased()) { continue }
                // A command line, run by a shell from the work tree: every word may
                // name a file (`sh fsmon.sh`), and shell syntax could name any.
                if v.unicodeScalars.contains(where: { "\"'\\$`;|&<>(){}*?[~\t\n".unicodeScalars.contains($0) }) {
                    out.append(Target(key: "core.fsmonitor", path: "", unreadable: "its command uses shell syntax"))
                    continue
                }
                for w in Substring(v).unicodeScalars.split(separator: " ").map({ String(Substring($0)) }) {
                    out.append(Target(key: "core.fsmonitor", path: join(w, against: repoRoot)))
                }
            case _ where isInclude(section: section, key: key):
                out.append(Target(key: section.hasPrefix("includeif") ? "includeIf.path" : "include.path",
                                  path: join(v, against: configDir), isInclude: true))
            case _ where (section.hasPrefix("remote") && (key == "url" || key == "pushurl" || key == "pushdefault"))
                || (section.hasPrefix("branch") && (key == "remote" || key == "pushremote")):
                // A local repository: its hooks run on push (red team, session 44). A
                // URL is local when it has no scheme and no `host:` (git's rule); a
                // remote's name in its place is a URL too (`pushRemote = ./backup.git`).
                var url = v
                if url.hasPrefix("file://") { url = String(url.dropFirst("file://".count)) }
                if let colon = url.unicodeScalars.firstIndex(of: ":"),
                   !(url.unicodeScalars.firstIndex(of: "/").map { $0 < colon } ?? false) { continue }
                out.append(Target(key: keyName, path: join(url, against: repoRoot), isRemote: true))
            case _ where section.hasPrefix("submodule") && key == "update":
                // `!command`, run in the submodule's directory (its name, in the
                // subsection, is its path unless set otherwise).
                guard v.unicodeScalars.first == "!", let quote = section.unicodeScalars.firstIndex(of: "\"") else { continue }
                let name = String(String.UnicodeScalarView(section.unicodeScalars[section.unicodeScalars.index(after: quote)...].dropLast()))
                for w in commandWords(v, home: home ?? "") {
                    out.append(Target(key: keyName, path: join(w, against: join(name, against: repoRoot)), commandWord: w))
                }
            case _ where isCommand(section: section, key: key):
                for w in commandWords(v, home: home ?? "") {
                    out.append(Target(key: keyName, path: join(w, against: repoRoot), commandWord: w))
                }
            default: continue
            }
        }
        return out
    }

    /// `value` against `base` as written, `..` kept: `GitProtection.real` resolves it
    /// as the kernel does (a `..` after a symlink leaves what the link reached).
    static func join(_ value: String, against base: String) -> String {
        PathText.isAbsolute(value) ? value : base + "/" + value
    }

    /// `value` against `base`, `..` taken from the text: for paths compared, not
    /// opened (the ones opened go through `join` and `GitProtection.real`).
    static func resolve(_ value: String, against base: String) -> String {
        let raw = PathText.isAbsolute(value) ? value : base + "/" + value
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

    /// (section, key, value) as git's own config parser (config.c: `git_parse_source`,
    /// `get_base_var`, `get_value`, `parse_value`) reads them: section and key
    /// lower-cased, a subsection kept case and all in the section name
    /// (`includeif "gitdir:x"`, the old `[a.b]` form as `a "b"`); values with quotes
    /// toggled anywhere, the escapes `\"` `\\` `\n` `\t` `\b`, a backslash-newline
    /// continuing the line, `#` and `;` comments outside quotes, blanks outside quotes
    /// kept as single spaces between words and dropped at the ends, CRLF as LF. A key
    /// without `=` has the value "" (git's boolean true). nil where git itself would
    /// refuse the file (it then runs nothing from it, but the plan cannot know what a
    /// fixed file will say: the callers refuse). Read by Unicode scalars: git's syntax
    /// is ASCII, which no scalar of a longer UTF-8 sequence contains, and a combining
    /// mark after `=` or `"` stays a scalar of its own (red team, session 43).
    /// Before, values were read only as far as a simple form went and the rest refused
    /// or misread (red team, session 44: `clean = "\"/usr/bin/env\" ./tools/fmt.sh"`,
    /// the form `git config` itself writes, protected nothing).
    static func entries(_ text: String) -> [(String, String, String)]? {
        var scalars = Array(text.unicodeScalars)
        if scalars.first == "\u{FEFF}" { scalars.removeFirst() }   // a UTF-8 byte order mark
        var at = 0
        var eof = false
        // git's get_next_char: CRLF read as LF, the end as one last LF.
        func next() -> Unicode.Scalar {
            guard at < scalars.count else { eof = true; return "\n" }
            var c = scalars[at]; at += 1
            if c == "\r", at < scalars.count, scalars[at] == "\n" { c = "\n"; at += 1 }
            return c
        }
        func isSpace(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" || c == "\n" || c == "\r" }
        func isAlpha(_ c: Unicode.Scalar) -> Bool { (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") }
        func isKeyChar(_ c: Unicode.Scalar) -> Bool { isAlpha(c) || (c >= "0" && c <= "9") || c == "-" }
        func lower(_ c: Unicode.Scalar) -> Unicode.Scalar { c >= "A" && c <= "Z" ? Unicode.Scalar(c.value + 32)! : c }
        var out: [(String, String, String)] = []
        // Git takes a key before any section header, with no section.
        var section: String? = ""
        var comment = false
        while true {
            var c = next()
            if c == "\n" {
                if eof { return out }
                comment = false
                continue
            }
            if comment || isSpace(c) { continue }
            if c == "#" || c == ";" { comment = true; continue }
            if c == "[" {
                // get_base_var: key characters and dots, then `]` or a blank and a
                // quoted subsection.
                var base = ""
                var subsection: String? = nil
                while true {
                    let d = next()
                    if eof { return nil }
                    if d == "]" { break }
                    if isSpace(d) {
                        var e = d
                        repeat {
                            if e == "\n" { return nil }
                            e = next()
                        } while isSpace(e)
                        guard e == "\"" else { return nil }
                        var sub = ""
                        while true {
                            var f = next()
                            if f == "\n" { return nil }
                            if f == "\"" { break }
                            if f == "\\" { f = next(); if f == "\n" { return nil } }
                            sub.unicodeScalars.append(f)
                        }
                        guard next() == "]" else { return nil }
                        subsection = sub
                        break
                    }
                    guard isKeyChar(d) || d == "." else { return nil }
                    base.unicodeScalars.append(lower(d))
                }
                guard !base.isEmpty else { return nil }
                if subsection == nil, let dot = base.firstIndex(of: ".") {
                    // `[a.b]`, the old form: a subsection, lower-cased.
                    subsection = String(base[base.index(after: dot)...])
                    base = String(base[..<dot])
                }
                section = subsection.map { base + " \"" + $0 + "\"" } ?? base
                continue
            }
            guard isAlpha(c), let current = section else { return nil }
            // get_value: the key, blanks, then `=` and the value or the line's end.
            var key = String(lower(c))
            while true {
                c = next()
                if eof || !isKeyChar(c) { break }
                key.unicodeScalars.append(lower(c))
            }
            while c == " " || c == "\t" { c = next() }
            var value = ""
            if c != "\n" {
                guard c == "=" else { return nil }
                // parse_value.
                var quote = false, inComment = false, spaces = 0
                while true {
                    var d = next()
                    if d == "\n" {
                        if quote { return nil }
                        break
                    }
                    if inComment { continue }
                    if isSpace(d) && !quote {
                        if !value.isEmpty { spaces += 1 }
                        continue
                    }
                    if !quote && (d == ";" || d == "#") { inComment = true; continue }
                    while spaces > 0 { value.unicodeScalars.append(" "); spaces -= 1 }
                    if d == "\\" {
                        d = next()
                        switch d {
                        case "\n": continue
                        case "t": d = "\t"
                        case "b": d = "\u{8}"
                        case "n": d = "\n"
                        case "\\", "\"": break
                        default: return nil
                        }
                        value.unicodeScalars.append(d)
                        continue
                    }
                    if d == "\"" { quote.toggle(); continue }
                    value.unicodeScalars.append(d)
                }
            }
            out.append((current, key, value))
            if eof { return out }
        }
    }
}
