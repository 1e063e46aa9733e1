#!/usr/bin/env python3
"""Generate Sources/SandboxPolicy/SyscallTable.swift: the syscall
name -> number tables for x86_64 and aarch64.

Sources:
  x86_64   /usr/include/x86_64-linux-gnu/asm/unistd_64.h   (linux-libc-dev)
  aarch64  /usr/include/asm-generic/unistd.h               (linux-libc-dev), read with
           the __ARCH_WANT_* switches arch/arm64/include/uapi/asm/unistd.h sets and
           __BITS_PER_LONG == 64, by the small preprocessor below (no compiler needed).
  plus     EXTRA: syscalls added after the installed headers (Debian bookworm ships
           6.1 headers) up to the kernel we target. When the headers already have
           one of them, its number must agree, or generation fails.

Usage:  Scripts/gen-syscalls.py [--x86-64-header P] [--generic-header P] [--output P]
Default output: Sources/SandboxPolicy/SyscallTable.swift (relative to the repo root).
"""
import argparse
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_X86 = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"
DEFAULT_GENERIC = "/usr/include/asm-generic/unistd.h"
DEFAULT_OUTPUT = os.path.join(REPO, "Sources", "SandboxPolicy", "SyscallTable.swift")

# What arch/arm64/include/uapi/asm/unistd.h defines before including asm-generic.
ARM64_DEFINES = {
    "__BITS_PER_LONG": "64",
    "__ARCH_WANT_RENAMEAT": "",
    "__ARCH_WANT_NEW_STAT": "",
    "__ARCH_WANT_SET_GET_RLIMIT": "",
    "__ARCH_WANT_TIME32_SYSCALLS": "",
    "__ARCH_WANT_SYS_CLONE3": "",
    "__ARCH_WANT_MEMFD_SECRET": "",
}

# (name, number, arches, first kernel) for syscalls newer than the installed headers.
# From arch/x86/entry/syscalls/syscall_64.tbl and scripts/syscall.tbl (the generic
# table arm64 uses) up to Linux 6.18. From 424 on, x86_64 and the generic table use
# the same numbers. listns (470) is 6.19 and deliberately absent.
BOTH = ("x86_64", "aarch64")
EXTRA = [
    ("uretprobe",          335, ("x86_64",), "6.11"),
    ("uprobe",             336, ("x86_64",), "6.18"),
    ("cachestat",          451, BOTH, "6.5"),
    ("fchmodat2",          452, BOTH, "6.6"),
    ("map_shadow_stack",   453, BOTH, "6.6"),
    ("futex_wake",         454, BOTH, "6.7"),
    ("futex_wait",         455, BOTH, "6.7"),
    ("futex_requeue",      456, BOTH, "6.7"),
    ("statmount",          457, BOTH, "6.8"),
    ("listmount",          458, BOTH, "6.8"),
    ("lsm_get_self_attr",  459, BOTH, "6.8"),
    ("lsm_set_self_attr",  460, BOTH, "6.8"),
    ("lsm_list_modules",   461, BOTH, "6.8"),
    ("mseal",              462, BOTH, "6.10"),
    ("setxattrat",         463, BOTH, "6.13"),
    ("getxattrat",         464, BOTH, "6.13"),
    ("listxattrat",        465, BOTH, "6.13"),
    ("removexattrat",      466, BOTH, "6.13"),
    ("open_tree_attr",     467, BOTH, "6.15"),
    ("file_getattr",       468, BOTH, "6.17"),
    ("file_setattr",       469, BOTH, "6.17"),
]
TARGET_KERNEL = "6.18"

# __NR_* macros of asm-generic/unistd.h that are not syscalls.
NOT_SYSCALLS = {"syscalls", "arch_specific_syscall"}


def fail(msg):
    sys.exit(f"gen-syscalls: {msg}")


def parse_x86_64(path):
    table = {}
    for line in open(path, encoding="utf-8"):
        m = re.match(r"\s*#\s*define\s+__NR_(\w+)\s+(\d+)\s*$", line)
        if m:
            table[m.group(1)] = int(m.group(2))
    if len(table) < 300:
        fail(f"{path}: only {len(table)} syscalls found; is this unistd_64.h?")
    return table


def eval_condition(expr, defines):
    """#if expressions of asm-generic/unistd.h: defined(X), X == N, X != N, !, &&, ||."""
    expr = re.sub(r"/\*.*?\*/", "", expr)
    expr = re.sub(r"defined\s*\(\s*(\w+)\s*\)", lambda m: "1" if m.group(1) in defines else "0", expr)
    expr = re.sub(r"defined\s+(\w+)", lambda m: "1" if m.group(1) in defines else "0", expr)

    def ident(m):
        word = m.group(0)
        if word.isdigit():
            return word
        value = defines.get(word, "0")
        return value if value.strip() else "1"
    expr = re.sub(r"\b\w+\b", ident, expr)
    if not re.fullmatch(r"[\d\s()!=<>&|]*", expr):
        fail(f"cannot evaluate #if expression: {expr!r}")
    py = expr.replace("&&", " and ").replace("||", " or ")
    py = re.sub(r"!(?!=)", " not ", py)
    return bool(eval(py, {"__builtins__": {}}))  # only digits and operators reach here


def preprocess(path, defines):
    """Tiny preprocessor: conditionals and object-like #defines; returns the defines."""
    defines = dict(defines)
    stack = []  # (active_now, any_branch_taken, parent_active)
    active = True
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"\\\n", " ", text)
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith("#"):
            continue
        m = re.match(r"#\s*(\w+)\s*(.*)$", line)
        if not m:
            continue
        directive, rest = m.group(1), m.group(2).strip()
        if directive in ("if", "ifdef", "ifndef"):
            if directive == "if":
                cond = eval_condition(rest, defines) if active else False
            else:
                name = rest.split()[0]
                cond = (name in defines) == (directive == "ifdef")
            stack.append((active, cond))
            active = active and cond
        elif directive == "elif":
            parent, taken = stack[-1]
            cond = (not taken) and parent and eval_condition(rest, defines)
            stack[-1] = (parent, taken or cond)
            active = parent and cond
        elif directive == "else":
            parent, taken = stack[-1]
            stack[-1] = (parent, True)
            active = parent and not taken
        elif directive == "endif":
            parent, _ = stack.pop()
            active = parent
        elif not active:
            continue
        elif directive == "define":
            dm = re.match(r"(\w+)(\([^)]*\))?\s*(.*)$", rest)
            if dm and not dm.group(2):
                defines[dm.group(1)] = re.sub(r"/\*.*?\*/", "", dm.group(3)).strip()
        elif directive == "undef":
            defines.pop(rest.split()[0], None)
        # #include <asm/bitsperlong.h>: __BITS_PER_LONG is predefined above.
    if stack:
        fail(f"{path}: unbalanced #if")
    return defines


def parse_generic(path, arch_defines):
    defines = preprocess(path, arch_defines)

    def resolve(value, depth=0):
        value = value.strip()
        if value.isdigit():
            return int(value)
        if depth < 8 and value in defines:
            return resolve(defines[value], depth + 1)
        return None

    table = {}
    for key, value in defines.items():
        if not key.startswith("__NR_") or key[len("__NR_"):] in NOT_SYSCALLS:
            continue
        number = resolve(value)
        if number is None:
            fail(f"{path}: cannot resolve {key} = {value!r}")
        table[key[len("__NR_"):]] = number
    if len(table) < 250:
        fail(f"{path}: only {len(table)} syscalls found; is this asm-generic/unistd.h?")
    return table


def add_extra(tables):
    for name, number, arches, _ in EXTRA:
        for arch in arches:
            have = tables[arch].get(name)
            if have is not None and have != number:
                fail(f"{arch}: headers say {name} = {have}, EXTRA says {number}")
            tables[arch][name] = number


def check(tables):
    for arch, table in tables.items():
        by_number = {}
        for name, number in table.items():
            if number in by_number:
                fail(f"{arch}: {name} and {by_number[number]} both have number {number}")
            by_number[number] = name
    # Spot checks that catch a wrong header or a broken preprocessor.
    expect = {
        "x86_64": {"read": 0, "openat": 257, "ptrace": 101, "clone3": 435, "newfstatat": 262},
        "aarch64": {"io_setup": 0, "openat": 56, "ptrace": 117, "clone3": 435, "fcntl": 25,
                    "newfstatat": 79, "fstat": 80, "mmap": 222, "renameat": 38,
                    "getrlimit": 163, "memfd_secret": 447},
    }
    for arch, pairs in expect.items():
        for name, number in pairs.items():
            if tables[arch].get(name) != number:
                fail(f"{arch}: expected {name} = {number}, got {tables[arch].get(name)}")
    for absent in ("arch_specific_syscall", "syscalls", "open", "fork", "stat", "fcntl64", "mmap2", "clock_gettime64"):
        if absent in tables["aarch64"]:
            fail(f"aarch64 table must not contain {absent}")


def swift_dict(table, indent="        "):
    lines = []
    for name, number in sorted(table.items(), key=lambda kv: (kv[1], kv[0])):
        lines.append(f'{indent}"{name}": {number},')
    return "\n".join(lines)


def render(tables, sources):
    extra_doc = "\n".join(
        f"///   {name} = {number} ({', '.join(arches)}; Linux {since})"
        for name, number, arches, since in EXTRA)
    return f"""// GENERATED by Scripts/gen-syscalls.py — do not edit; run the script instead.
//
// Sources:
//   x86_64:  {sources['x86_64']}
//   aarch64: {sources['aarch64']} (arm64 __ARCH_WANT_* switches, 64-bit)
//   plus the syscalls added up to Linux {TARGET_KERNEL} that those headers may lack.

/// Syscall name → number for the architectures `sandbox` runs on. Names are the
/// kernel's (`__NR_<name>`), which is also what libseccomp and the OCI profiles use.
///
/// Added on top of the installed headers (up to Linux {TARGET_KERNEL}):
{extra_doc}
public enum SyscallTable {{
    /// Architectures with a table, as `uname -m` spells them.
    public static let architectures = ["x86_64", "aarch64"]

    /// The number of `name` on `arch` (`x86_64` or `aarch64`; `amd64`/`arm64` are
    /// accepted too), or nil when that architecture has no such syscall.
    public static func number(_ name: String, arch: String) -> Int? {{
        table(arch)?[name]
    }}

    /// Whether `name` is a syscall on any supported architecture.
    public static func isKnown(_ name: String) -> Bool {{
        x86_64[name] != nil || aarch64[name] != nil
    }}

    /// Every syscall name of `arch`, sorted; empty for an unknown architecture.
    public static func names(arch: String) -> [String] {{
        (table(arch)?.keys).map {{ $0.sorted() }} ?? []
    }}

    /// The name of syscall `number` on `arch` (for reports of a denied call).
    public static func name(number: Int, arch: String) -> String? {{
        switch canonicalArch(arch) {{
        case "x86_64"?: return x86_64ByNumber[number]
        case "aarch64"?: return aarch64ByNumber[number]
        default: return nil
        }}
    }}

    /// `x86_64`/`amd64` → `x86_64`, `aarch64`/`arm64` → `aarch64`, else nil.
    public static func canonicalArch(_ arch: String) -> String? {{
        switch arch {{
        case "x86_64", "amd64": return "x86_64"
        case "aarch64", "arm64": return "aarch64"
        default: return nil
        }}
    }}

    private static func table(_ arch: String) -> [String: Int]? {{
        switch canonicalArch(arch) {{
        case "x86_64"?: return x86_64
        case "aarch64"?: return aarch64
        default: return nil
        }}
    }}

    private static let x86_64ByNumber = Dictionary(uniqueKeysWithValues: x86_64.map {{ ($0.value, $0.key) }})
    private static let aarch64ByNumber = Dictionary(uniqueKeysWithValues: aarch64.map {{ ($0.value, $0.key) }})

    static let x86_64: [String: Int] = [
{swift_dict(tables['x86_64'])}
    ]

    static let aarch64: [String: Int] = [
{swift_dict(tables['aarch64'])}
    ]
}}
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--x86-64-header", default=DEFAULT_X86)
    ap.add_argument("--generic-header", default=DEFAULT_GENERIC)
    ap.add_argument("--output", default=DEFAULT_OUTPUT)
    args = ap.parse_args()
    for path in (args.x86_64_header, args.generic_header):
        if not os.path.isfile(path):
            fail(f"{path} not found (apt-get install linux-libc-dev)")
    tables = {
        "x86_64": parse_x86_64(args.x86_64_header),
        "aarch64": parse_generic(args.generic_header, ARM64_DEFINES),
    }
    add_extra(tables)
    check(tables)
    out = render(tables, {"x86_64": args.x86_64_header, "aarch64": args.generic_header})
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(out)
    print(f"wrote {args.output}: x86_64 {len(tables['x86_64'])}, aarch64 {len(tables['aarch64'])} syscalls")


if __name__ == "__main__":
    main()
