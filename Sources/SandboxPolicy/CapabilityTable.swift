/// Linux capabilities 0…40 (`CAP_CHOWN` … `CAP_CHECKPOINT_RESTORE`, CAP_LAST_CAP as of
/// Linux 6.18), as in `<linux/capability.h>`. Numbers are the same on every
/// architecture.
public enum CapabilityTable {
    /// Canonical names (lower-case, without `CAP_`) with their numbers, in order.
    public static let all: [(name: String, number: Int)] = [
        ("chown", 0),
        ("dac_override", 1),
        ("dac_read_search", 2),
        ("fowner", 3),
        ("fsetid", 4),
        ("kill", 5),
        ("setgid", 6),
        ("setuid", 7),
        ("setpcap", 8),
        ("linux_immutable", 9),
        ("net_bind_service", 10),
        ("net_broadcast", 11),
        ("net_admin", 12),
        ("net_raw", 13),
        ("ipc_lock", 14),
        ("ipc_owner", 15),
        ("sys_module", 16),
        ("sys_rawio", 17),
        ("sys_chroot", 18),
        ("sys_ptrace", 19),
        ("sys_pacct", 20),
        ("sys_admin", 21),
        ("sys_boot", 22),
        ("sys_nice", 23),
        ("sys_resource", 24),
        ("sys_time", 25),
        ("sys_tty_config", 26),
        ("mknod", 27),
        ("lease", 28),
        ("audit_write", 29),
        ("audit_control", 30),
        ("setfcap", 31),
        ("mac_override", 32),
        ("mac_admin", 33),
        ("syslog", 34),
        ("wake_alarm", 35),
        ("block_suspend", 36),
        ("audit_read", 37),
        ("perfmon", 38),
        ("bpf", 39),
        ("checkpoint_restore", 40),
    ]

    /// The highest capability number this table knows (CAP_LAST_CAP).
    public static var last: Int { all[all.count - 1].number }

    private static let byName: [String: Int] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0.number) })

    /// The number of a capability written as `CAP_SYS_ADMIN`, `cap_sys_admin` or
    /// `sys_admin` (any case); nil when there is no such capability.
    public static func number(_ name: String) -> Int? {
        canonicalName(name).flatMap { byName[$0] }
    }

    /// `sys_admin` for any accepted spelling of it; nil when unknown.
    public static func canonicalName(_ name: String) -> String? {
        var key = name.lowercased()
        if key.hasPrefix("cap_") { key.removeFirst(4) }
        return byName[key] != nil ? key : nil
    }

    /// The canonical name of capability `number`, or nil when out of range.
    public static func name(number: Int) -> String? {
        all.indices.contains(number) ? all[number].name : nil
    }
}
