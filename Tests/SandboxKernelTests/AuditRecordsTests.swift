import Testing
@testable import SandboxKernel

/// The audit-record parser and router of the denial account, on recorded lines
/// (Docs/denials.md: this host with audit off, and a VM with audit on for Landlock).
@Suite struct AuditRecordsTests {
    static let seccomp = "audit(1796144584.384:260245): auid=4294967295 uid=100123 gid=100123 ses=4294967295 pid=25947 comm=\"secbench\" exe=\"/usr/bin/secbench\" sig=0 arch=c000003e syscall=101 compat=0 ip=0x7f6a1d7f3829 code=0x50000"

    @Test func parsesASeccompRecord() throws {
        let e = AuditRecordParser.parse(type: 1326, text: Self.seccomp[...])
        guard case .seccomp(let r) = e else { Issue.record("not parsed: \(String(describing: e))"); return }
        #expect(r == SeccompAuditRecord(timeMs: 1_796_144_584_384, uid: 100_123, pid: 25947, arch: 0xC000_003E,
                                        syscall: 101, code: 0x50000))
        #expect(r.action == SeccompAuditRecord.errnoAction)
        // Another type, or a record missing a field, is nothing.
        #expect(AuditRecordParser.parse(type: 1300, text: Self.seccomp[...]) == nil)
        #expect(AuditRecordParser.parse(type: 1326, text: "audit(1.2:3): uid=1 pid=2"[...]) == nil)
        #expect(AuditRecordParser.parse(type: 1326, text: "no stamp uid=1"[...]) == nil)
    }

    @Test func parsesLandlockRecords() throws {
        let read = AuditRecordParser.parse(type: 1423, text: "audit(1700000000.001:3): domain=12badbea0 blockers=fs.read_file path=\"/data/secret\" dev=\"rootfs\" ino=304"[...])
        guard case .landlockAccess(let a) = read else { Issue.record("\(String(describing: read))"); return }
        #expect(a.domain == "12badbea0" && a.blockers == ["fs.read_file"] && a.path == "/data/secret")
        let signal = AuditRecordParser.parse(type: 1423, text: "audit(1700000000.002:4): domain=1eacfc856 blockers=scope.signal opid=1 ocomm=\"init\""[...])
        guard case .landlockAccess(let s) = signal else { Issue.record("\(String(describing: signal))"); return }
        #expect(s.opid == 1 && s.ocomm == "init" && s.blockers == ["scope.signal"])
        // An abstract socket's name is hex with a leading NUL: shown as @name.
        let abstract = AuditRecordParser.parse(type: 1423, text: "audit(1700000000.003:5): domain=1eacfc856 blockers=scope.abstract_unix_socket path=0061756469746C61622D616273"[...])
        guard case .landlockAccess(let u) = abstract else { Issue.record("\(String(describing: abstract))"); return }
        #expect(u.path == "@auditlab-abs")
        // A path with a space arrives hex-encoded.
        let spaced = AuditRecordParser.parse(type: 1423, text: "audit(1700000000.004:6): domain=1 blockers=fs.write_file,fs.truncate path=2F746D702F6120622E747874 dev=\"tmpfs\" ino=9"[...])
        guard case .landlockAccess(let p) = spaced else { Issue.record("\(String(describing: spaced))"); return }
        #expect(p.path == "/tmp/a b.txt" && p.blockers == ["fs.write_file", "fs.truncate"])
        let tcp = AuditRecordParser.parse(type: 1423, text: "audit(1700000000.005:7): domain=1eacfc856 blockers=net.connect_tcp daddr=127.0.0.1 dest=80"[...])
        guard case .landlockAccess(let t) = tcp else { Issue.record("\(String(describing: tcp))"); return }
        #expect(t.daddr == "127.0.0.1" && t.port == 80)
        let allocated = AuditRecordParser.parse(type: 1424, text: "audit(1700000000.006:3): domain=12badbea0 status=allocated mode=enforcing pid=148 uid=100200 exe=\"/bin/llfs\" comm=\"llfs\""[...])
        #expect(allocated == .landlockDomain(LandlockDomainRecord(timeMs: 1_700_000_000_006, domain: "12badbea0", status: "allocated",
                                                                 pid: 148, uid: 100_200, denials: nil)))
        let freed = AuditRecordParser.parse(type: 1424, text: "audit(1700000000.007:9): domain=13e9bd673 status=deallocated denials=2000"[...])
        #expect(freed == .landlockDomain(LandlockDomainRecord(timeMs: 1_700_000_000_007, domain: "13e9bd673", status: "deallocated",
                                                             pid: nil, uid: nil, denials: 2000)))
    }

    /// Seccomp records go to the run whose uid they carry; Landlock access records
    /// wait for their domain's `allocated` record (written after the first access
    /// record) and then go to the uid it names; records of other uids go nowhere.
    @Test func routesByUidAndDomain() throws {
        var demux = AuditDemux(markerPid: 4242, markerSyscall: 121, nativeArch: 0xC000_003E)
        demux.subscribe(100_123)
        func parse(_ type: UInt16, _ text: String) -> AuditEvent { AuditRecordParser.parse(type: type, text: text[...])! }
        let mine = parse(1326, Self.seccomp)
        #expect(demux.route(mine).count == 1)
        let other = parse(1326, Self.seccomp.replacingOccurrences(of: "uid=100123", with: "uid=100999"))
        #expect(demux.route(other).isEmpty)

        let access = parse(1423, "audit(1.001:1): domain=abc blockers=fs.read_file path=\"/etc/shadow\" dev=\"rootfs\" ino=1")
        #expect(demux.route(access).isEmpty, "held until the domain is known")
        let routed = demux.route(parse(1424, "audit(1.002:1): domain=abc status=allocated mode=enforcing pid=7 uid=100123 exe=\"/x\" comm=\"x\""))
        guard case .landlock(let uid, let r) = routed.first, routed.count == 1 else { Issue.record("\(routed)"); return }
        #expect(uid == 100_123 && r.path == "/etc/shadow")
        // Known domain: at once. A foreign domain's records are never released to us.
        #expect(demux.route(access).count == 1)
        _ = demux.route(parse(1423, "audit(1.003:1): domain=def blockers=fs.read_file path=\"/x\""))
        #expect(demux.route(parse(1424, "audit(1.004:1): domain=def status=allocated mode=enforcing pid=8 uid=5 exe=\"/x\" comm=\"x\"")).isEmpty)
        // The kernel's total when the domain is freed.
        #expect(demux.route(parse(1424, "audit(1.005:1): domain=abc status=deallocated denials=3")) == [.landlockTotal(uid: 100_123, domain: "abc", denials: 3)])
        // After unsubscribe nothing of that uid is routed.
        demux.unsubscribe(100_123)
        #expect(demux.route(mine).isEmpty)
    }

    /// The marker: this process's pid, the marker syscall, ERRNO; its token is the
    /// low 16 bits of the code (the marker filter computes the errno from arg 0).
    @Test func recognisesTheMarker() {
        var demux = AuditDemux(markerPid: 4242, markerSyscall: 121, nativeArch: 0xC000_003E)
        let text = "audit(1.1:1): auid=0 uid=0 gid=0 ses=1 pid=4242 comm=\"sandbox\" exe=\"/s\" sig=0 arch=c000003e syscall=121 compat=0 ip=0x1 code=0x50007"
        #expect(demux.route(AuditRecordParser.parse(type: 1326, text: text[...])!) == [.marker(token: 7)])
        // The same call from another process is not ours.
        let other = text.replacingOccurrences(of: "pid=4242", with: "pid=4243")
        #expect(demux.route(AuditRecordParser.parse(type: 1326, text: other[...])!).isEmpty)
    }

    /// Bounded: a flood of distinct keys keeps at most `maxEntries` and counts the rest.
    @Test func tallyIsBounded() {
        var t = AuditTally()
        for nr in 0..<(AuditTally.maxEntries + 10) {
            t.add(SeccompAuditRecord(timeMs: 1, uid: 1, pid: 1, arch: 1, syscall: Int32(nr), code: 0x50000))
        }
        t.add(SeccompAuditRecord(timeMs: 2, uid: 1, pid: 1, arch: 1, syscall: 0, code: 0x50000))
        #expect(t.seccomp.count == AuditTally.maxEntries && t.dropped == 10)
        #expect(t.seccomp[AuditTally.SeccompKey(arch: 1, syscall: 0, code: 0x50000)] == AuditTally.Entry(count: 2, firstMs: 1))
    }
}
