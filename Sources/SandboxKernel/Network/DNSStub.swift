import FoundationEssentials
import Glibc
import SandboxVocabulary

/// What the DNS stub needs from the plan (`plan.network.stub`; Docs/network.md, "Names").
public struct DNSStubConfig: Sendable {
    public struct Name: Sendable {
        public var host: HostPattern
        /// The rule's nft sets in the run's table (IPv4, IPv6).
        public var set4: String
        public var set6: String
        /// The TCP ports the rule opens (what the server name check compares).
        public var tcpPorts: [UInt16]
        public init(host: HostPattern, set4: String, set6: String, tcpPorts: [UInt16] = []) {
            self.host = host; self.set4 = set4; self.set6 = set6; self.tcpPorts = tcpPorts
        }
    }
    /// Where it listens inside the run's namespace (127.0.0.53), UDP and TCP port 53.
    public var address: String
    /// Resolvers asked from the host's namespace, in order.
    public var upstream: [String]
    /// `ADDRESS` or `ADDRESS/LEN`: an answer inside one opens nothing and is left out.
    public var denyResolved: [String]
    public var ttlMin: UInt32
    public var ttlMax: UInt32
    public var names: [Name]
    public init(address: String, upstream: [String], denyResolved: [String], ttlMin: UInt32, ttlMax: UInt32, names: [Name]) {
        self.address = address; self.upstream = upstream; self.denyResolved = denyResolved
        self.ttlMin = ttlMin; self.ttlMax = ttlMax; self.names = names
    }
}

/// The run's only resolver (Docs/network.md, "Names"): sockets the supervisor makes
/// inside the run's namespace on its `lo`, served from the supervisor. An allowed name
/// is asked upstream from the host side; each A/AAAA answer not in `denyResolved` goes
/// into its rule's nft set, with the TTL as timeout, before the reply leaves, so the
/// connect that follows passes the firewall. Any other name gets NXDOMAIN without a
/// packet upstream; HTTPS/SVCB and other types get REFUSED. What is not a DNS query
/// gets nothing. Every refusal is counted.
public final class DNSStub: @unchecked Sendable {
    /// Upstream: each resolver is given this long per try, UDP then (if truncated) TCP.
    static let upstreamTimeoutMs: Int32 = 2000
    /// Questions asked upstream at once over UDP (each a worker thread); over it,
    /// SERVFAIL at once (`busy`). Refusals are answered on the serving thread.
    static let maxInFlight = 32
    /// TCP connections at once; over it, closed at once, unread, and counted
    /// (`too_many_connections`, no name or type). Each serves at most
    /// `tcpQueriesPerConnection` and is closed after 5 s without a query.
    static let maxTCP = 16
    static let tcpQueriesPerConnection = 32

    private let config: DNSStubConfig
    private let deny: [AddressRange]
    private let udp: OwnedFD
    private let tcp: OwnedFD
    /// The name sets' writer, its socket made inside the namespace at start (it holds
    /// the namespace).
    private let sets: NameSets
    /// The serving thread and the refusals, one entry per (name, type, reason).
    private let loop: ServingLoop<DNSRefusal>
    private let lock = Lock()
    /// Held by a set update from its decision to its record (`open`).
    private let updates = Lock()
    /// "set address" → when the entry the stub made expires (monotonic seconds).
    private var expiries: [String: Double] = [:]
    /// Which name resolved to which address in this run, until when (the server name
    /// check's question, `refusal(name:address:port:)`).
    private var resolved = ResolvedNames()
    /// Questions a run may have sent upstream per second, and the burst: the stub
    /// must not let a run make the host flood its resolver (over it: SERVFAIL).
    static let upstreamRate = 100
    static let upstreamBurst = 200
    private var tokens = Double(DNSStub.upstreamBurst)
    private var tokensAt = DNSStub.now()
    static let maxRememberedEntries = 4096
    /// Addresses one answer may open; the rest are left out of the reply and counted
    /// (`too_many_addresses`): one question must not fill a rule's sets (red-team F1).
    static let maxAddressesPerAnswer = 32
    private var inFlight = 0
    private var tcpOpen = 0

    /// Makes the sockets inside `netnsFD` (its `lo` must be up) and starts serving.
    public static func start(_ config: DNSStubConfig, netnsFD: Int32) throws -> DNSStub {
        let deny = config.denyResolved.compactMap(AddressRange.init(parsing:))
        guard deny.count == config.denyResolved.count else {
            throw KernelError(operation: "dns stub", subject: "deny_resolved", errno: EINVAL, detail: "a range does not parse")
        }
        for u in config.upstream where SocketAddress(u, port: 53) == nil {
            throw KernelError(operation: "dns stub", subject: u, errno: EINVAL, detail: "upstream resolver is not an address")
        }
        guard let local = SocketAddress(config.address, port: 53) else {
            throw KernelError(operation: "dns stub", subject: config.address, errno: EINVAL, detail: "not an address")
        }
        let loop = try ServingLoop<DNSRefusal>(subject: "dns stub")
        let (u, t) = try Netns.run(in: netnsFD) { () throws -> (OwnedFD, OwnedFD) in
            let u = OwnedFD(try local.bound(Int32(SOCK_DGRAM.rawValue)))
            let t = OwnedFD(try local.bound(Int32(SOCK_STREAM.rawValue)))
            guard listen(t.raw, 64) == 0 else { throw KernelError(operation: "listen", subject: "\(config.address):53 (tcp)", errno: errno) }
            return (u, t)
        }
        let sets = try NameSets(netnsFD: netnsFD)
        let stub = DNSStub(config: config, deny: deny, udp: u, tcp: t, sets: sets, loop: loop)
        loop.start(name: "dns-stub") { stub.serve() }
        return stub
    }

    private init(config: DNSStubConfig, deny: [AddressRange], udp: OwnedFD, tcp: OwnedFD,
                 sets: NameSets, loop: ServingLoop<DNSRefusal>) {
        self.config = config; self.deny = deny; self.udp = udp; self.tcp = tcp; self.sets = sets; self.loop = loop
    }

    deinit {
        udp.close(); tcp.close()
    }

    /// Stops serving: no new question is read after it returns. Idempotent. Questions
    /// already in flight (asking upstream) are not waited for: their client is gone
    /// with the run, and they hold the stub, so its sockets stay valid until they end.
    /// Every refusal but `denied_address` is counted before anything is asked.
    public func stop() { loop.stop() }

    /// The refusals so far, most frequent first.
    public func refusals() -> (kinds: [DNSRefusal], dropped: UInt64) {
        loop.refusals { ($0.name, $0.type) < ($1.name, $1.type) }
    }

    private func count(_ name: String, _ type: UInt16, _ reason: DNSRefusal.Reason) {
        let typeName = DNSMessage.typeName(type)
        loop.count("\(name)\u{0}\(typeName)\u{0}\(reason.rawValue)", DNSRefusal(name: name, type: typeName, reason: reason, count: 1))
    }

    // MARK: - Serving

    private func serve() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            var fds = [pollfd(fd: udp.raw, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: tcp.raw, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: loop.stopFD, events: Int16(POLLIN), revents: 0)]
            let r = poll(&fds, 3, -1)
            if r < 0 { if errno == EINTR { continue } else { return } }
            if fds[2].revents != 0 { return }
            if fds[0].revents & Int16(POLLIN) != 0 {
                var from = sockaddr_storage()
                var fromLen = socklen_t(MemoryLayout<sockaddr_storage>.size)
                let n = buffer.withUnsafeMutableBytes { b in
                    withUnsafeMutablePointer(to: &from) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(udp.raw, b.baseAddress, b.count, Int32(MSG_DONTWAIT), $0, &fromLen) }
                    }
                }
                if n > 0 { dispatchUDP(Array(buffer[0..<n]), from: from, fromLen: fromLen) }
            }
            if fds[1].revents & Int16(POLLIN) != 0 {
                // The child closes every descriptor but 0–2 before execve, so the
                // moment without FD_CLOEXEC leaks nothing into the run.
                let c = accept(tcp.raw, nil, nil)
                if c >= 0 { _ = fcntl(c, F_SETFD, FD_CLOEXEC); dispatchTCP(c) }
            }
        }
    }

    private func admit(_ counter: ReferenceWritableKeyPath<DNSStub, Int>, max: Int) -> Bool {
        lock.lock(); defer { lock.unlock() }
        guard self[keyPath: counter] < max else { return false }
        self[keyPath: counter] += 1
        return true
    }

    private func release(_ counter: ReferenceWritableKeyPath<DNSStub, Int>) {
        lock.lock(); self[keyPath: counter] -= 1; lock.unlock()
    }

    private func dispatchUDP(_ bytes: [UInt8], from: sockaddr_storage, fromLen: socklen_t) {
        let udp = self.udp
        @Sendable func send(_ reply: [UInt8]) {
            var to = from
            _ = reply.withUnsafeBytes { b in
                withUnsafePointer(to: &to) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(udp.raw, b.baseAddress, b.count, Int32(MSG_DONTWAIT), $0, fromLen) } }
            }
        }
        // What needs no upstream is answered here, on the serving thread: a flood of
        // names no rule admits costs no thread each, and does not crowd out allowed
        // questions (red-team F2). Only a question sent upstream gets a worker, at most
        // `maxInFlight` of them.
        guard let q = DNSMessage.parseQuery(bytes) else { return }
        let screened = screen(q)
        if let reply = screened.reply { send(reply); return }
        guard admit(\.inFlight, max: Self.maxInFlight) else {
            count(q.name, q.type, .busy)
            send(DNSMessage.reply(to: q, rcode: .servFail))
            return
        }
        Threads.detach { [self] in
            send(resolve(q, rules: screened.rules, overTCP: false))
            release(\.inFlight)
        }
    }

    private func dispatchTCP(_ fd: Int32) {
        guard admit(\.tcpOpen, max: Self.maxTCP) else {
            Glibc.close(fd)
            loop.count("\u{0}\u{0}\(DNSRefusal.Reason.tooManyConnections.rawValue)",
                       DNSRefusal(name: "", type: "", reason: .tooManyConnections, count: 1))
            return
        }
        Threads.detach { [self] in
            var tv = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            for _ in 0..<Self.tcpQueriesPerConnection {
                guard let length = readExactly(fd, 2), let message = readExactly(fd, Int(length[0]) << 8 | Int(length[1])),
                      let reply = answer(message, overTCP: true) else { break }
                let framed = [UInt8(reply.count >> 8), UInt8(reply.count & 0xff)] + reply
                guard writeAll(fd, framed) else { break }
            }
            Glibc.close(fd)
            release(\.tcpOpen)
        }
    }

    // MARK: - Answering

    /// The reply to one message; nil for what is not a query (nothing is sent back,
    /// and nothing upstream).
    func answer(_ bytes: [UInt8], overTCP: Bool) -> [UInt8]? {
        guard let q = DNSMessage.parseQuery(bytes) else { return nil }
        let screened = screen(q)
        return screened.reply ?? resolve(q, rules: screened.rules, overTCP: overTCP)
    }

    /// The checks that need no upstream, cheap enough for the serving thread: the
    /// counted reply to a name no rule admits (NXDOMAIN), a type not answered
    /// (REFUSED) or a question over the upstream rate (SERVFAIL); else no reply and
    /// the rules that admit the name.
    private func screen(_ q: DNSMessage.Query) -> (reply: [UInt8]?, rules: [DNSStubConfig.Name]) {
        let rules = q.nameIsHostname ? config.names.filter { $0.host.matches(q.name) } : []
        guard !rules.isEmpty else {
            count(q.name, q.type, .notAllowed)
            return (DNSMessage.reply(to: q, rcode: .nxDomain), [])
        }
        guard q.qclass == DNSMessage.classIN, q.type == DNSMessage.typeA || q.type == DNSMessage.typeAAAA else {
            count(q.name, q.type, .recordType)
            return (DNSMessage.reply(to: q, rcode: .refused), [])
        }
        guard takeUpstreamToken() else {
            count(q.name, q.type, .rateLimited)
            return (DNSMessage.reply(to: q, rcode: .servFail), [])
        }
        return (nil, rules)
    }

    /// The reply to an admitted question: asked upstream, its addresses opened.
    private func resolve(_ q: DNSMessage.Query, rules: [DNSStubConfig.Name], overTCP: Bool) -> [UInt8] {
        let limit = overTCP ? 65535 : Int(min(max(q.ednsSize ?? 512, 512), 1232))
        guard let response = ask(q.name, q.type) else { return DNSMessage.reply(to: q, rcode: .servFail) }
        guard response.rcode == DNSMessage.RCode.noError.rawValue else {
            return DNSMessage.reply(to: q, rcode: response.rcode == DNSMessage.RCode.nxDomain.rawValue ? .nxDomain : .servFail)
        }
        // The chain from the question: CNAMEs from a name in it, then the addresses of
        // a name in it. Anything else in the answer section is not this question's.
        var chain: Set<String> = [q.name]
        var kept: [DNSMessage.Record] = []
        var opened: [(address: [UInt8], ttl: UInt32)] = []
        for r in response.answers where chain.contains(r.name) {
            var record = r
            record.ttl = min(r.ttl, config.ttlMax)
            if r.type == DNSMessage.typeCNAME, let target = r.target {
                chain.insert(target)
                kept.append(record)
            } else if r.type == q.type {
                if deny.contains(where: { $0.contains(r.data) }) {
                    count(q.name, q.type, .deniedAddress)
                    continue
                }
                if opened.count >= Self.maxAddressesPerAnswer {
                    count(q.name, q.type, .tooManyAddresses)
                    continue
                }
                opened.append((r.data, max(config.ttlMin, min(r.ttl, config.ttlMax))))
                kept.append(record)
            }
        }
        if !opened.isEmpty {
            guard roomToRemember(q.name, opened.map(\.address)) else {
                count(q.name, q.type, .setFull)
                return DNSMessage.reply(to: q, rcode: .servFail)
            }
            do {
                guard let lifetimes = try open(opened, rules: rules) else {
                    count(q.name, q.type, .setFull)
                    return DNSMessage.reply(to: q, rcode: .servFail)
                }
                remember(q.name, lifetimes)
                // No client may keep an address longer than its entry lives.
                for i in kept.indices where kept[i].type == q.type {
                    if let left = lifetimes[kept[i].data] { kept[i].ttl = min(kept[i].ttl, left) }
                }
            } catch {
                return DNSMessage.reply(to: q, rcode: .servFail)
            }
        }
        return DNSMessage.reply(to: q, rcode: .noError, answers: kept, limit: limit)
    }

    private func roomToRemember(_ name: String, _ addresses: [[UInt8]]) -> Bool {
        lock.lock(); defer { lock.unlock() }
        return resolved.room(for: name, at: addresses, now: Self.now())
    }

    private func remember(_ name: String, _ lifetimes: [[UInt8]: UInt32]) {
        lock.lock(); defer { lock.unlock() }
        resolved.remember(name, lifetimes, now: Self.now())
    }

    /// Whether the server name check may pass a flow to `address` port `port` that
    /// names `name`: `.notAllowed` when no host rule admits the name on that TCP port,
    /// `.notResolved` when one does but the name did not resolve to the address in
    /// this run (or its entry has expired); nil: it may pass.
    public func refusal(name: String, address: [UInt8], port: UInt16) -> ServerNameRefusal.Reason? {
        guard config.names.contains(where: { $0.host.matches(name) && $0.tcpPorts.contains(port) }) else { return .notAllowed }
        lock.lock(); defer { lock.unlock() }
        return resolved.resolved(name, to: address, now: Self.now()) ? nil : .notResolved
    }

    /// The upstream rate: a token per question sent on, `upstreamRate` a second, at
    /// most `upstreamBurst` saved (as the firewall's rate for a policy's own resolvers).
    private func takeUpstreamToken() -> Bool {
        let now = Self.now()
        lock.lock(); defer { lock.unlock() }
        tokens = min(Double(Self.upstreamBurst), tokens + (now - tokensAt) * Double(Self.upstreamRate))
        tokensAt = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    /// Seconds on the monotonic clock.
    private static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Puts the addresses into every matching rule's set, in one transaction inside
    /// the run's namespace, and returns for each the seconds its entries are sure to
    /// live (what the reply's TTL may say).
    ///
    /// `add` renews an existing element's timeout only on newer kernels. So the stub
    /// remembers when each entry it made expires: a new entry, or one that has
    /// expired, is added; one that lives at least `ttlMin` more is left as it is and
    /// the reply's TTL is held to what is left of it; one about to expire is replaced
    /// (delete, add). Only the stub writes these sets (the command has no
    /// CAP_NET_ADMIN), so what it remembers is what the kernel holds — or later: the
    /// entry's clock starts after ours. The transaction goes through `NameSets`.
    ///
    /// Nil when a set would hold more than `NftRunTable.nameSetSize` live entries (by
    /// what the stub remembers): the kernel would refuse the transaction, so it is not
    /// tried.
    private func open(_ addresses: [(address: [UInt8], ttl: UInt32)], rules: [DNSStubConfig.Name]) throws -> [[UInt8]: UInt32]? {
        // One answer's decision, write and record at a time: two answers for one
        // address deciding together would each add it, and the kernel keeps the
        // later commit's timeout while each reply says its own (red team, session 32).
        updates.lock()
        defer { updates.unlock() }
        var changes: [NameSets.Change] = []
        var decided: [String: (made: Int, change: Int)] = [:]
        var lifetimes: [[UInt8]: UInt32] = [:]
        let now = Self.now()
        var made: [(key: String, expiry: Double)] = []
        lock.lock()
        for rule in rules {
            for a in addresses {
                guard let text = AddressRange.format(a.address) else { continue }
                let set = a.address.count == 4 ? rule.set4 : rule.set6
                let key = "\(set) \(text)"
                // An address listed twice in the answer is decided once (its shorter
                // TTL); looked up, not searched: an answer's addresses times the rules
                // its name matches can be many.
                if let (i, j) = decided[key] {
                    lifetimes[a.address] = min(lifetimes[a.address] ?? .max, a.ttl)
                    if let t = changes[j].timeoutSeconds, a.ttl < t {
                        changes[j].timeoutSeconds = a.ttl
                        made[i].expiry = now + Double(a.ttl)
                    }
                    continue
                }
                var left = a.ttl
                if let expiry = expiries[key], expiry > now + Double(config.ttlMin) {
                    left = min(left, UInt32(expiry - now))
                } else {
                    if let expiry = expiries[key], expiry > now {
                        changes.append(.init(set: set, address: a.address, timeoutSeconds: nil))
                    }
                    changes.append(.init(set: set, address: a.address, timeoutSeconds: a.ttl))
                    made.append((key, now + Double(a.ttl)))
                    decided[key] = (made.count - 1, changes.count - 1)
                }
                lifetimes[a.address] = min(lifetimes[a.address] ?? .max, left)
            }
        }
        // A full set: counted only when it could be (the cap per answer is small).
        if !made.isEmpty, expiries.count + made.count > NftRunTable.nameSetSize - Self.maxAddressesPerAnswer {
            var live: [Substring: Int] = [:]
            for (key, expiry) in expiries where expiry > now { live[key.prefix { $0 != " " }, default: 0] += 1 }
            for m in made { live[m.key.prefix { $0 != " " }, default: 0] += 1 }
            // An entry the stub thinks expired may live a moment longer in the kernel
            // (its clock starts later): a margin of one answer's addresses.
            if live.values.contains(where: { $0 > NftRunTable.nameSetSize - Self.maxAddressesPerAnswer }) {
                lock.unlock()
                return nil
            }
        }
        lock.unlock()
        guard !changes.isEmpty else { return lifetimes }
        try sets.apply(changes)
        lock.lock()
        if expiries.count > 4 * Self.maxRememberedEntries { expiries = expiries.filter { $0.value > now } }
        for m in made { expiries[m.key] = m.expiry }
        lock.unlock()
        return lifetimes
    }

    /// Asks each upstream resolver in turn (UDP; TCP when the answer is truncated);
    /// nil when none answered this question.
    private func ask(_ name: String, _ type: UInt16) -> DNSMessage.Response? {
        for server in config.upstream {
            guard let address = SocketAddress(server, port: 53) else { continue }
            let id = UInt16.random(in: 0...UInt16.max)
            let query = DNSMessage.upstreamQuery(id: id, name: name, type: type)
            func valid(_ r: DNSMessage.Response?) -> DNSMessage.Response? {
                guard let r, r.id == id, r.questionName == name, r.questionType == type else { return nil }
                return r
            }
            guard let udpAnswer = valid(address.exchange(query, stream: false, timeoutMs: Self.upstreamTimeoutMs).flatMap(DNSMessage.parseResponse)) else { continue }
            if !udpAnswer.truncated { return udpAnswer }
            if let tcpAnswer = valid(address.exchange(query, stream: true, timeoutMs: Self.upstreamTimeoutMs).flatMap(DNSMessage.parseResponse)) {
                return tcpAnswer
            }
        }
        return nil
    }
}

// MARK: - Small helpers

/// Which name resolved to which address in this run, and until when: one entry per
/// (address, name). Bounded (red-team F5: one entry per name a wildcard admits, all at
/// one address, would otherwise grow without bound, and a purge on every answer walked
/// the whole map under the lock the server name check takes): at most `capacity`
/// entries, an answer that would add more is refused (`set_full`); expired entries are
/// purged when the count doubled since the last purge, or at most once a second when
/// full — amortised constant work per answer.
struct ResolvedNames {
    static let defaultCapacity = 16384
    let capacity: Int
    private var until: [String: Double] = [:]
    private var purgeAt = 1024
    private var purged = -Double.infinity

    init(capacity: Int = ResolvedNames.defaultCapacity) { self.capacity = capacity }

    var count: Int { until.count }

    private static func key(_ name: String, _ address: [UInt8]) -> String? {
        AddressRange.format(address).map { "\($0) \(name)" }
    }

    /// Whether `name` may be remembered at these addresses (after a purge, if due).
    mutating func room(for name: String, at addresses: [[UInt8]], now: Double) -> Bool {
        let new = Set(addresses.compactMap { Self.key(name, $0) }).filter { until[$0] == nil }.count
        if until.count >= purgeAt || (until.count + new > capacity && now - purged >= 1) {
            until = until.filter { $0.value > now }
            purgeAt = max(1024, 2 * until.count)
            purged = now
        }
        return until.count + new <= capacity
    }

    /// Records the lifetimes (seconds from `now`); a new entry only while there is
    /// room (answers in flight at once may all have found room).
    mutating func remember(_ name: String, _ lifetimes: [[UInt8]: UInt32], now: Double) {
        for (address, left) in lifetimes {
            guard let key = Self.key(name, address), until[key] != nil || until.count < capacity else { continue }
            until[key] = max(until[key] ?? 0, now + Double(left))
        }
    }

    func resolved(_ name: String, to address: [UInt8], now: Double) -> Bool {
        guard let key = Self.key(name, address), let end = until[key] else { return false }
        return end > now
    }
}

/// An address range as bytes and a prefix length (what `deny_resolved` lists).
struct AddressRange {
    var bytes: [UInt8]
    var prefix: Int

    init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let b = AddressRange.parse(String(parts[0])) else { return nil }
        bytes = b
        prefix = b.count * 8
        if parts.count == 2 {
            guard let p = Int(parts[1]), (0...b.count * 8).contains(p) else { return nil }
            prefix = p
        }
    }

    func contains(_ address: [UInt8]) -> Bool {
        guard address.count == bytes.count else { return false }
        for i in 0..<bytes.count {
            let n = max(0, min(8, prefix - i * 8))
            if n == 0 { break }
            let mask: UInt8 = ~UInt8(0) << (8 - n)
            if address[i] & mask != bytes[i] & mask { return false }
        }
        return true
    }

    static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: v4) { Array($0) } }
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: v6) { Array($0) } }
        return nil
    }

    static func format(_ bytes: [UInt8]) -> String? {
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : bytes.count == 16 ? AF_INET6 : -1
        guard family >= 0 else { return nil }
        let ok = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &out, socklen_t(out.count)) } != nil
        return ok ? String(cString: out) : nil
    }
}

/// An IPv4 or IPv6 socket address.
struct SocketAddress {
    var storage = sockaddr_storage()
    var length: socklen_t
    var family: Int32

    init?(_ text: String, port: UInt16) {
        guard let bytes = AddressRange.parse(text) else { return nil }
        if bytes.count == 4 {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET); sin.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin.sin_addr) { $0.copyBytes(from: bytes) }
            withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: sin) { dst.copyMemory(from: $0) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size); family = AF_INET
        } else {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6); sin6.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: bytes) }
            withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: sin6) { dst.copyMemory(from: $0) } }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size); family = AF_INET6
        }
    }

    private func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>) -> T) -> T {
        withUnsafePointer(to: storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1, body) }
    }

    /// A socket of `type` bound to this address (SO_REUSEADDR for the listener).
    func bound(_ type: Int32) throws -> Int32 {
        let fd = socket(family, Int32(type) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw KernelError(operation: "socket", subject: "dns stub", errno: errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard withSockaddr({ bind(fd, $0, length) }) == 0 else {
            let e = errno
            Glibc.close(fd)
            throw KernelError(operation: "bind", subject: "dns stub \(AddressRange.format(withUnsafeBytes(of: storage) { Array($0) }) ?? ""):53", errno: e)
        }
        return fd
    }

    /// Sends `message` and returns the answer (TCP: framed with a length), or nil on
    /// timeout or error. A connected socket: only this address's answers arrive.
    func exchange(_ message: [UInt8], stream: Bool, timeoutMs: Int32) -> [UInt8]? {
        let type = stream ? SOCK_STREAM : SOCK_DGRAM
        let fd = socket(family, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var tv = timeval(tv_sec: Int(timeoutMs / 1000), tv_usec: Int(timeoutMs % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard withSockaddr({ connect(fd, $0, length) }) == 0 else { return nil }
        if stream {
            guard writeAll(fd, [UInt8(message.count >> 8), UInt8(message.count & 0xff)] + message),
                  let len = readExactly(fd, 2) else { return nil }
            return readExactly(fd, Int(len[0]) << 8 | Int(len[1]))
        }
        guard message.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == message.count else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? Array(buffer[0..<n]) : nil
    }
}

private func readExactly(_ fd: Int32, _ count: Int) -> [UInt8]? {
    guard count > 0 else { return nil }
    var out = [UInt8](repeating: 0, count: count)
    var got = 0
    while got < count {
        let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, count - got) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { return nil }
        got += n
    }
    return out
}

private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    var sent = 0
    while sent < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + sent, bytes.count - sent) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { return false }
        sent += n
    }
    return true
}
