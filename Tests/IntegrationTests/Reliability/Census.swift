import Foundation

/// Every kernel object and host file a run can leave behind, counted on the host
/// (issue 14): run directories under the run base (`.<id>.new` included), address
/// and uid leases, veths, bridges, network namespaces, the host's mount table,
/// cgroup directories in every hierarchy (v1 controllers with the nested
/// `<invoker's cgroup>/sandbox-<id>` paths, the v2 tree, the shared `sandbox`
/// parents), our nft tables and their rules (read only: `nft list`), zombies and
/// the processes of commands that outlived their run (`survivors`).
///
/// `leaks(since:)` compares two censuses and names each object that is new and the
/// caller's: other suites of this test process run at the same time, so an object
/// of a run counts only for the caller's runs, and an object of no run not when it
/// hangs from another suite's run or test host. `settle` takes censuses until
/// nothing new is left or `timeout` passes: a run that just ended removes its
/// objects a few milliseconds apart.
struct Census {
    /// One object, as the report names it: its kind and key, and the run it belongs
    /// to when it has one.
    struct Object: Hashable, CustomStringConvertible {
        var kind: String
        var key: String
        var runId: String?
        var description: String { "\(kind) \(key)" }
    }

    var objects: Set<Object> = []
    /// Network namespaces by inode, with what holds each (for `leaks`).
    var netnsPins: [String: [Pin]] = [:]
    /// Every process: pid → (ppid, argv joined by spaces, state).
    var processes: [Int32: Proc] = [:]
    /// The standard bridge's hardware address, if it exists.
    var bridgeMAC: String?

    struct Proc: Hashable { var ppid: Int32; var argv: String; var state: Character }

    /// What keeps a network namespace alive: a process in it, a descriptor, a mount.
    enum Pin: Hashable { case process(Int32), descriptor(Int32), mount(String) }

    static let runBase = "/run/sandbox"
    /// Files of the run base that are shared host state, not a run's.
    static let sharedRunBaseEntries: Set<String> = [".net.lock", ".net.state", ".seccomp-cache", ".uids", ".create.lock", ".root"]

    // MARK: - Taking a census

    static func take() -> Census {
        var c = Census()
        c.processes = Self.processTable()
        c.scanRunBase()
        c.scanLinks()
        c.scanMountsAndNetns()
        c.scanCgroups()
        c.scanNftables()
        for (pid, p) in c.processes where p.state == "Z" {
            c.objects.insert(Object(kind: "zombie", key: "pid \(pid) (parent \(p.ppid))"))
        }
        return c
    }

    mutating func scanRunBase() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: Self.runBase)) ?? []
        for name in names where !Self.sharedRunBaseEntries.contains(name) && name != "lock" {
            // `.<id>.new`: a run directory still (or for ever) being created.
            let id = name.hasPrefix(".") && name.hasSuffix(".new") ? String(name.dropFirst().dropLast(4)) : name
            objects.insert(Object(kind: "run directory", key: "\(Self.runBase)/\(name)", runId: id))
            if let lease = try? String(contentsOfFile: "\(Self.runBase)/\(name)/lease", encoding: .utf8) {
                let address = lease.split(separator: "\n").first { $0.hasPrefix("address=") }.map { String($0.dropFirst(8)) } ?? "?"
                objects.insert(Object(kind: "address lease", key: "\(address) (run \(id))", runId: id))
            }
        }
        let uids = "\(Self.runBase)/.uids"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: uids)) ?? [] {
            let holder = (try? String(contentsOfFile: "\(uids)/\(name)", encoding: .utf8))?
                .split(separator: "\n").first.map(String.init)
            objects.insert(Object(kind: "uid lease", key: "\(name) (run \(holder ?? "?"))", runId: holder))
        }
    }

    /// Links of ours: run veths (alias `sandbox:<id>`, or the `sbx` + 8 hex name
    /// without one) and bridges we made (alias `sandbox:bridge`).
    mutating func scanLinks() {
        let out = (try? Harness.run("/usr/sbin/ip", ["-j", "-d", "link", "show"], timeout: 20))?.stdout ?? ""
        let links = (try? JSONSerialization.jsonObject(with: Data(out.utf8))) as? [[String: Any]] ?? []
        for link in links {
            guard let name = link["ifname"] as? String else { continue }
            let alias = link["ifalias"] as? String
            if alias == "sandbox:bridge" {
                objects.insert(Object(kind: "bridge", key: name))
                if name == "sbx0" { bridgeMAC = link["address"] as? String }
            } else if let alias, alias.hasPrefix("sandbox:") {
                let id = String(alias.dropFirst(8))
                objects.insert(Object(kind: "veth", key: "\(name) (run \(id))", runId: id))
            } else if name.hasPrefix("sbx"), name.count == 11, name.dropFirst(3).allSatisfy(\.isHexDigit) {
                objects.insert(Object(kind: "veth", key: "\(name) (unmarked)"))
            }
        }
    }

    /// The host's mount table (this process's: the test runs in the host's mount
    /// namespace) and every network namespace a process, a descriptor or a mount holds.
    mutating func scanMountsAndNetns() {
        let table = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        for line in table.split(separator: "\n") {
            // id parent major:minor root mountpoint options … - fstype source superoptions
            let halves = line.components(separatedBy: " - ")
            let left = halves[0].split(separator: " ")
            let right = halves.count > 1 ? halves[1].split(separator: " ") : []
            guard left.count >= 5, right.count >= 2 else { continue }
            let root = String(left[3]), point = String(left[4]), type = String(right[0]), source = String(right[1])
            // `ip netns` makes /run/netns a mount of its own the first time a test host
            // is made; iproute2's, not a run's.
            if point == "/run/netns" { continue }
            objects.insert(Object(kind: "mount", key: "\(point) (\(type) \(source) \(root))"))
            if type == "nsfs", root.hasPrefix("net:[") { netnsPins[root, default: []].append(.mount(point)) }
        }
        for pid in processes.keys {
            if let ns = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net") {
                netnsPins[ns, default: []].append(.process(pid))
            }
            for fd in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? [] {
                if let t = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"), t.hasPrefix("net:[") {
                    netnsPins[t, default: []].append(.descriptor(pid))
                }
            }
        }
        for ns in netnsPins.keys { objects.insert(Object(kind: "network namespace", key: ns)) }
    }

    /// Every cgroup mount (v1 hierarchies and the v2 tree, wherever mounted): our
    /// shared `sandbox` parents, everything under them, and `sandbox-<id>` anywhere
    /// (v1 memory nests the run in the invoker's own cgroup).
    mutating func scanCgroups() {
        let table = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        var mounts: Set<String> = []
        for line in table.split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            let left = halves[0].split(separator: " ")
            guard left.count >= 5, halves.count > 1,
                  let type = halves[1].split(separator: " ").first, type == "cgroup" || type == "cgroup2" else { continue }
            mounts.insert(String(left[4]))
        }
        func walk(_ dir: String, depth: Int, underOurs: Bool) {
            guard depth < 12, let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
            for name in names {
                let path = dir + "/" + name
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else { continue }
                if name == "sandbox" {
                    objects.insert(Object(kind: "cgroup parent", key: path))
                    walk(path, depth: depth + 1, underOurs: true)
                } else if name.hasPrefix("sandbox-") || underOurs {
                    let id = name.hasPrefix("sandbox-") ? String(name.dropFirst(8)) : name
                    objects.insert(Object(kind: "cgroup", key: path, runId: id))
                    walk(path, depth: depth + 1, underOurs: true)
                } else {
                    walk(path, depth: depth + 1, underOurs: false)
                }
            }
        }
        for m in mounts { walk(m, depth: 0, underOurs: false) }
    }

    /// Our nft tables on the host (named `sandbox*`) and each rule in them, without
    /// handles. Only `nft list`: no other table is read or touched.
    mutating func scanNftables() {
        let out = (try? Harness.run("/usr/sbin/nft", ["-j", "list", "tables"], timeout: 20))?.stdout ?? ""
        let items = ((try? JSONSerialization.jsonObject(with: Data(out.utf8))) as? [String: Any])?["nftables"] as? [[String: Any]] ?? []
        for item in items {
            guard let t = item["table"] as? [String: Any], let name = t["name"] as? String, let family = t["family"] as? String,
                  name.hasPrefix("sandbox") else { continue }
            objects.insert(Object(kind: "nft table", key: "\(family) \(name)"))
            let text = (try? Harness.run("/usr/sbin/nft", ["list", "table", family, name], timeout: 20))?.stdout ?? ""
            var chain = ""
            var counts: [String: Int] = [:]
            for raw in text.split(separator: "\n") {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.hasPrefix("chain ") { chain = line; continue }
                if line.isEmpty || line == "}" || line.hasPrefix("type ") || line.hasPrefix("table ") { continue }
                // The same rule twice is two objects.
                let key = "\(family) \(name) \(chain.dropLast(2)): \(line)"
                counts[key, default: 0] += 1
                objects.insert(Object(kind: "nft rule", key: "\(key) #\(counts[key]!)"))
            }
        }
    }

    static func processTable() -> [Int32: Proc] {
        var out: [Int32: Proc] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(name), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // pid (comm) state ppid …: comm may hold spaces and parentheses.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count >= 2, let state = fields[0].first, let ppid = Int32(fields[1]) else { continue }
            let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
            let argv = String(decoding: cmdline.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            out[pid] = Proc(ppid: ppid, argv: argv, state: state)
        }
        return out
    }

    // MARK: - Comparing

    /// Processes whose argv holds `token`: the command tree of runs that should have
    /// ended (the supervisor's argv holds the command's, so it counts too).
    func survivors(token: String) -> [Int32] {
        processes.filter { $0.value.argv.contains(token) && $0.value.state != "Z" }.map(\.key).sorted()
    }

    /// Where other suites' runs hang from: live supervisors (`sandbox exec`) whose
    /// argv lacks `token`, and the sandbox inits this process cloned itself (the
    /// reliability suites run only the CLI; ConcurrencyTests runs executors in here).
    func foreignRoots(token: String) -> Set<Int32> {
        let me = getpid()
        return Set(processes.filter { pid, p in
            // Another suite's `sandbox exec`, or its `sandbox serve` (whose spawner
            // holds a network namespace made ahead, and whose inits are the server's
            // children): no suite that takes a census starts a server.
            ((p.argv.contains(" exec ") || p.argv.contains(" serve ")) && p.argv.contains("sandbox") && !p.argv.contains(token))
                || (p.ppid == me && p.argv.hasPrefix("sandbox-init"))
        }.map(\.key))
    }

    /// True when `pid` is, or descends from, one of `roots`.
    func descends(_ pid: Int32, from roots: Set<Int32>) -> Bool {
        var p = pid
        for _ in 0..<64 {
            if roots.contains(p) { return true }
            guard let parent = processes[p]?.ppid, parent > 0 else { return false }
            p = parent
        }
        return false
    }

    /// The objects new since `before` that are the caller's. An object of a run
    /// counts when the run is one of `ours` (ids from the caller's results) or its
    /// state.json holds `token` (runs the caller killed); other suites' runs, live or
    /// left for their own `gc`, never count. An object of no run counts unless it
    /// hangs from another suite's run or test host (`ownHosts`: the `/run/netns`
    /// names of the caller's own test hosts); a zombie only below a process of ours.
    func leaks(since before: Census, token: String, ours: Set<String>, ownHosts: Set<String> = []) -> [Object] {
        let foreign = foreignRoots(token: token)
        let tokenProcesses = Set(processes.filter { $0.value.argv.contains(token) }.map(\.key))
        let me = getpid()
        // Shared host state that egress and limited runs make once and keep by design
        // (Docs/network.md; RunCgroup's shared parents): new only on a fresh host.
        let hostTableExisted = before.objects.contains(Object(kind: "nft table", key: "inet sandbox_host"))
        var tokenRuns: [String: Bool] = [:]
        func isOurs(_ id: String) -> Bool {
            if ours.contains(id) { return true }
            if let known = tokenRuns[id] { return known }
            let state = (try? String(contentsOfFile: "\(Self.runBase)/\(id)/state.json", encoding: .utf8)) ?? ""
            tokenRuns[id] = state.contains(token)
            return tokenRuns[id]!
        }
        return objects.subtracting(before.objects).filter { o in
            if let id = o.runId { return isOurs(id) }
            switch o.kind {
            case "bridge": return o.key != "sbx0"
            case "cgroup parent": return false
            case "nft table", "nft rule":
                return hostTableExisted || !(o.key.hasPrefix("inet sandbox_host ") || o.key == "inet sandbox_host")
            case "network namespace":
                let pins = netnsPins[o.key] ?? []
                return !pins.contains { pin in
                    switch pin {
                    case .process(let pid), .descriptor(let pid): return descends(pid, from: foreign)
                    case .mount(let point):
                        return point.hasPrefix("/run/netns/") && !ownHosts.contains(String(point.dropFirst(11)))
                    }
                }
            case "zombie":
                // Ours only below a process of ours that is still there (a supervisor
                // or command that outlived its run, which fails the test by itself):
                // the host's init reaps orphans, and every suite's own children
                // (ours included, each waited for) are this process's.
                let pid = Int32(o.key.split(separator: " ")[1]) ?? 0
                guard let parent = processes[pid]?.ppid, parent != me else { return false }
                return descends(parent, from: tokenProcesses)
            case "mount":
                // Other suites' fixtures: a mount a test makes itself names its source
                // `sbx-test-…` (UidLeaseTests' ramfs, the FUSE daemon's), never a run's.
                if o.key.contains(" sbx-test-") { return false }
                // Other suites' test hosts.
                guard o.key.hasPrefix("/run/netns/") else { return true }
                let name = String(o.key.dropFirst(11).prefix { $0 != " " })
                return ownHosts.contains(name)
            default:
                return true
            }
        }
    }

    /// Censuses until nothing new is left unexplained, or `timeout` seconds.
    static func settle(since before: Census, token: String, ours: Set<String>, ownHosts: Set<String> = [],
                       timeout: TimeInterval = 15) -> (census: Census, leaks: [Object]) {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let now = take()
            let leaks = now.leaks(since: before, token: token, ours: ours, ownHosts: ownHosts)
            if leaks.isEmpty || Date() >= deadline { return (now, leaks.sorted { $0.description < $1.description }) }
            usleep(500_000)
        }
    }

    /// A run is alive exactly while its lock is held (RunDirectory).
    static func isLive(_ dir: String) -> Bool {
        let fd = open(dir + "/lock", O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        if fd < 0 { return false }
        defer { close(fd) }
        return flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK
    }

    /// The census as counts per kind, for the report line.
    var summary: String {
        Dictionary(grouping: objects, by: \.kind).map { "\($0.key): \($0.value.count)" }.sorted().joined(separator: ", ")
    }
}
