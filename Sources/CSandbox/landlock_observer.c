/*
 * landlock_observer.c — Landlock's denials without kernel audit (see
 * sandbox_landlock_observer.h, Docs/denials.md).
 *
 * Three parts: a reader of the kernel's BTF (type ids and member offsets), the BPF
 * program written as instructions with those offsets, and the ring buffer's consumer
 * with the decoder. Supervisor-side only (allocates, threads may call it).
 */
#define _GNU_SOURCE
#include "sandbox_landlock_observer.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---------------------------------------------------------------- BTF reading */

struct btf_view {
    uint8_t *raw;
    size_t mapped;     /* raw is mmap'ed, this long (0: malloc'ed) */
    const uint8_t *types;
    uint32_t types_len;
    const char *strs;
    uint32_t strs_len;
    uint32_t *offsets; /* type id → byte offset in `types` (id 0 = void) */
    uint32_t count;    /* ids 1..count-1 */
};

static const struct btf_type *btf_type_at(const struct btf_view *b, uint32_t id) {
    if (id == 0 || id >= b->count) return NULL;
    return (const struct btf_type *)(b->types + b->offsets[id]);
}

static const char *btf_name(const struct btf_view *b, uint32_t off) {
    return off < b->strs_len ? b->strs + off : "";
}

/* Bytes that follow a btf_type of this kind (the kernel's btf_type_size). */
static long btf_extra(const struct btf_type *t) {
    uint32_t vlen = BTF_INFO_VLEN(t->info);
    switch (BTF_INFO_KIND(t->info)) {
    case BTF_KIND_INT: return 4;
    case BTF_KIND_ARRAY: return sizeof(struct btf_array);
    case BTF_KIND_STRUCT: case BTF_KIND_UNION: return (long)vlen * sizeof(struct btf_member);
    case BTF_KIND_ENUM: return (long)vlen * sizeof(struct btf_enum);
    case BTF_KIND_FUNC_PROTO: return (long)vlen * sizeof(struct btf_param);
    case BTF_KIND_VAR: return sizeof(struct btf_var);
    case BTF_KIND_DATASEC: return (long)vlen * sizeof(struct btf_var_secinfo);
    case BTF_KIND_DECL_TAG: return sizeof(struct btf_decl_tag);
    case 19 /* BTF_KIND_ENUM64 */: return (long)vlen * 12;
    case BTF_KIND_PTR: case BTF_KIND_FWD: case BTF_KIND_TYPEDEF: case BTF_KIND_VOLATILE:
    case BTF_KIND_CONST: case BTF_KIND_RESTRICT: case BTF_KIND_FUNC: case BTF_KIND_FLOAT:
    case BTF_KIND_TYPE_TAG:
        return 0;
    default: return -1;
    }
}

static void btf_free(struct btf_view *b) {
    if (b->raw && b->mapped) munmap(b->raw, b->mapped);
    else free(b->raw);
    free(b->offsets);
    memset(b, 0, sizeof *b);
}

/* Maps the kernel's BTF (sysfs allows it from 6.16: 0.1 ms where reading it costs
 * 5 ms in page-sized pieces), else reads it. */
static int btf_load(struct btf_view *b, const char *path) {
    memset(b, 0, sizeof *b);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > (256 << 20)) {
        int e = errno ? errno : EINVAL;
        close(fd);
        return -e;
    }
    size_t len = (size_t)st.st_size;
    void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m != MAP_FAILED) {
        b->raw = m;
        b->mapped = len;
    } else {
        size_t cap = len;
        len = 0;
        b->raw = malloc(cap);
        if (!b->raw) { close(fd); return -ENOMEM; }
        for (;;) {
            ssize_t n = read(fd, b->raw + len, cap - len);
            if (n < 0) { if (errno == EINTR) continue; int e = errno; close(fd); btf_free(b); return -e; }
            if (n == 0 || (len += (size_t)n) == cap) break;
        }
    }
    close(fd);
    const struct btf_header *h = (const struct btf_header *)b->raw;
    if (len < sizeof *h || h->magic != BTF_MAGIC || h->hdr_len > len ||
        (uint64_t)h->hdr_len + h->type_off + h->type_len > len ||
        (uint64_t)h->hdr_len + h->str_off + h->str_len > len) {
        btf_free(b);
        return -EINVAL;
    }
    b->types = b->raw + h->hdr_len + h->type_off;
    b->types_len = h->type_len;
    b->strs = (const char *)(b->raw + h->hdr_len + h->str_off);
    b->strs_len = h->str_len;
    return 0;
}

/* Type id → offset, for member lookups (random access by id). */
static int btf_index(struct btf_view *b) {
    /* Count, then index. */
    uint32_t n = 1;
    for (uint32_t off = 0; off + sizeof(struct btf_type) <= b->types_len; n++) {
        long extra = btf_extra((const struct btf_type *)(b->types + off));
        if (extra < 0) { return -EINVAL; }
        off += sizeof(struct btf_type) + (uint32_t)extra;
    }
    b->offsets = calloc(n, sizeof *b->offsets);
    if (!b->offsets) { return -ENOMEM; }
    uint32_t id = 1;
    for (uint32_t off = 0; off + sizeof(struct btf_type) <= b->types_len && id < n; id++) {
        b->offsets[id] = off;
        off += sizeof(struct btf_type) + (uint32_t)btf_extra((const struct btf_type *)(b->types + off));
    }
    b->count = id;
    return 0;
}

/* Finds several named types in one pass over the ~130 000 of vmlinux. */
struct btf_want { int kind; const char *name; uint32_t id; };
static void btf_find_all(const struct btf_view *b, struct btf_want *want, size_t n) {
    size_t left = n;
    uint32_t id = 0;
    for (uint32_t off = 0; off + sizeof(struct btf_type) <= b->types_len && left;
         off += sizeof(struct btf_type) + (uint32_t)btf_extra((const struct btf_type *)(b->types + off))) {
        const struct btf_type *t = (const struct btf_type *)(b->types + off);
        id++;
        if (btf_extra(t) < 0) return;
        int kind = (int)BTF_INFO_KIND(t->info);
        if (kind != BTF_KIND_FUNC && kind != BTF_KIND_STRUCT && kind != BTF_KIND_TYPEDEF) continue;
        if (kind == BTF_KIND_STRUCT && BTF_INFO_VLEN(t->info) == 0) continue;
        const char *name = btf_name(b, t->name_off);
        for (size_t i = 0; i < n; i++) {
            if (want[i].id || want[i].kind != kind || strcmp(want[i].name, name) != 0) continue;
            want[i].id = id;
            left--;
            break;
        }
    }
}

/* Through typedefs and qualifiers. */
static uint32_t btf_resolve(const struct btf_view *b, uint32_t id) {
    for (int hops = 0; hops < 32; hops++) {
        const struct btf_type *t = btf_type_at(b, id);
        if (!t) return 0;
        switch (BTF_INFO_KIND(t->info)) {
        case BTF_KIND_TYPEDEF: case BTF_KIND_VOLATILE: case BTF_KIND_CONST:
        case BTF_KIND_RESTRICT: case BTF_KIND_TYPE_TAG:
            id = t->type;
            continue;
        default: return id;
        }
    }
    return 0;
}

/* The byte offset of `member` in the struct/union `id`, looking into anonymous
 * members (dentry's d_name sits in an anonymous union). -1: not there. */
static long btf_member_in(const struct btf_view *b, uint32_t id, const char *member, int depth) {
    const struct btf_type *t = btf_type_at(b, btf_resolve(b, id));
    if (!t || depth > 8) return -1;
    int kind = BTF_INFO_KIND(t->info);
    if (kind != BTF_KIND_STRUCT && kind != BTF_KIND_UNION) return -1;
    const struct btf_member *m = (const struct btf_member *)(t + 1);
    for (uint32_t i = 0; i < BTF_INFO_VLEN(t->info); i++) {
        uint32_t bits = BTF_INFO_KFLAG(t->info) ? BTF_MEMBER_BIT_OFFSET(m[i].offset) : m[i].offset;
        if (m[i].name_off == 0) {
            long inner = btf_member_in(b, m[i].type, member, depth + 1);
            if (inner >= 0) return (long)(bits / 8) + inner;
        } else if (strcmp(btf_name(b, m[i].name_off), member) == 0) {
            return bits % 8 ? -1 : (long)(bits / 8);
        }
    }
    return -1;
}

static uint32_t btf_size_of(const struct btf_view *b, uint32_t id) {
    const struct btf_type *t = btf_type_at(b, btf_resolve(b, id));
    return t ? t->size : 0;
}

/* ---------------------------------------------------------------- the program */

/* Steps of the path walk, each a component or a mount crossing (deeper paths lose
 * their top, `object_partial`): each costs the verifier ≈0.5 ms once, when the
 * observer loads. */
#define NAMES 20
#define NAME_LEN 64
#define REQ_COPY 128
#define OBJ_LEN 192
/* The record the program writes (all offsets fixed here, the kernel's come from BTF). */
#define R_MONO 0
#define R_PIDTGID 8
#define R_UID 16
#define R_COMPLETE 20
#define R_COUNT 21
#define R_AUDIT 22   /* the audit data type (a copy, for the decoder) */
#define R_REQ 24
#define R_MASKS (R_REQ + REQ_COPY)     /* 16 layer masks (u16), fs access */
#define R_OBJ (R_MASKS + 32)
#define R_NAMES (R_OBJ + OBJ_LEN)
#define R_SIZE (R_NAMES + NAMES * NAME_LEN)

/* lsm_audit.h's data types (#defines, so not in BTF; stable since 2.6). */
#define AUDIT_PATH 1
#define AUDIT_NET 2
#define AUDIT_TASK 5
#define AUDIT_DENTRY 10
#define AUDIT_IOCTL_OP 11
#define AUDIT_FILE 12
#define REQUEST_ABSTRACT_UNIX 5
#define REQUEST_FS_ACCESS 3


static long sys_bpf(int cmd, union bpf_attr *attr) {
    return syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

/* Whether the kernel takes an fentry program on the function at all, before paying
 * for the index, the ring and the verifier: some refuse BPF trampolines (EPERM
 * before verification), and a refusal must cost a supervisor little. */
static int probe_fentry(uint32_t func_id, char *why, size_t why_len) {
    struct bpf_insn ret0[2] = {
        { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0 },
        { .code = BPF_JMP | BPF_EXIT },
    };
    union bpf_attr t;
    memset(&t, 0, sizeof t);
    t.prog_type = BPF_PROG_TYPE_TRACING;
    t.expected_attach_type = BPF_TRACE_FENTRY;
    t.attach_btf_id = func_id;
    t.insns = (uint64_t)(uintptr_t)ret0;
    t.insn_cnt = 2;
    t.license = (uint64_t)(uintptr_t)"GPL";
    long fd = sys_bpf(BPF_PROG_LOAD, &t);
    if (fd < 0) {
        int e = errno;
        snprintf(why, why_len, "the kernel refused the observer (BPF fentry on landlock_log_denial): %s%s",
                 strerror(e), e == EPERM ? " (it needs CAP_BPF and CAP_PERFMON, and a kernel that allows BPF trampolines)" : "");
        return -e;
    }
    close((int)fd);
    return 0;
}

struct offsets {
    uint32_t func_id;
    long req_type, req_audit, req_access, req_layer_masks, req_size;
    long audit_type, audit_u;
    long net_sk, net_family, net_dport, net_sport, net_size;
    long unix_addr, uaddr_len, uaddr_name;
    long task_tgid, task_comm;
    long file_path;
    long dentry_parent, dentry_name, qstr_name;
    long mount_mnt, mount_parent, mount_mountpoint, vfsmount_root;
    long path_mnt, path_dentry, ioctlop_path;
    long task_fs, fs_pwd; /* the tests' stand-in request: the caller's cwd */
};

static int read_offsets(struct offsets *o, int fentry, char *why, size_t why_len) {
    struct btf_view b;
    int rc = btf_load(&b, "/sys/kernel/btf/vmlinux");
    if (rc < 0) {
        snprintf(why, why_len, "the kernel's BTF (/sys/kernel/btf/vmlinux): %s", strerror(-rc));
        return rc;
    }
    memset(o, 0, sizeof *o);
    struct btf_want types[] = {
        {BTF_KIND_FUNC, "landlock_log_denial", 0}, {BTF_KIND_STRUCT, "landlock_request", 0},
        {BTF_KIND_STRUCT, "common_audit_data", 0}, {BTF_KIND_STRUCT, "lsm_network_audit", 0},
        {BTF_KIND_STRUCT, "unix_sock", 0}, {BTF_KIND_STRUCT, "unix_address", 0},
        {BTF_KIND_STRUCT, "task_struct", 0}, {BTF_KIND_STRUCT, "file", 0},
        {BTF_KIND_STRUCT, "dentry", 0}, {BTF_KIND_STRUCT, "qstr", 0},
        {BTF_KIND_STRUCT, "mount", 0}, {BTF_KIND_STRUCT, "vfsmount", 0},
        {BTF_KIND_TYPEDEF, "access_mask_t", 0}, {BTF_KIND_TYPEDEF, "layer_mask_t", 0},
        {BTF_KIND_STRUCT, "path", 0}, {BTF_KIND_STRUCT, "lsm_ioctlop_audit", 0},
        {BTF_KIND_STRUCT, "fs_struct", 0},
    };
    btf_find_all(&b, types, sizeof types / sizeof types[0]);
    o->func_id = types[0].id;
    uint32_t req = types[1].id, cad = types[2].id, net = types[3].id, usock = types[4].id,
             uaddr = types[5].id, task = types[6].id, file = types[7].id, dentry = types[8].id,
             qstr = types[9].id, mount = types[10].id, vfsmount = types[11].id,
             path = types[14].id, ioctlop = types[15].id, fs = types[16].id;
    if (!o->func_id) {
        btf_free(&b);
        snprintf(why, why_len, "the kernel has no landlock_log_denial (Landlock without CONFIG_AUDIT, or older than 6.15)");
        return -ENOENT;
    }
    if ((fentry && (rc = probe_fentry(o->func_id, why, why_len)) < 0) || (rc = btf_index(&b)) < 0) {
        if (!*why) snprintf(why, why_len, "indexing the kernel's BTF: %s", strerror(-rc));
        btf_free(&b);
        return rc;
    }
    struct { long *dst; uint32_t type; const char *member; } want[] = {
        {&o->req_type, req, "type"}, {&o->req_audit, req, "audit"}, {&o->req_access, req, "access"},
        {&o->req_layer_masks, req, "layer_masks"},
        {&o->audit_type, cad, "type"}, {&o->audit_u, cad, "u"},
        {&o->net_sk, net, "sk"}, {&o->net_family, net, "family"}, {&o->net_dport, net, "dport"},
        {&o->net_sport, net, "sport"},
        {&o->unix_addr, usock, "addr"}, {&o->uaddr_len, uaddr, "len"}, {&o->uaddr_name, uaddr, "name"},
        {&o->task_tgid, task, "tgid"}, {&o->task_comm, task, "comm"},
        {&o->file_path, file, "f_path"},
        {&o->dentry_parent, dentry, "d_parent"}, {&o->dentry_name, dentry, "d_name"},
        {&o->qstr_name, qstr, "name"},
        {&o->mount_mnt, mount, "mnt"}, {&o->mount_parent, mount, "mnt_parent"},
        {&o->mount_mountpoint, mount, "mnt_mountpoint"}, {&o->vfsmount_root, vfsmount, "mnt_root"},
        {&o->path_mnt, path, "mnt"}, {&o->path_dentry, path, "dentry"}, {&o->ioctlop_path, ioctlop, "path"},
        {&o->task_fs, task, "fs"}, {&o->fs_pwd, fs, "pwd"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        *want[i].dst = want[i].type ? btf_member_in(&b, want[i].type, want[i].member, 0) : -1;
        if (*want[i].dst < 0) {
            const struct btf_type *t = btf_type_at(&b, want[i].type);
            snprintf(why, why_len, "the kernel's BTF has no %s in struct %s", want[i].member,
                     t ? btf_name(&b, t->name_off) : "(missing)");
            btf_free(&b);
            return -ENOENT;
        }
    }
    o->req_size = btf_size_of(&b, req);
    o->net_size = btf_size_of(&b, net);
    /* The decoder reads rights and layer masks as 16 bits (Landlock's types since
     * 6.x); a kernel that widened them is refused, not misread. */
    uint32_t access_size = btf_size_of(&b, types[12].id), layer_size = btf_size_of(&b, types[13].id);
    btf_free(&b);
    if (access_size != 2 || layer_size != 2) {
        snprintf(why, why_len, "the kernel's Landlock access_mask_t/layer_mask_t are %u/%u bytes, not 2/2 as the observer decodes them",
                 access_size, layer_size);
        return -ENOTSUP;
    }
    if (o->req_size > REQ_COPY || o->net_size > 64 || o->req_audit + o->audit_u + 16 > REQ_COPY) {
        snprintf(why, why_len, "the kernel's landlock_request is larger than the observer copies");
        return -E2BIG;
    }
    return 0;
}

/* An instruction list with forward labels. */
#define MAX_INSNS 2048
#define MAX_LABELS 256
struct prog {
    struct bpf_insn insn[MAX_INSNS];
    int n;
    int label_at[MAX_LABELS];   /* instruction index, -1 unset */
    struct { int insn, label; } fix[MAX_INSNS];
    int nfix;
    int overflow;
};

static void emit(struct prog *p, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    if (p->n >= MAX_INSNS) { p->overflow = 1; return; }
    p->insn[p->n++] = (struct bpf_insn){ .code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm };
}
/* A jump to `label`, resolved in finish(). */
static void jump(struct prog *p, uint8_t code, uint8_t dst, uint8_t src, int32_t imm, int label) {
    if (p->nfix >= MAX_INSNS) { p->overflow = 1; return; }
    p->fix[p->nfix].insn = p->n;
    p->fix[p->nfix].label = label;
    p->nfix++;
    emit(p, code, dst, src, 0, imm);
}
static void place(struct prog *p, int label) { p->label_at[label] = p->n; }
static int resolve_labels(struct prog *p) {
    for (int i = 0; i < p->nfix; i++) {
        int target = p->label_at[p->fix[i].label];
        if (target < 0) return -EINVAL;
        long off = (long)target - p->fix[i].insn - 1;
        if (off < -32768 || off > 32767) return -E2BIG;
        p->insn[p->fix[i].insn].off = (int16_t)off;
    }
    return p->overflow ? -E2BIG : 0;
}

#define R0 0
#define R1 1
#define R2 2
#define R3 3
#define R6 6
#define R7 7
#define R8 8
#define R9 9
#define R10 10

#define MOV(d, s) emit(p, BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOVI(d, i) emit(p, BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define ADDI(d, i) emit(p, BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define LDX(sz, d, s, o) emit(p, BPF_LDX | (sz) | BPF_MEM, d, s, o, 0)
#define STX(sz, d, s, o) emit(p, BPF_STX | (sz) | BPF_MEM, d, s, o, 0)
#define STI(sz, d, o, i) emit(p, BPF_ST | (sz) | BPF_MEM, d, 0, o, i)
#define CALL(f) emit(p, BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define JEQI(d, i, l) jump(p, BPF_JMP | BPF_JEQ | BPF_K, d, 0, i, l)
#define JNEI(d, i, l) jump(p, BPF_JMP | BPF_JNE | BPF_K, d, 0, i, l)
#define JEQ(d, s, l) jump(p, BPF_JMP | BPF_JEQ | BPF_X, d, s, 0, l)
#define JNE(d, s, l) jump(p, BPF_JMP | BPF_JNE | BPF_X, d, s, 0, l)
#define JA(l) jump(p, BPF_JMP | BPF_JA, 0, 0, 0, l)
#define LD_MAP(d, fd) do { emit(p, BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd); emit(p, 0, 0, 0, 0, 0); } while (0)
/* probe_read_kernel(dst_base + dst_off, size, src + src_off): src is in `src_reg`. */
static void probe_read(struct prog *p, int dst_base, int dst_off, int size, int src_reg, long src_off, int str) {
    MOV(R1, dst_base);
    ADDI(R1, dst_off);
    MOVI(R2, size);
    MOV(R3, src_reg);
    if (src_off) ADDI(R3, (int32_t)src_off);
    CALL(str ? BPF_FUNC_probe_read_kernel_str : BPF_FUNC_probe_read_kernel);
}

enum { L_OUT, L_DROP, L_MASKS_DONE, L_FAKE_OK, L_RESERVED, L_FINISH, L_DONE, L_PATH, L_OP, L_FILE, L_DENTRY, L_TASK, L_NET,
       L_WALK_SETUP, L_WALK, L_NAME0, L_NEXT0 = L_NAME0 + NAMES, L_END = L_NEXT0 + NAMES };

/* `fake_fd` ≥ 0 (tests): instead of the function's request, a stand-in built in that
 * per-CPU map — an fs access (read_file) to the caller's working directory — and
 * the rest of the program unchanged, so the path walk, the offsets and the decoder
 * meet real kernel objects where fentry is refused. */
static int build(struct prog *p, const struct offsets *o, int uids_fd, int ring_fd, int fake_fd, uint32_t run_cap) {
    memset(p, 0, sizeof *p);
    for (int i = 0; i < MAX_LABELS; i++) p->label_at[i] = -1;
    const int u = R_REQ + (int)o->req_audit + (int)o->audit_u; /* the audit union in the copy */

    /* The uid: only watched runs cost more than a lookup. */
    MOV(R6, R1);                            /* r6 = ctx */
    CALL(BPF_FUNC_get_current_uid_gid);
    STX(BPF_W, R10, R0, -4);
    LD_MAP(R1, uids_fd);
    MOV(R2, R10);
    ADDI(R2, -4);
    CALL(BPF_FUNC_map_lookup_elem);
    JEQI(R0, 0, L_OUT);
    MOV(R9, R0);                            /* r9 = {lost, records} of the run */
    LDX(BPF_DW, R1, R9, 8);
    /* Records one run may put in the ring; past it, its denials are only counted
     * (lost), so a run flooding denials cannot crowd the others out. */
    jump(p, BPF_JMP | BPF_JGE | BPF_K, R1, 0, (int32_t)(run_cap > INT32_MAX ? INT32_MAX : run_cap), L_DROP);
    MOVI(R1, 1);
    emit(p, BPF_STX | BPF_DW | BPF_ATOMIC, R9, R1, 8, BPF_ADD);
    LD_MAP(R1, ring_fd);
    MOVI(R2, R_SIZE);
    MOVI(R3, 0);
    CALL(BPF_FUNC_ringbuf_reserve);
    JNEI(R0, 0, L_RESERVED);
    place(p, L_DROP);                       /* no room, or past the cap: counted lost */
    MOVI(R1, 1);
    emit(p, BPF_STX | BPF_DW | BPF_ATOMIC, R9, R1, 0, BPF_ADD);
    JA(L_OUT);

    place(p, L_RESERVED);
    MOV(R8, R0);
    if (fake_fd < 0) {
        LDX(BPF_DW, R7, R6, 8);             /* r7 = request (ctx[1]) */
    } else {
        STI(BPF_W, R10, -8, 0);
        LD_MAP(R1, fake_fd);
        MOV(R2, R10);
        ADDI(R2, -8);
        CALL(BPF_FUNC_map_lookup_elem);
        JNEI(R0, 0, L_FAKE_OK);
        MOV(R1, R8);                        /* (a per-CPU array always has key 0) */
        MOVI(R2, 0);
        CALL(BPF_FUNC_ringbuf_discard);
        JA(L_OUT);
        place(p, L_FAKE_OK);
        MOV(R7, R0);                        /* r7 = the stand-in request */
        CALL(BPF_FUNC_get_current_task);
        MOV(R3, R0);
        probe_read(p, R10, -16, 8, R3, o->task_fs, 0);
        LDX(BPF_DW, R3, R10, -16);          /* current->fs */
        probe_read(p, R7, (int)(o->req_audit + o->audit_u), 16, R3, o->fs_pwd, 0);
        STI(BPF_W, R7, (int)o->req_type, REQUEST_FS_ACCESS);
        STI(BPF_B, R7, (int)(o->req_audit + o->audit_type), AUDIT_PATH);
        STI(BPF_H, R7, (int)o->req_access, 1 << 2); /* read_file */
        STI(BPF_DW, R7, (int)o->req_layer_masks, 0);
    }
    MOVI(R6, 0);
    CALL(BPF_FUNC_ktime_get_ns);
    STX(BPF_DW, R8, R0, R_MONO);
    CALL(BPF_FUNC_get_current_pid_tgid);
    STX(BPF_DW, R8, R0, R_PIDTGID);
    CALL(BPF_FUNC_get_current_uid_gid);
    STX(BPF_W, R8, R0, R_UID);
    STI(BPF_B, R8, R_COMPLETE, 0);
    for (int i = 0; i < OBJ_LEN; i += 8) STI(BPF_DW, R8, R_OBJ + i, 0);
    probe_read(p, R8, R_REQ, (int)o->req_size, R7, 0, 0);
    for (int i = 0; i < 32; i += 8) STI(BPF_DW, R8, R_MASKS + i, 0);
    LDX(BPF_W, R1, R8, R_REQ + (int)o->req_type);
    JNEI(R1, REQUEST_FS_ACCESS, L_MASKS_DONE); /* only fs access has a layer-mask array */
    LDX(BPF_DW, R3, R8, R_REQ + (int)o->req_layer_masks);
    probe_read(p, R8, R_MASKS, 32, R3, 0, 0);
    place(p, L_MASKS_DONE);
    LDX(BPF_B, R2, R8, R_REQ + (int)o->req_audit + (int)o->audit_type);
    STX(BPF_B, R8, R2, R_AUDIT);
    JEQI(R2, AUDIT_PATH, L_PATH);
    JEQI(R2, AUDIT_IOCTL_OP, L_OP);
    JEQI(R2, AUDIT_FILE, L_FILE);
    JEQI(R2, AUDIT_DENTRY, L_DENTRY);
    JEQI(R2, AUDIT_TASK, L_TASK);
    JEQI(R2, AUDIT_NET, L_NET);
    JA(L_FINISH);

    place(p, L_PATH);                       /* u.path = { mnt, dentry } */
    LDX(BPF_DW, R9, R8, u + (int)o->path_mnt);
    LDX(BPF_DW, R7, R8, u + (int)o->path_dentry);
    JA(L_WALK_SETUP);
    place(p, L_OP);                         /* u.op->path */
    LDX(BPF_DW, R3, R8, u);
    probe_read(p, R8, R_OBJ, 16, R3, o->ioctlop_path, 0);
    LDX(BPF_DW, R9, R8, R_OBJ + (int)o->path_mnt);
    LDX(BPF_DW, R7, R8, R_OBJ + (int)o->path_dentry);
    JA(L_WALK_SETUP);
    place(p, L_FILE);                       /* u.file->f_path */
    LDX(BPF_DW, R3, R8, u);
    probe_read(p, R8, R_OBJ, 16, R3, o->file_path, 0);
    LDX(BPF_DW, R9, R8, R_OBJ + (int)o->path_mnt);
    LDX(BPF_DW, R7, R8, R_OBJ + (int)o->path_dentry);
    JA(L_WALK_SETUP);
    place(p, L_DENTRY);                     /* u.dentry: no mount, the path within its fs */
    LDX(BPF_DW, R7, R8, u);
    MOVI(R9, 0);
    JA(L_WALK_SETUP);
    place(p, L_TASK);                       /* u.tsk: tgid, comm */
    LDX(BPF_DW, R9, R8, u);
    probe_read(p, R8, R_OBJ, 4, R9, o->task_tgid, 0);
    probe_read(p, R8, R_OBJ + 8, 16, R9, o->task_comm, 0);
    JA(L_FINISH);
    place(p, L_NET);                        /* u.net: the audit struct; an abstract name */
    LDX(BPF_DW, R9, R8, u);
    probe_read(p, R8, R_OBJ, (int)o->net_size, R9, 0, 0);
    LDX(BPF_W, R1, R8, R_REQ + (int)o->req_type);
    JNEI(R1, REQUEST_ABSTRACT_UNIX, L_FINISH);
    LDX(BPF_DW, R3, R8, R_OBJ + (int)o->net_sk);
    JEQI(R3, 0, L_FINISH);
    probe_read(p, R10, -16, 8, R3, o->unix_addr, 0);
    LDX(BPF_DW, R9, R10, -16);
    JEQI(R9, 0, L_FINISH);
    probe_read(p, R8, R_OBJ + 64, 4, R9, o->uaddr_len, 0);
    probe_read(p, R8, R_OBJ + 68, 110, R9, o->uaddr_name + 2 /* sun_family */, 0);
    JA(L_FINISH);

    /* The path: dentry names up to the mount's root, then on from where the mount
     * sits in its parent, up to the namespace's root (what d_path does, unrolled). */
    place(p, L_WALK_SETUP);
    STI(BPF_DW, R10, -8, 0);                /* [-8] = the current mount's root dentry */
    JEQI(R9, 0, L_WALK);
    probe_read(p, R10, -8, 8, R9, o->vfsmount_root, 0);
    ADDI(R9, -(int32_t)o->mount_mnt);       /* vfsmount → its struct mount */
    place(p, L_WALK);
    for (int i = 0; i < NAMES; i++) {
        const int slot = R_NAMES + i * NAME_LEN;
        MOVI(R6, i + 1);
        LDX(BPF_DW, R1, R10, -8);
        JNE(R1, R7, L_NAME0 + i);
        JEQI(R9, 0, L_DONE);
        STI(BPF_B, R8, slot, 0);            /* a mount crossing: no name */
        probe_read(p, R10, -16, 8, R9, o->mount_parent, 0);
        LDX(BPF_DW, R1, R10, -16);
        JEQ(R1, R9, L_DONE);
        JEQI(R1, 0, L_DONE);
        probe_read(p, R10, -24, 8, R9, o->mount_mountpoint, 0);
        LDX(BPF_DW, R7, R10, -24);
        LDX(BPF_DW, R9, R10, -16);
        probe_read(p, R10, -8, 8, R9, o->mount_mnt + o->vfsmount_root, 0);
        JA(L_NEXT0 + i);
        place(p, L_NAME0 + i);
        probe_read(p, R10, -16, 8, R7, o->dentry_name + o->qstr_name, 0);
        LDX(BPF_DW, R3, R10, -16);
        probe_read(p, R8, slot, NAME_LEN, R3, 0, 1);
        probe_read(p, R10, -16, 8, R7, o->dentry_parent, 0);
        LDX(BPF_DW, R1, R10, -16);
        JEQ(R1, R7, L_DONE);
        JEQI(R1, 0, L_DONE);
        MOV(R7, R1);
        place(p, L_NEXT0 + i);
    }
    JA(L_FINISH);

    place(p, L_DONE);
    STI(BPF_B, R8, R_COMPLETE, 1);
    place(p, L_FINISH);
    STX(BPF_B, R8, R6, R_COUNT);
    MOV(R1, R8);
    MOVI(R2, 0);
    CALL(BPF_FUNC_ringbuf_submit);
    place(p, L_OUT);
    MOVI(R0, 0);
    EXIT();
    return resolve_labels(p);
}

/* ---------------------------------------------------------------- bpf(2) */

static int map_create(uint32_t type, uint32_t key, uint32_t value, uint32_t entries) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_type = type;
    a.key_size = key;
    a.value_size = value;
    a.max_entries = entries;
    a.map_flags = 0;
    long fd = sys_bpf(BPF_MAP_CREATE, &a);
    return fd < 0 ? -errno : (int)fd;
}


int sbx_ll_observer_open(struct sbx_ll_observer *o, const char *raw_tracepoint, int fake_cwd_request,
                         uint32_t ring_size, uint32_t run_cap, char *why, size_t why_len) {
    int fake_fd = -1;
    memset(o, 0, sizeof *o);
    o->prog_fd = o->link_fd = o->ring_fd = o->uids_fd = -1;
    struct offsets off;
    why[0] = 0;
    int rc = read_offsets(&off, raw_tracepoint == NULL, why, why_len);
    if (rc < 0) return rc;
    o->off_req_type = (uint32_t)off.req_type;
    o->off_req_access = (uint32_t)off.req_access;
    o->off_req_audit_type = (uint32_t)(off.req_audit + off.audit_type);
    o->off_net_family = (uint32_t)off.net_family;
    o->off_net_dport = (uint32_t)off.net_dport;
    o->off_net_sport = (uint32_t)off.net_sport;

    if (ring_size < (64u << 10) || (ring_size & (ring_size - 1))) {
        snprintf(why, why_len, "the ring size %u is not a power of two of at least 64 KiB", ring_size);
        return -EINVAL;
    }
    rc = map_create(BPF_MAP_TYPE_HASH, 4, 16, 4096);
    if (rc < 0) { snprintf(why, why_len, "creating the observer's uid map: %s", strerror(-rc)); goto fail; }
    o->uids_fd = rc;
    rc = map_create(BPF_MAP_TYPE_RINGBUF, 0, 0, ring_size);
    if (rc < 0) { snprintf(why, why_len, "creating the observer's ring buffer: %s", strerror(-rc)); goto fail; }
    o->ring_fd = rc;

    struct prog *p = malloc(sizeof *p);
    if (!p) { rc = -ENOMEM; snprintf(why, why_len, "out of memory"); goto fail; }
    if (fake_cwd_request && raw_tracepoint) {
        rc = map_create(BPF_MAP_TYPE_PERCPU_ARRAY, 4, REQ_COPY, 1);
        if (rc < 0) { free(p); snprintf(why, why_len, "creating the stand-in request map: %s", strerror(-rc)); goto fail; }
        fake_fd = rc;
    }
    rc = build(p, &off, o->uids_fd, o->ring_fd, fake_fd, run_cap);
    if (rc < 0) { free(p); snprintf(why, why_len, "assembling the observer: %s", strerror(-rc)); goto fail; }
    char *log = malloc(1 << 16);
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    if (raw_tracepoint) {
        /* The same instructions on a raw tracepoint (ctx = the u64 arguments too):
         * what the tests can attach where fentry is refused. */
        a.prog_type = BPF_PROG_TYPE_RAW_TRACEPOINT;
    } else {
        a.prog_type = BPF_PROG_TYPE_TRACING;
        a.expected_attach_type = BPF_TRACE_FENTRY;
        a.attach_btf_id = off.func_id;
    }
    a.insns = (uint64_t)(uintptr_t)p->insn;
    a.insn_cnt = (uint32_t)p->n;
    a.license = (uint64_t)(uintptr_t)"GPL"; /* probe_read_kernel is GPL-only */
    memcpy(a.prog_name, "sbx_landlock", 13);
    if (log) { log[0] = 0; a.log_buf = (uint64_t)(uintptr_t)log; a.log_size = 1 << 16; a.log_level = 1; }
    long fd = sys_bpf(BPF_PROG_LOAD, &a);
    if (fd < 0 && errno == ENOSPC && log) { /* the log filled up: load again without it */
        a.log_buf = 0; a.log_size = 0; a.log_level = 0;
        fd = sys_bpf(BPF_PROG_LOAD, &a);
    }
    int e = errno;
    free(p);
    if (fake_fd >= 0) close(fake_fd); /* the program holds it */
    if (fd < 0) {
        rc = -e;
        const char *tail = "";
        if (log) { size_t n = strlen(log); tail = n > 300 ? log + n - 300 : log; }
        snprintf(why, why_len, "the kernel refused the observer (BPF fentry on landlock_log_denial): %s%s%s",
                 strerror(e), e == EPERM ? " (it needs CAP_BPF and CAP_PERFMON, and a kernel that allows BPF trampolines)" : "",
                 *tail ? "; verifier: " : "");
        if (*tail) strncat(why, tail, why_len - strlen(why) - 1);
        free(log);
        goto fail;
    }
    free(log);
    o->prog_fd = (int)fd;
    memset(&a, 0, sizeof a);
    a.raw_tracepoint.prog_fd = (uint32_t)o->prog_fd;
    a.raw_tracepoint.name = (uint64_t)(uintptr_t)raw_tracepoint;
    fd = sys_bpf(BPF_RAW_TRACEPOINT_OPEN, &a);
    if (fd < 0) {
        rc = -errno;
        snprintf(why, why_len, "attaching the observer to landlock_log_denial: %s%s", strerror(-rc),
                 rc == -E2BIG ? " (too many programs on that function already)" : "");
        goto fail;
    }
    o->link_fd = (int)fd;

    o->page_size = (size_t)sysconf(_SC_PAGESIZE);
    o->ring_size = ring_size;
    o->consumer = mmap(NULL, o->page_size, PROT_READ | PROT_WRITE, MAP_SHARED, o->ring_fd, 0);
    if (o->consumer == MAP_FAILED) { o->consumer = NULL; rc = -errno; snprintf(why, why_len, "mapping the ring: %s", strerror(-rc)); goto fail; }
    o->producer = mmap(NULL, o->page_size + 2 * o->ring_size, PROT_READ, MAP_SHARED, o->ring_fd, (off_t)o->page_size);
    if (o->producer == MAP_FAILED) { o->producer = NULL; rc = -errno; snprintf(why, why_len, "mapping the ring: %s", strerror(-rc)); goto fail; }
    return 0;
fail:
    sbx_ll_observer_close(o);
    return rc < 0 ? rc : -EINVAL;
}

void sbx_ll_observer_close(struct sbx_ll_observer *o) {
    if (o->producer) munmap(o->producer, o->page_size + 2 * o->ring_size);
    if (o->consumer) munmap(o->consumer, o->page_size);
    int *fds[] = {&o->link_fd, &o->prog_fd, &o->ring_fd, &o->uids_fd};
    for (size_t i = 0; i < 4; i++) if (*fds[i] >= 0) { close(*fds[i]); *fds[i] = -1; }
    o->producer = o->consumer = NULL;
}

int sbx_ll_observer_watch(const struct sbx_ll_observer *o, uint32_t uid) {
    uint64_t zero[2] = {0, 0};
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_fd = (uint32_t)o->uids_fd;
    a.key = (uint64_t)(uintptr_t)&uid;
    a.value = (uint64_t)(uintptr_t)zero;
    a.flags = BPF_NOEXIST;
    return sys_bpf(BPF_MAP_UPDATE_ELEM, &a) < 0 ? -errno : 0;
}

int sbx_ll_observer_unwatch(const struct sbx_ll_observer *o, uint32_t uid, uint64_t *lost) {
    uint64_t value[2] = {0, 0}; /* { lost, records put in the ring } */
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_fd = (uint32_t)o->uids_fd;
    a.key = (uint64_t)(uintptr_t)&uid;
    a.value = (uint64_t)(uintptr_t)value;
    *lost = 0;
    if (sys_bpf(BPF_MAP_LOOKUP_AND_DELETE_ELEM, &a) == 0) { *lost = value[0]; return 0; }
    /* Hash maps took LOOKUP_AND_DELETE only from 5.14: look up, then delete. */
    if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &a) < 0) return -errno;
    *lost = value[0];
    memset(&a, 0, sizeof a);
    a.map_fd = (uint32_t)o->uids_fd;
    a.key = (uint64_t)(uintptr_t)&uid;
    return sys_bpf(BPF_MAP_DELETE_ELEM, &a) < 0 ? -errno : 0;
}

uint64_t sbx_ll_observer_misses(const struct sbx_ll_observer *o) {
    struct bpf_prog_info info;
    memset(&info, 0, sizeof info);
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.info.bpf_fd = (uint32_t)o->prog_fd;
    a.info.info_len = sizeof info;
    a.info.info = (uint64_t)(uintptr_t)&info;
    return sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a) < 0 ? UINT64_MAX : info.recursion_misses;
}

int sbx_ll_observer_wait(const struct sbx_ll_observer *o, int timeout_ms) {
    struct pollfd pfd = { .fd = o->ring_fd, .events = POLLIN };
    int n = poll(&pfd, 1, timeout_ms);
    return n < 0 ? -errno : n > 0;
}

/* ---------------------------------------------------------------- decoding */

static uint16_t get16(const uint8_t *r, long off) { uint16_t v; memcpy(&v, r + off, 2); return v; }
static uint32_t get32(const uint8_t *r, long off) { uint32_t v; memcpy(&v, r + off, 4); return v; }
static uint64_t get64(const uint8_t *r, long off) { uint64_t v; memcpy(&v, r + off, 8); return v; }

static void decode(const struct sbx_ll_observer *o, const uint8_t *r, struct sbx_ll_event *ev) {
    memset(ev, 0, offsetof(struct sbx_ll_event, object) + 1);
    ev->mono_ns = get64(r, R_MONO);
    ev->pid = (uint32_t)(get64(r, R_PIDTGID) >> 32);
    ev->uid = get32(r, R_UID);
    ev->request = get32(r, R_REQ + o->off_req_type);
    ev->target_pid = -1;
    uint32_t access = get16(r, R_REQ + o->off_req_access);
    uint32_t audit_type = r[R_REQ + o->off_req_audit_type];
    if (ev->request == 3 /* fs access */ && get64(r, R_MASKS) | get64(r, R_MASKS + 8) |
                                            get64(r, R_MASKS + 16) | get64(r, R_MASKS + 24)) {
        /* Rights a layer still denies (a layer mask not cleared by a rule). */
        uint32_t denied = 0;
        for (int bit = 0; bit < 16; bit++)
            if ((access & (1u << bit)) && get16(r, R_MASKS + 2 * bit)) denied |= 1u << bit;
        if (denied) access = denied;
    }
    ev->access = access;
    switch (audit_type) {
    case AUDIT_TASK:
        ev->target_pid = (int32_t)get32(r, R_OBJ);
        memcpy(ev->target_comm, r + R_OBJ + 8, 15);
        break;
    case AUDIT_NET: {
        uint16_t dport = get16(r, R_OBJ + o->off_net_dport), sport = get16(r, R_OBJ + o->off_net_sport);
        uint16_t port = dport ? dport : sport;
        ev->port = (uint16_t)((port >> 8) | (port << 8));
        int32_t len = (int32_t)get32(r, R_OBJ + 64);
        const char *name = (const char *)r + R_OBJ + 68;
        if (ev->request == REQUEST_ABSTRACT_UNIX && len > 3 && name[0] == 0) {
            size_t n = (size_t)len - 3; /* sun_family (2) and the leading NUL */
            if (n > 107) n = 107;
            ev->object[0] = '@';
            for (size_t i = 0; i < n; i++) ev->object[1 + i] = name[1 + i] ? name[1 + i] : '@';
            ev->object[1 + n] = 0;
        }
        break;
    }
    default: {
        /* Names were written leaf first; a root dentry's name is "/". */
        int count = r[R_COUNT];
        if (count > NAMES) count = NAMES;
        size_t len = 0;
        for (int i = count - 1; i >= 0; i--) {
            const char *name = (const char *)r + R_NAMES + i * NAME_LEN;
            size_t n = strnlen(name, NAME_LEN);
            if (n == 0 || (n == 1 && name[0] == '/')) continue;
            /* A name that filled its slot may have been cut: say so in the path. */
            int cut = n == NAME_LEN - 1;
            if (len + 1 + n + (cut ? 3 : 0) >= sizeof ev->object) break;
            ev->object[len++] = '/';
            memcpy(ev->object + len, name, n);
            len += n;
            if (cut) { memcpy(ev->object + len, "\xe2\x80\xa6", 3); len += 3; ev->object_partial = 1; }
        }
        if (count > 0 && len == 0) ev->object[len++] = '/';
        ev->object[len] = 0;
        /* The walk stopped before the root (too deep), or had no mount to go on from
         * (a dentry only: umount, remount — the path is relative to a mount point not
         * known): the top is missing, shown as a leading "…". */
        if (count > 0 && (!r[R_COMPLETE] || r[R_AUDIT] == AUDIT_DENTRY)) {
            if (len + 3 < sizeof ev->object) {
                memmove(ev->object + 3, ev->object, len + 1);
                memcpy(ev->object, "\xe2\x80\xa6", 3);
            }
            ev->object_partial = 1;
        }
        break;
    }
    }
}

#define BUSY (1u << 31)
#define DISCARD (1u << 30)

int sbx_ll_observer_drain(struct sbx_ll_observer *o,
                          void (*fn)(const struct sbx_ll_event *event, void *context), void *context) {
    struct sbx_ll_event *ev = malloc(sizeof *ev);
    if (!ev) return -ENOMEM;
    uint64_t *cons_pos = (uint64_t *)o->consumer;
    const uint64_t *prod_pos = (const uint64_t *)o->producer;
    const uint8_t *data = (const uint8_t *)o->producer + o->page_size;
    int n = 0;
    o->stopped_busy = 0;
    uint64_t cons = __atomic_load_n(cons_pos, __ATOMIC_ACQUIRE);
    /* Up to where the producer was when the drain began: a flood going on meanwhile
     * cannot hold the caller (who holds the observer's lock) for its whole length. */
    const uint64_t prod = __atomic_load_n(prod_pos, __ATOMIC_ACQUIRE);
    for (;;) {
        if (cons >= prod) break;
        const uint32_t *hdr = (const uint32_t *)(data + (cons & (o->ring_size - 1)));
        uint32_t len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
        if (len & BUSY) { o->stopped_busy = 1; break; } /* reserved, not yet submitted */
        uint32_t size = len & ~(BUSY | DISCARD);
        if (!(len & DISCARD) && size >= R_SIZE) {
            decode(o, (const uint8_t *)hdr + 8, ev);
            fn(ev, context);
            n++;
        }
        cons += (size + 8 + 7) & ~7ull;
        __atomic_store_n(cons_pos, cons, __ATOMIC_RELEASE);
    }
    free(ev);
    return n;
}
