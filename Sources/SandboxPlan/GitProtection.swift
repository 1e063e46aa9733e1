import SandboxPolicy

/// With `.git` protected, what else git on the host runs or reads from a writable
/// directory, found as git finds it, and protected (or the plan refused):
///
/// 1. Every repository enclosing the writable directory, walking up as git's
///    discovery does past a `.git` that is no repository (red team, session 44: an
///    empty `.git` made by one run in a subdirectory hid the monorepo above it from
///    the next plan, whose hooks path pointed into that subdirectory).
/// 2. Its git directory and common directory when they lie in a writable path (a
///    `.git` file naming `./.bare`, `--separate-git-dir`), its linked worktrees
///    (`<common>/worktrees/*/gitdir`) that do, with their `.git` files.
/// 3. The configs git reads there — the common config, `config.worktree`, the
///    per-user and system configs, their includes — read through symlinks (stow and
///    home-manager link them) and parsed as git parses them (`GitIndirections`); a
///    config file itself in a writable path is protected.
/// 4. What those configs name: hooks (`core.hooksPath`, `init.templateDir`), the
///    words of fsmonitor and every other command-valued key, includes, local remotes,
///    resolved against each work tree git applies them in.
/// 5. Submodules, from each index's gitlinks and `.gitmodules`, nested (`submodules`).
///
/// A target behind a symlink in a writable path is refused: the command could
/// replace the link (or a directory on the way) and git would follow the new one.
struct GitProtection {
    let files: any FileInspector
    let home: String
    let environment: [String: String]
    let writable: [String]
    /// What to protect: the key that names it, the path, the writable root holding it.
    private(set) var out: [(key: String, path: String, home: String)] = []
    var notApplied: [String] = []
    /// Git directories protected whole (each writable root's `.git` by the policy,
    /// and those found in writable paths): nothing beneath them is protected again.
    private var protectedGitDirs: [String]

    init(files: any FileInspector, home: String, environment: [String: String], writable: [String]) {
        self.files = files; self.home = home; self.environment = environment; self.writable = writable
        protectedGitDirs = writable.map { $0 + "/.git" }
    }

    /// The hooks git runs (githooks(5)): other files in a hooks directory (husky's
    /// helper `h`, samples) are not hooks.
    static let hookNames: Set<String> = [
        "applypatch-msg", "pre-applypatch", "post-applypatch", "pre-commit", "pre-merge-commit",
        "prepare-commit-msg", "commit-msg", "post-commit", "pre-rebase", "post-checkout", "post-merge",
        "pre-push", "pre-receive", "update", "proc-receive", "post-receive", "post-update",
        "reference-transaction", "push-to-checkout", "pre-auto-gc", "post-rewrite", "sendemail-validate",
        "fsmonitor-watchman", "p4-changelist", "p4-prepare-changelist", "p4-post-changelist", "p4-pre-submit",
        "post-index-change",
    ]

    static func refusal(_ message: String) -> PlanError {
        PlanError(key: "filesystem.protect", message: message)
    }

    func innermostWritable(_ path: String) -> String? {
        writable.filter({ PathText.isBeneath(path, $0) }).max(by: { $0.utf8.count < $1.utf8.count })
    }

    func isCovered(_ path: String) -> Bool { protectedGitDirs.contains { PathText.isBeneath(path, $0) } }

    static func parent(_ path: String) -> String { PathText.parent(path) }

    // MARK: Protecting

    /// A file with another link: the command writes it through that one (red team,
    /// session 44: a filter script linked from `.cache/` before the filter was set; a
    /// hook in a protected hooks directory linked from `scripts/`). A directory's
    /// files are looked at too, two levels and 1 024 entries down.
    func checkLinks(_ p: String, key: String, depth: Int, budget: inout Int) throws {
        switch files.kind(of: p) {
        case .file?:
            if let links = files.linkCount(of: p), links > 1 {
                throw Self.refusal("\(p) (\(key)) has \(links) hard links; the command could write it through another, which a mount does not cover. Make it a file of its own (cp, then mv over it) or remove the setting")
            }
        case .directory? where depth < 3:
            // Samples git never runs (a deduplicating tool links them across repositories).
            for name in files.directoryEntries(of: p) ?? [] where !name.hasSuffix(".sample") {
                budget -= 1
                if budget < 0 { return }
                try checkLinks(p + "/" + name, key: key, depth: depth + 1, budget: &budget)
            }
        default: return
        }
    }

    /// Protects `raw` when a writable path holds it: refused when it is the writable
    /// directory itself, or (by `real`) a symlink in a writable path is on the way
    /// (pins keep real directories in place, not links); reported when missing
    /// (`missing` says what a file created there would do, nil: not reported).
    mutating func protect(_ raw: String, key: String, missing: String? = "", checkingLinks: Bool = true) throws {
        // Resolved, so no symlink is left on the way: what `real` met in a writable
        // path it refused; from a missing component on, nothing exists to protect.
        let path = try real(raw, what: key)
        guard !isCovered(path), let root = innermostWritable(path) else { return }
        if PathText.same(path, root) {
            throw Self.refusal("\(key) names \(path), the writable directory itself; git on the host would run what the command writes there. Point it elsewhere or do not make that directory writable")
        }
        if files.kind(of: path) == nil {
            if let missing {
                notApplied.append("filesystem.protect: \(key) names \(path), which does not exist, so it cannot be protected\(missing.isEmpty ? "; what the command creates there runs with the host's next git command" : missing)")
            }
            return
        }
        if checkingLinks {
            var budget = 1024
            try checkLinks(path, key: key, depth: 0, budget: &budget)
        }
        if !out.contains(where: { PathText.same($0.path, path) }) { out.append((key, path, root)) }
    }

    /// A git directory (or common directory) in a writable path is protected whole;
    /// one that is the writable directory itself (a bare repository the command runs
    /// in) has what git runs or reads there protected: its config, hooks, HEAD and
    /// the worktrees' and submodules' git directories.
    mutating func protectGitDirectory(_ dir: String, key: String) throws {
        guard !isCovered(dir), let root = innermostWritable(dir) else { return }
        if PathText.same(dir, root) {
            for name in ["config", "config.worktree", "hooks", "HEAD", "commondir", "worktrees", "modules", "info"] {
                if files.kind(of: dir + "/" + name) != nil { try protect(dir + "/" + name, key: key) }
                else if ["hooks", "commondir", "config"].contains(name) {
                    // Made by the command, it would move git's config, hooks and refs
                    // (red team, session 44); reported in createdEntries then.
                    notApplied.append("filesystem.protect: \(dir) is a bare repository and the writable directory; its \(name) does not exist, so it cannot be protected, and one the command creates is reported in createdEntries")
                }
            }
            return
        }
        // Objects of a repository cloned locally are hard links; what git runs or
        // reads as code (config, hooks) is checked.
        try protect(dir, key: key, checkingLinks: false)
        var budget = 1024
        for name in ["config", "config.worktree", "hooks"] { try checkLinks(dir + "/" + name, key: key, depth: 1, budget: &budget) }
        protectedGitDirs.append(dir)
    }

    // MARK: Reading git's files

    /// `path` as the kernel resolves it: every symlink on the way followed (40 at
    /// most), `..` taken from what was reached, not from the text (red team, session
    /// 44: `~/.config -> dotfiles/config` holding `git/config -> ../../gitconfig`, and
    /// a HOME reached through `/home -> /var/home`, were read or matched as other
    /// paths than git's). A symlink in a writable path is refused: the command could
    /// point it at a file of its own. From a missing component on, the rest is taken
    /// as written.
    func real(_ path: String, what: String) throws -> String {
        try CanonicalPaths.walk(path, files: files, link: { at, _, followed in
            if !isCovered(at), innermostWritable(at) != nil {
                throw Self.refusal("\(at) is a symlink in a writable directory on the way to \(path) (\(what)); the command could point it elsewhere, and git on the host would follow the new one. Replace the link or do not protect .git here")
            }
            guard followed else {
                throw Self.refusal("\(path) (\(what)) leads through more than 40 symlinks; sandbox cannot tell what git reads there")
            }
        }, upPastMissing: { reached in
            // Past a missing directory `..` depends on what the command puts there
            // (a link to elsewhere), so the path cannot be known now.
            if innermostWritable(reached) != nil {
                throw Self.refusal("\(path) (\(what)) goes up with .. from a directory that does not exist in a writable path; the command could make it a link, and git would follow it. Write the path without ..")
            }
        })
    }

    /// The text of a file git reads (a config, a `.git` file, `.gitmodules`): through
    /// symlinks, protected when it lies in a writable path (`protectIt`), nil when
    /// absent. A file that exists but cannot be read, or is not UTF-8, refuses the
    /// plan: git would read what sandbox did not.
    mutating func read(_ path: String, what: String, maxBytes: Int = 1 << 20, protectIt: Bool = true,
                       anyText: Bool = false) throws -> String? {
        let real = try real(path, what: what)
        guard files.kind(of: real) != nil else { return nil }
        if protectIt { try protect(real, key: what) }
        guard let text = files.contents(of: real, maxBytes: maxBytes) else {
            throw Self.refusal("\(real) (\(what)) could not be read (not a regular file, or larger than \(maxBytes >> 10) KiB); sandbox cannot tell what git would run from it. Do not protect .git here")
        }
        if !anyText && PathText.hasReplacementCharacter(text) {
            throw Self.refusal("\(real) (\(what)) is not valid UTF-8 (or holds U+FFFD); the paths git reads from it cannot be protected as text. Fix the file or do not protect .git")
        }
        return text
    }

    /// A config's entries as git reads them; a file git would refuse refuses the plan.
    mutating func config(_ path: String, what: String, protectIt: Bool = true) throws -> [(String, String, String)]? {
        guard let text = try read(path, what: what, protectIt: protectIt, anyText: true) else { return nil }
        guard let entries = GitIndirections.entries(text) else {
            throw Self.refusal("\(path) (\(what)) is not a config git can read; sandbox cannot tell what git would run from it once fixed. Fix it or do not protect .git here")
        }
        // Bytes that are not UTF-8 decode as U+FFFD: another path than git's, but
        // only in a value the search reads (red team, session 44: a Latin-1
        // `user.name` in ~/.gitconfig refused every run).
        for (section, key, value) in entries where GitIndirections.isRead(section: section, key: key) && PathText.hasReplacementCharacter(value) {
            throw Self.refusal("\(path) (\(what)) sets \(GitIndirections.keyName(section: section, key: key)) to a value that is not valid UTF-8; the paths git reads from it cannot be protected as text. Fix it or do not protect .git")
        }
        return entries
    }

    /// The git directory a `.git` file names (`gitdir: …`, relative to the file's
    /// directory), nil when it names none.
    mutating func gitFileTarget(_ dotGit: String) throws -> String? {
        guard let text = try read(dotGit, what: "a .git file", maxBytes: 4096),
              let line = text.split(separator: "\n").first, line.hasPrefix("gitdir:") else { return nil }
        // Git strips the line's end, CRLF too (red team, session 43).
        var target = line.dropFirst("gitdir:".count).trimmingBlanks(newlines: true)
        while target.unicodeScalars.last == "\r" { target.unicodeScalars.removeLast() }
        guard !target.isEmpty else { return nil }
        return GitIndirections.resolve(target, against: Self.parent(dotGit))
    }

    /// What git's `is_git_directory` asks: a HEAD, and objects and refs (here or in
    /// the common directory a linked worktree's names).
    func isGitDirectory(_ dir: String) -> Bool {
        guard let head = files.kind(of: dir + "/HEAD"), head != .directory else { return false }
        if files.kind(of: dir + "/commondir") == .file { return true }
        return files.kind(of: dir + "/objects") != nil && files.kind(of: dir + "/refs") != nil
    }

    // MARK: The search

    struct Repository {
        var workTree: String
        var gitDir: String
        var commonDir: String
    }

    /// Every repository git would find from `root` or any directory above it.
    mutating func enclosingRepositories(of root: String) throws -> [Repository] {
        var found: [Repository] = []
        var dir = root
        while true {
            let dotGit = (dir == "/" ? "" : dir) + "/.git"
            var gitDir: String? = nil
            switch files.kind(of: dotGit) {
            case .directory?: gitDir = dotGit
            case .file?: gitDir = try gitFileTarget(dotGit)
            case .symlink?: gitDir = try real(dotGit, what: "a .git symlink")
            default: break
            }
            // The directory itself a git directory (a bare repository, its worktrees
            // inside it): git's discovery asks this after `dir/.git` (red team,
            // session 44: the command's hooks in a bare repository it ran in).
            if gitDir == nil || !isGitDirectory(gitDir!), dir != "/", isGitDirectory(dir) { gitDir = dir }
            if let g = gitDir, isGitDirectory(g) {
                var common = g
                if let text = try read(g + "/commondir", what: "a git commondir file", maxBytes: 4096, protectIt: false)?
                    .trimmingBlanks(newlines: true), !text.isEmpty {
                    common = GitIndirections.resolve(text, against: g)
                }
                found.append(Repository(workTree: dir, gitDir: g, commonDir: common))
            }
            if dir == "/" { return found }
            dir = Self.parent(dir)
        }
    }

    /// The linked worktrees of a common directory: (work tree, its git directory).
    mutating func linkedWorktrees(of commonDir: String) throws -> [(workTree: String, gitDir: String)] {
        guard let names = files.directoryEntries(of: commonDir + "/worktrees") else { return [] }
        var out: [(String, String)] = []
        for name in names.prefix(256) where !PathText.hasReplacementCharacter(name) {
            let gitDir = commonDir + "/worktrees/" + name
            guard let text = try read(gitDir + "/gitdir", what: "a linked worktree's gitdir file", maxBytes: 4096, protectIt: false)?
                .trimmingBlanks(newlines: true), PathText.isAbsolute(text), PathText.endsWith(text, "/.git") else { continue }
            out.append((Self.parent(GitIndirections.resolve(text, against: "/")), gitDir))
        }
        return out
    }

    /// Whether `dir` is a checkout (a `.git` in it, or itself a git directory); if so,
    /// its repository and those enclosing it are added to `repositories`, each once.
    private mutating func addCheckout(_ dir: String, to repositories: inout [Repository]) throws -> Bool {
        guard files.kind(of: dir + "/.git") != nil || isGitDirectory(dir) else { return false }
        for repo in try enclosingRepositories(of: dir) where !repositories.contains(where: { PathText.same($0.gitDir, repo.gitDir) }) {
            repositories.append(repo)
        }
        return true
    }

    /// The whole search from one writable root (step 1–5 above).
    mutating func search(from root: String) throws {
        var repositories = try enclosingRepositories(of: root)
        let insideARepository = !repositories.isEmpty
        // The policy's own `.git` is protected by the policy; what git runs from it
        // must not be writable through a second hard link either (red team, session 44).
        if files.kind(of: root + "/.git") == .directory {
            var budget = 1024
            for name in ["config", "config.worktree", "hooks"] {
                try checkLinks(root + "/.git/" + name, key: "the repository's .git", depth: 1, budget: &budget)
            }
        }
        // And the repositories one level down (a workspace of several checkouts;
        // red team, session 44: a nested repository's husky hook was left writable).
        // Deeper ones are the command's to make and are reported in createdEntries.
        let below = files.directoryEntries(of: root) ?? []
        if below.count > 4096 {
            notApplied.append("filesystem.protect: \(root) has more than 4 096 entries; repositories below it past the first 4 096 were not searched, and what their configs name is not protected")
        }
        for name in below.prefix(4096) where !PathText.hasReplacementCharacter(name) {
            let dir = (root == "/" ? "" : root) + "/" + name
            guard files.kind(of: dir) == .directory else { continue }
            _ = try addCheckout(dir, to: &repositories)
        }
        // Outside any repository (`~/code` holding `github.com/org/app`, ghq's and
        // GOPATH's layout), the checkouts deeper down, breadth first: 4 levels, 512
        // directories, 8 192 entries at most, past which the plan says so (red team,
        // session 44: a husky hook two levels down was left writable).
        if !insideARepository {
            var queue: [(dir: String, depth: Int)] = [(root, 0)]
            var directories = 0, entries = 0
            var exhausted = false
            while !queue.isEmpty {
                let (dir, depth) = queue.removeFirst()
                directories += 1
                guard directories <= 512, let names = files.directoryEntries(of: dir) else { exhausted = directories > 512; break }
                for name in names where name != ".git" && !PathText.hasReplacementCharacter(name) {
                    entries += 1
                    if entries > 8192 { exhausted = true; break }
                    let sub = (dir == "/" ? "" : dir) + "/" + name
                    guard files.kind(of: sub) == .directory else { continue }
                    if try !addCheckout(sub, to: &repositories), depth + 1 < 4,
                       !["node_modules", "site-packages", "__pycache__"].contains(name), files.kind(of: sub + "/pyvenv.cfg") == nil {
                        // Package trees and virtualenvs hold no checkouts of the user's:
                        // not spent on (red team, session 44: a venv alone used the bound).
                        queue.append((sub, depth + 1))
                    }
                }
                if exhausted { break }
            }
            if exhausted {
                notApplied.append("filesystem.protect: \(root) is no repository and holds more than sandbox searches for checkouts below it (512 directories, 8 192 entries, 4 levels); what the configs of repositories it did not reach name is not protected")
            }
        }
        // Each repository's protections are mounts, of which a run has at most 240:
        // past 64 repositories the rest are said, not protected (red team, session
        // 44: 120 checkouts refused every run at the mount limit).
        if repositories.count > 64 {
            let dropped = repositories[64...].map(\.workTree)
            repositories = Array(repositories.prefix(64))
            notApplied.append("filesystem.protect: more than 64 repositories at or below \(root); \(dropped.count) were not searched (\(Array(dropped.prefix(3)).joinedText(separator: ", "))\(dropped.count > 3 ? ", …" : "")), and what their configs name is not protected")
        }
        guard !repositories.isEmpty else { return }
        // Work trees each config applies in: a repository's own configs in its
        // work trees (main and linked), the per-user and system ones in all of them
        // and in every submodule's.
        var allWorkTrees: [String] = []
        var repoConfigs: [(path: String, workTrees: [String])] = []
        for repo in repositories {
            try protectGitDirectory(repo.gitDir, key: "the repository's git directory")
            try protectGitDirectory(repo.commonDir, key: "the repository's common git directory")
            if files.kind(of: repo.workTree + "/.git") == .file { try protect(repo.workTree + "/.git", key: "a .git file") }
            var trees: [(workTree: String, gitDir: String)] = [(repo.workTree, repo.gitDir)]
            // The main work tree of a linked one, and every linked worktree.
            if !PathText.same(repo.gitDir, repo.commonDir), PathText.endsWith(repo.commonDir, "/.git") {
                trees.append((Self.parent(repo.commonDir), repo.commonDir))
            }
            for wt in try linkedWorktrees(of: repo.commonDir) where !trees.contains(where: { PathText.same($0.workTree, wt.workTree) }) {
                trees.append(wt)
                if innermostWritable(wt.workTree) != nil { try protect(wt.workTree + "/.git", key: "a linked worktree's .git") }
            }
            // Submodules git recurses into from each of those work trees, and the
            // configs of the modules the common directory keeps.
            var subTrees: [String] = []
            for t in trees {
                for sub in try submodules(workTree: t.workTree, gitDir: t.gitDir, commonDir: repo.commonDir) {
                    subTrees.append(sub.workTree)
                    // Its own config's commands run in its work tree (red team, session
                    // 44: a relative clean filter there ran under the host's git status).
                    if let config = sub.config { repoConfigs.append((config, [sub.workTree])) }
                }
            }
            try checkSubmoduleConfigs(under: repo.commonDir + "/modules")
            if !PathText.same(repo.gitDir, repo.commonDir) { try checkSubmoduleConfigs(under: repo.gitDir + "/modules") }
            let workTrees = trees.map(\.workTree)
            allWorkTrees += workTrees + subTrees
            // The common config applies in every work tree; each `config.worktree` in
            // its own (the main one's beside the common config; red team, session 44:
            // another worktree's hooks path went unread).
            repoConfigs.append((repo.commonDir + "/config", workTrees))
            for t in trees { repoConfigs.append((t.gitDir + "/config.worktree", [t.workTree])) }
            if !PathText.same(repo.gitDir, repo.commonDir) { repoConfigs.append((repo.gitDir + "/config", workTrees)) }
        }
        // The per-user and system configs: a relative `core.hooksPath` there is
        // resolved against whichever work tree git runs in (session 44). Every place
        // git may look is read: the environment git sees now need not be the one of
        // the host's next git command.
        var globals = [home + "/.gitconfig", home + "/.config/git/config", "/etc/gitconfig"]
        for name in ["XDG_CONFIG_HOME", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM"] {
            guard let value = environment[name], PathText.isAbsolute(value) else { continue }
            globals.append(name == "XDG_CONFIG_HOME" ? value + "/git/config" : value)
        }
        for g in globals where files.kind(of: g) == nil {
            // Missing, and the command could create it.
            if innermostWritable(g) != nil, !isCovered(g) {
                notApplied.append("filesystem.protect: the git config \(g) does not exist and lies in a writable directory; one the command creates there is read by the host's next git command")
            }
        }
        var configs = repoConfigs.map { (path: $0.path, workTrees: $0.workTrees, depth: 0, global: false) }
            + globals.map { (path: GitIndirections.resolve($0, against: "/"), workTrees: allWorkTrees, depth: 0, global: true) }
        var seen = Set<PathText.Key>()
        var commandValues: [(key: String, value: String)] = []
        var hooksDirectories: [String] = []
        while !configs.isEmpty {
            let (path, workTrees, depth, global) = configs.removeFirst()
            guard seen.insert(PathText.Key(path)).inserted else { continue }
            // Git follows ten levels of includes; past what is read here the plan is
            // refused, not left unread (red team, session 43).
            // The bound on all configs is the search's (a workspace of checkouts, a
            // superproject of many submodules: 16 repositories were refused under a
            // bound of 32; red team, session 44); includes are bounded per chain.
            if depth > 4 {
                throw Self.refusal("\(path) is included too deep (\(depth) levels) for sandbox to read; it cannot tell what git would run from it. Flatten the includes or do not protect .git")
            }
            if seen.count > 4096 {
                throw Self.refusal("\(path) is among more than 4 096 git configs for sandbox to read; it cannot tell what git would run from them. Do not protect .git here")
            }
            guard let entries = try config(path, what: depth == 0 ? "a git config" : "an included git config") else { continue }
            let configDir = Self.parent(path)
            for (section, key, value) in entries where GitIndirections.isCommand(section: section, key: key) && !value.isEmpty
                && !(section == "alias" && value.unicodeScalars.first != "!")
                && !(section == "pager" && GitIndirections.fsmonitorBooleans.contains(value.lowercased())) {
                commandValues.append((GitIndirections.keyName(section: section, key: key), value))
            }
            var targets: [GitIndirections.Target] = []
            for tree in workTrees {
                targets += GitIndirections.targets(entries: entries, repoRoot: tree, configDir: configDir, home: home)
            }
            for target in targets {
                if let why = target.unreadable {
                    throw Self.refusal("\(path) sets \(target.key), and \(why); sandbox cannot tell which files git would run or read from it, so it cannot protect them. Simplify the setting or do not protect .git")
                }
                let key = "\(target.key) in \(path)"
                if target.isRemote {
                    // As git's `enter_repo` looks: `X/.git`, `X`, `X.git/.git`, `X.git`,
                    // a `.git` file followed to its git directory (red team, session 44:
                    // `remote = …/sub/bare` reached `sub/bare.git`, a gitfile's target
                    // was left writable).
                    for candidate in [target.path + "/.git", target.path, target.path + ".git/.git", target.path + ".git"] {
                        let path = try real(candidate, what: key)
                        if files.kind(of: path) == .file, let dir = try gitFileTarget(path) {
                            try protect(path, key: key)
                            let realDir = try real(dir, what: key)
                            if isGitDirectory(realDir) { try protectGitDirectory(realDir, key: key); break }
                        } else if files.kind(of: path) == .directory, isGitDirectory(path) {
                            try protectGitDirectory(path, key: key)
                            break
                        }
                    }
                } else if target.isInclude {
                    configs.append((target.path, workTrees, depth + 1, global))
                    try protect(target.path, key: key)
                } else if let word = target.commandWord {
                    // A word of a command: a file it names is protected; a directory
                    // or a missing bare word (a program found on PATH, an argument)
                    // names nothing git runs; a missing path is reported.
                    switch files.kind(of: target.path) {
                    case .directory?: continue
                    case nil:
                        // Missing: reported when written as a path in the repository's
                        // own config (a per-user alias's words, resolved in every work
                        // tree, said so a dozen times a run; red team, session 44).
                        try protect(target.path, key: key, missing: word.utf8.contains(0x2F) && !global ? "" : nil)
                    case .symlink?:
                        // A word naming a link (`.venv/bin/python`, which nbstripout
                        // installs as a clean filter; `alias.st = status` beside a link
                        // named `status`): the link cannot be covered by a mount, and
                        // refusing refused ordinary repositories (red team, session 44):
                        // said, not protected, like what an interpreter loads.
                        if innermostWritable(target.path) != nil && !isCovered(target.path) {
                            notApplied.append("filesystem.protect: \(key) has the word \(word), which names the symlink \(target.path); the command could point it elsewhere, and it is not protected")
                        }
                    default: try protect(target.path, key: key)
                    }
                } else {
                    if target.key == "core.hooksPath" { hooksDirectories.append(target.path) }
                    try protect(target.path, key: key)
                }
            }
        }
        reportCommands(commandValues)
        // Hooks that are there: what they run from the work tree (a hook manager's
        // config, lint-staged's packages, scripts) is not theirs to protect here.
        var hooked: [String] = []
        for dir in hooksDirectories + repositories.map({ $0.commonDir + "/hooks" }) {
            guard let names = files.directoryEntries(of: try real(dir, what: "a hooks directory")) else { continue }
            let live = names.filter { Self.hookNames.contains($0) }.sorted()
            // A hook that is a link into the work tree (`ln -s ../../tools/hooks/x`):
            // what it reaches is the hook (red team, session 44).
            for name in live {
                if case .symlink? = files.kind(of: dir + "/" + name) { try protect(dir + "/" + name, key: "the hook \(dir)/\(name)") }
            }
            if !live.isEmpty && !hooked.contains(dir) {
                hooked.append(dir)
                notApplied.append("filesystem.protect: git runs hooks from \(dir) (\(Array(live.prefix(4)).joinedText(separator: ", "))\(live.count > 4 ? ", …" : "")); what they run from the work tree (a hook manager's config, packages, scripts) is not protected")
            }
        }
    }

    /// What a word-by-word protection cannot hold, said once: a program git runs by
    /// name may be found on a PATH entry the command can write, and an interpreter or
    /// package runner loads code from the work tree it runs in (`python3 -m
    /// nbstripout`, what nbstripout installs as a clean filter; `npx`; a virtualenv's
    /// site-packages) — red team, session 44.
    mutating func reportCommands(_ commands: [(key: String, value: String)]) {
        let runners: Set<String> = ["python", "python2", "python3", "node", "nodejs", "npx", "npm", "pnpm", "yarn", "bun",
                                    "deno", "uv", "uvx", "poetry", "pipenv", "ruby", "bundle", "perl", "php", "make",
                                    "sh", "bash", "zsh", "dash", "java", "go", "cargo", "dotnet", "pwsh", "env"]
        let path = (environment["PATH"] ?? "").split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let writablePath = path.filter { !PathText.isAbsolute($0) || innermostWritable(GitIndirections.resolve($0, against: "/")) != nil }
        var loaders: [String] = [], byName: [String] = []
        for (key, value) in commands {
            guard let program = GitIndirections.commandWords(value, home: home).first else { continue }
            let base = PathText.lastComponent(program)
            let name = base.hasPrefix("python") ? "python" : base
            if runners.contains(name) { loaders.append("\(key) (\(base))") }
            if !program.utf8.contains(0x2F) { byName.append(key) }
        }
        if !loaders.isEmpty {
            notApplied.append("filesystem.protect: git runs an interpreter or package runner from the work tree for \(loaders.joinedText(separator: ", ")); the files its command names are protected, but what that program loads from the work tree (a module, a package, a virtualenv's site-packages) is not")
        }
        if !byName.isEmpty && !writablePath.isEmpty {
            notApplied.append("filesystem.protect: PATH has entries that are relative or writable by the command (\(writablePath.joinedText(separator: ", "))), and git runs programs by name for \(byName.joinedText(separator: ", ")); a program the command puts there runs with the host's next git command")
        }
    }

    /// The submodules git on the host recurses into from the repository whose work
    /// tree is `workTree` and git directory `gitDir`, and from theirs in turn: the
    /// gitlinks of each index (`GitIndex`), git's own list under a protected git
    /// directory. `.gitmodules` is not read: it is the command's to edit, git
    /// recurses only into gitlinks, and paths it named had the planner protect
    /// directories and read `.git`s of the command's choosing (red team, session 44:
    /// a hostile index, a `gitdir:` at another repository, 300 entries past the mount
    /// limit). Each one's `.git` is protected when it has one, its directory when not
    /// (not initialised, or deinitialised), so the command cannot make a repository
    /// there. The git directory a `.git` file names is followed only where git puts
    /// them (the parent's `modules/`) or in a writable path, where it is protected.
    /// Each followed git directory has its config checked (`checkSubmoduleConfig`)
    /// and its own submodules followed: at most 8 levels and 256 submodules.
    /// Returns each submodule's work tree and the config git applies there.
    mutating func submodules(workTree: String, gitDir: String, commonDir: String) throws -> [(workTree: String, config: String?)] {
        func refuse(_ what: String) -> PlanError {
            Self.refusal("\(what); sandbox cannot tell which submodules git on the host would recurse into, so it cannot protect their .git. Do not protect .git here")
        }
        var found: [(workTree: String, config: String?)] = []
        var seen = Set<PathText.Key>()
        var pending: [(workTree: String, gitDir: String, commonDir: String, depth: Int)] = [(workTree, gitDir, commonDir, 0)]
        while let repo = pending.popLast() {
            var objectSize = 20
            for (section, key, value) in try config(repo.commonDir + "/config", what: "a git config") ?? []
            where section == "extensions" && key == "objectformat" && value.lowercased() == "sha256" { objectSize = 32 }
            var paths: [String] = []
            // The index, and the shared index a split one names (a gitlink may be in
            // either; both read whole, which can only add paths).
            var indexes = [repo.gitDir + "/index"]
            while !indexes.isEmpty {
                let index = indexes.removeFirst()
                guard files.kind(of: index) != nil else { continue }
                guard let bytes = files.bytes(of: index, maxBytes: 256 << 20) else {
                    throw refuse("\(index) could not be read (not a regular file, or larger than 256 MiB)")
                }
                let contents: GitIndex.Contents
                do { contents = try GitIndex.read(bytes, objectSize: objectSize) } catch {
                    throw refuse("\(index) is not an index sandbox can read (\(error))")
                }
                for link in contents.gitlinks {
                    let text = String(decoding: link, as: UTF8.self)
                    if PathText.hasReplacementCharacter(text) || link.contains(0) {
                        throw refuse("\(index) holds a gitlink whose path is not valid UTF-8")
                    }
                    paths.append(text)
                }
                if let shared = contents.sharedIndex, PathText.endsWith(index, "/index") {
                    indexes.append(repo.gitDir + "/sharedindex." + shared)
                }
            }
            for path in paths {
                let sub = GitIndirections.resolve(path, against: repo.workTree)
                // `..` in a path git refuses; one that leaves the work tree is not a
                // submodule git would enter.
                guard PathText.isBeneath(sub, repo.workTree), !PathText.same(sub, repo.workTree),
                      seen.insert(PathText.Key(sub)).inserted else { continue }
                if seen.count > 256 || repo.depth >= 8 {
                    throw refuse("\(sub) is among more than 256 submodules or nested more than 8 deep")
                }
                let dotGit = sub + "/.git"
                var subGitDir: String? = nil
                switch files.kind(of: dotGit) {
                case nil:
                    // Not initialised: the empty directory is protected whole.
                    try protect(sub, key: "a submodule not initialised", missing: "; a .git the command creates there is reported in createdEntries")
                case .directory?:
                    try protect(dotGit, key: "a submodule's .git", checkingLinks: false)
                    protectedGitDirs.append(dotGit)
                    subGitDir = dotGit
                case .file?:
                    try protect(dotGit, key: "a submodule's .git")
                    if let dir = try gitFileTarget(dotGit), files.kind(of: dir) == .directory {
                        if PathText.isBeneath(dir, repo.commonDir + "/modules") || PathText.isBeneath(dir, repo.gitDir + "/modules") {
                            subGitDir = dir
                        } else if innermostWritable(dir) != nil {
                            try protectGitDirectory(dir, key: "a submodule's git directory")
                            subGitDir = dir
                        } else {
                            notApplied.append("filesystem.protect: the submodule \(sub) keeps its git directory outside its superproject's modules and outside every writable path; not followed")
                        }
                    }
                default:
                    try protect(dotGit, key: "a submodule's .git")   // a symlink: refused
                }
                found.append((sub, subGitDir.map { $0 + "/config" }))
                guard let subGitDir else { continue }
                try checkSubmoduleConfig(subGitDir + "/config", workTree: sub)
                pending.append((sub, subGitDir, subGitDir, repo.depth + 1))
            }
        }
        return found
    }

    /// A submodule's config: one that names a hook, an fsmonitor command or an
    /// include refuses the plan (git on the host recurses into submodules and runs
    /// what they name from their work trees; red team, session 43), as does a
    /// `core.worktree` other than `workTree` (when given).
    mutating func checkSubmoduleConfig(_ path: String, workTree: String?) throws {
        for (section, key, value) in try config(path, what: "a submodule's config") ?? [] {
            if let workTree, section == "core" && key == "worktree",
               !PathText.same(GitIndirections.resolve(value, against: Self.parent(path)), workTree) {
                throw Self.refusal("\(path) (a submodule's config) sets core.worktree elsewhere than \(workTree); sandbox cannot tell which .git git would use there. Do not protect .git here")
            }
            if GitIndirections.namesAFile(section: section, key: key, value: value) {
                throw Self.refusal("\(path) (a submodule's config) sets \(section).\(key); git on the host runs or reads what it names from the submodule's work tree, which sandbox does not protect. Remove the setting or do not protect .git")
            }
        }
    }

    /// The submodule git directories beneath `modules` (a directory holding a
    /// `config` is one; directories between are the submodule's path, `a/b/lib`),
    /// and theirs in their own `modules/`: each config checked as above. At most 4096
    /// directories and 8 levels of submodules; a name that is not UTF-8 refuses.
    /// Counting levels of submodules, not directories: a submodule at `a/b/c/d/e/f/g`
    /// was refused before (red team, session 44).
    mutating func checkSubmoduleConfigs(under modules: String) throws {
        guard files.kind(of: modules) == .directory else { return }
        var pending: [(path: String, nesting: Int)] = [(modules, 0)]
        var visited = 0
        while let (dir, nesting) = pending.popLast() {
            visited += 1
            guard visited <= 4096, nesting <= 8, let names = files.directoryEntries(of: dir) else {
                throw Self.refusal("\(modules) (the repository's submodules) could not be read whole; sandbox cannot tell what git would run from them. Do not protect .git here")
            }
            if names.contains("config") && files.kind(of: dir + "/config") == .file && !PathText.same(dir, modules) {
                try checkSubmoduleConfig(dir + "/config", workTree: nil)
                if files.kind(of: dir + "/modules") == .directory { pending.append((dir + "/modules", nesting + 1)) }
                continue
            }
            for name in names {
                let path = dir + "/" + name
                if PathText.hasReplacementCharacter(name) {
                    throw Self.refusal("\(path) has a name that is not valid UTF-8; sandbox cannot read the submodule configs as text. Do not protect .git here")
                }
                if files.kind(of: path) == .directory { pending.append((path, nesting)) }
            }
        }
    }
}
