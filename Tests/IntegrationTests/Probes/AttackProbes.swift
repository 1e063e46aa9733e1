// Probe programs for FenceAttackTests. They are kept as source text (SwiftPM would
// treat a .c file in this test target as a source of a mixed-language target, and
// would warn about a loose .py file); each test writes them into its own temporary
// project directory, which is the sandbox's rw working directory.

enum AttackProbes {
    /// `python3 attack.py COMMAND ARGS…` tries attacks for real and prints one
    /// `LABEL RESULT` line each, RESULT being `OK` or the errno's name (`EPERM`).
    /// Syscall numbers are x86_64's. Each syscall attack runs in a forked child, so
    /// one that succeeds (in a host control run) cannot change what the next sees.
    static let python = #"""
import ctypes, errno, os, signal, socket, sys, time

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def arg(a):
    if a is None:
        return ctypes.c_void_p(None)
    if isinstance(a, int):
        return ctypes.c_long(a)
    return a  # bytes and ctypes buffers pass as pointers

def sys_call(nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[arg(a) for a in args])
    return 0 if r >= 0 else ctypes.get_errno()

def name(e):
    return "OK" if e == 0 else errno.errorcode.get(e, "E%d" % e)

def os_error(f):
    try:
        f()
        return 0
    except OSError as e:
        return e.errno

def isolated(label, f):
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            print(label, name(f()), flush=True)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)

def sleeper():
    pid = os.fork()
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    return pid

def ptrace_attach():
    pid = sleeper()
    e = sys_call(101, 16, pid, 0, 0)           # PTRACE_ATTACH
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return e

def chroot_escape():
    # The classic escape: chroot into a subdirectory, climb out with "..", chroot
    # to what is then the real root. The first chroot already fails inside.
    os.makedirs("jail", exist_ok=True)
    e = sys_call(161, b"jail")
    if e == 0:
        for _ in range(64):
            os.chdir("..")
        sys_call(161, b".")
    return e

def perf_event_open():
    attr = ctypes.create_string_buffer(128)   # PERF_TYPE_SOFTWARE, size 128, CPU_CLOCK
    ctypes.memmove(attr, (1).to_bytes(4, "little") + (128).to_bytes(4, "little"), 8)
    return sys_call(298, attr, 0, -1, -1, 0)

def open_by_handle_at():
    handle = ctypes.create_string_buffer(8 + 128)  # handle_bytes = 8, type 0: stale
    ctypes.memmove(handle, (8).to_bytes(4, "little"), 4)
    return sys_call(304, -100, handle, 0)

def clone_child(nr, *args):
    # A raw clone: the new child (0 returned) leaves at once; the parent reaps it.
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[arg(a) for a in args])
    if r == 0:
        os._exit(0)
    if r < 0:
        return ctypes.get_errno()
    os.waitpid(r, getattr(os, "__WALL", 0x40000000))
    return 0

def clone3_newuser():
    args = ctypes.create_string_buffer(88)       # struct clone_args, version 0
    ctypes.memmove(args, (0x10000000).to_bytes(8, "little"), 8)            # flags: CLONE_NEWUSER
    ctypes.memmove(ctypes.byref(args, 32), (17).to_bytes(8, "little"), 8)  # exit_signal: SIGCHLD
    return clone_child(435, args, 88)

buf = ctypes.create_string_buffer(4096)
SYSCALLS = {
    "ptrace": ptrace_attach,
    "mount": lambda: (os.makedirs("mnt", exist_ok=True), sys_call(165, b"none", b"mnt", b"tmpfs", 0, None))[1],
    "unshare": lambda: sys_call(272, 0x10000000),                       # CLONE_NEWUSER
    "setns": lambda: sys_call(308, os.open("/proc/self/ns/uts", os.O_RDONLY), 0x04000000),
    "bpf": lambda: sys_call(321, 0, buf, 72),                           # BPF_MAP_CREATE, zero attr
    "keyctl": lambda: sys_call(250, 0, -1, 0),                          # GET_KEYRING_ID thread, no create
    "add_key": lambda: sys_call(248, b"user", b"sbx-probe", b"x", 1, -2),  # process keyring
    "perf_event_open": perf_event_open,
    "io_uring_setup": lambda: sys_call(425, 1, buf),
    "open_by_handle_at": open_by_handle_at,
    "kexec_load": lambda: sys_call(246, 0, 0, None, 0x8000),            # invalid flag: never loads
    "init_module": lambda: sys_call(175, buf, 16, b""),                 # 16 zero bytes: not a module
    "userfaultfd": lambda: sys_call(323, 0),
    "chroot": chroot_escape,
    "fchmodat2": lambda: (open("f2", "w").close(), sys_call(452, -100, b"f2", 0o644, 0))[1],
    "clone-newuser": lambda: clone_child(56, 0x10000000 | 17, 0, None, None, 0),  # CLONE_NEWUSER | SIGCHLD
    "clone3-newuser": clone3_newuser,
    "fsopen": lambda: sys_call(430, b"tmpfs", 0),
}

def socket_probe(family, kind, proto):
    def f():
        s = socket.socket(family, kind, proto)
        s.close()
    return lambda: os_error(f)

def create_probes(base):
    def create():
        os.close(os.open(base + "/sbx-reg", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        os.unlink(base + "/sbx-reg")
    def mkdir():
        os.mkdir(base + "/sbx-dir")
        os.rmdir(base + "/sbx-dir")
    def mkfifo():
        os.mkfifo(base + "/sbx-fifo")
        os.unlink(base + "/sbx-fifo")
    def symlink():
        os.symlink("null", base + "/sbx-link")
        os.unlink(base + "/sbx-link")
    return [("reg", create), ("dir", mkdir), ("fifo", mkfifo), ("sym", symlink)]

def connect_abstract(name):
    def f():
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            c.connect("\0" + name)
        finally:
            c.close()
    return os_error(f)

def main(cmd, args):
    if cmd == "syscall":
        for n in args:
            isolated(n, SYSCALLS[n])
    elif cmd == "sockets":
        isolated("netlink", socket_probe(socket.AF_NETLINK, socket.SOCK_RAW, 0))
        isolated("packet", socket_probe(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)))  # ETH_P_ALL
        isolated("inet", socket_probe(socket.AF_INET, socket.SOCK_DGRAM, 0))
        isolated("unix", socket_probe(socket.AF_UNIX, socket.SOCK_STREAM, 0))
    elif cmd == "create":
        # Creating entries under each directory given.
        for base in args:
            print("readonly-mount:" + base, "yes" if os.statvfs(base).f_flag & os.ST_RDONLY else "no")
            for label, f in create_probes(base):
                print(label + ":" + base, name(os_error(f)))
    elif cmd == "abstract":
        own = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        own.bind("\0" + args[0] + "-own")
        own.listen(1)
        print("own", name(connect_abstract(args[0] + "-own")))
        print("host", name(connect_abstract(args[0])))
    elif cmd == "signal":
        pid = sleeper()  # before the handler: the child dies of SIGTERM
        got = []
        signal.signal(signal.SIGTERM, lambda s, f: got.append(s))
        r = libc.kill(pid, signal.SIGTERM)
        print("own-child", name(ctypes.get_errno() if r else 0))
        os.waitpid(pid, 0)
        r = libc.kill(1, signal.SIGTERM)
        print("pid1", name(ctypes.get_errno() if r else 0))
        time.sleep(0.5)
        print("sigterm-received", "yes" if got else "no")
    elif cmd == "ptrace3":
        pid = sleeper()
        print("sibling", pid)
        for i in range(3):
            print("ptrace%d" % i, name(sys_call(101, 16, pid, 0, 0)), flush=True)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    elif cmd == "bind80":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        print("bind80", name(os_error(lambda: s.bind(("0.0.0.0", 80)))))
    elif cmd == "landlock-abi":
        print(libc.syscall(ctypes.c_long(444), None, ctypes.c_long(0), ctypes.c_long(1)))
    else:
        sys.exit("unknown probe " + cmd)

main(sys.argv[1], sys.argv[2:])
"""#

    /// `./arch native|i386|x32`: getpid through the native syscall entry, through
    /// the i386 entry (`int $0x80`, eax = 20) or the x32 ABI (`syscall` with
    /// __X32_SYSCALL_BIT | 39). Prints `ABI ret=R getpid=P` if it survives the call.
    static let archC = #"""
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long ret;
    if (argc > 1 && strcmp(argv[1], "i386") == 0) {
        __asm__ volatile ("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
    } else if (argc > 1 && strcmp(argv[1], "x32") == 0) {
        __asm__ volatile ("syscall" : "=a"(ret) : "a"(0x40000000L | 39L) : "rcx", "r11", "memory");
    } else if (argc > 1 && strcmp(argv[1], "native") == 0) {
        __asm__ volatile ("syscall" : "=a"(ret) : "a"(39L) : "rcx", "r11", "memory");
    } else {
        fprintf(stderr, "usage: %s native|i386|x32\n", argv[0]);
        return 2;
    }
    printf("%s ret=%ld getpid=%ld\n", argv[1], ret, (long)getpid());
    return 0;
}
"""#
}
