/* The SNI check's netlink side; see include/sandbox_nfqueue.h. */

#include "sandbox_nfqueue.h"
#include "sandbox_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_tables_compat.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A message being built in a caller's buffer; `bad` once anything did not fit. */
struct msg {
    uint8_t *buf;
    size_t cap;
    size_t len;
    int bad;
};

static struct nlmsghdr *msg_begin(struct msg *m, uint16_t type, uint16_t flags, uint8_t family, uint16_t res_id, uint32_t seq) {
    size_t need = NLMSG_ALIGN(sizeof(struct nlmsghdr)) + NLMSG_ALIGN(sizeof(struct nfgenmsg));
    if (m->len + need > m->cap) { m->bad = 1; return NULL; }
    struct nlmsghdr *h = (struct nlmsghdr *)(m->buf + m->len);
    memset(h, 0, need);
    h->nlmsg_type = type;
    h->nlmsg_flags = flags;
    h->nlmsg_seq = seq;
    h->nlmsg_len = (uint32_t)need;
    struct nfgenmsg *g = (struct nfgenmsg *)((uint8_t *)h + NLMSG_ALIGN(sizeof(struct nlmsghdr)));
    g->nfgen_family = family;
    g->version = NFNETLINK_V0;
    g->res_id = htons(res_id);
    m->len += need;
    return h;
}

/* An attribute in message `h`; returns its offset in the buffer (for nesting). */
static size_t attr(struct msg *m, struct nlmsghdr *h, uint16_t type, const void *data, size_t size) {
    size_t need = NLA_ALIGN(NLA_HDRLEN + size);
    if (!h || m->len + need > m->cap || NLA_HDRLEN + size > 0xffff) { m->bad = 1; return 0; }
    size_t at = m->len;
    struct nlattr *a = (struct nlattr *)(m->buf + at);
    memset(a, 0, need);
    a->nla_type = type;
    a->nla_len = (uint16_t)(NLA_HDRLEN + size);
    if (size) memcpy((uint8_t *)a + NLA_HDRLEN, data, size);
    m->len += need;
    h->nlmsg_len += (uint32_t)need;
    return at;
}

static void nest_end(struct msg *m, size_t at) {
    if (m->bad) return;
    struct nlattr *a = (struct nlattr *)(m->buf + at);
    a->nla_len = (uint16_t)(m->len - at);
}

static int nl_socket(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (fd < 0) return -errno;
    int b = sbx_net_netlink_bind(fd);   /* not the process id: see sandbox_net.h */
    if (b < 0) { close(fd); return b; }
    return fd;
}

static int send_all(int fd, const uint8_t *buf, size_t len) {
    struct sockaddr_nl to = { .nl_family = AF_NETLINK };
    ssize_t n = sendto(fd, buf, len, 0, (struct sockaddr *)&to, sizeof to);
    if (n < 0) return -errno;
    return (size_t)n == len ? 0 : -EMSGSIZE;
}

/* Waits for the ack (or error) of message `seq`: 0 or -errno. */
static int wait_ack(int fd, uint32_t seq) {
    uint8_t buf[8192];
    struct timeval tv = { .tv_sec = 2 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0) { if (errno == EINTR) continue; return -errno; }
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_seq == seq) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                return e->error;
            }
        }
    }
}

int sbx_nft_append_queue_rule(int family, const char *table, const char *chain, uint16_t queue) {
    uint8_t buf[1024];
    struct msg m = { .buf = buf, .cap = sizeof buf };
    uint32_t seq = (uint32_t)time(NULL);
    msg_begin(&m, NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, AF_UNSPEC, NFNL_SUBSYS_NFTABLES, seq);
    struct nlmsghdr *h = msg_begin(&m, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE,
                                   NLM_F_REQUEST | NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK, (uint8_t)family, 0, seq + 1);
    attr(&m, h, NFTA_RULE_TABLE, table, strlen(table) + 1);
    attr(&m, h, NFTA_RULE_CHAIN, chain, strlen(chain) + 1);
    size_t exprs = attr(&m, h, NLA_F_NESTED | NFTA_RULE_EXPRESSIONS, NULL, 0);
    size_t elem = attr(&m, h, NLA_F_NESTED | NFTA_LIST_ELEM, NULL, 0);
    attr(&m, h, NFTA_EXPR_NAME, "target", sizeof "target");
    size_t data = attr(&m, h, NLA_F_NESTED | NFTA_EXPR_DATA, NULL, 0);
    attr(&m, h, NFTA_TARGET_NAME, "NFQUEUE", sizeof "NFQUEUE");
    uint32_t rev = htonl(3);
    attr(&m, h, NFTA_TARGET_REV, &rev, sizeof rev);
    /* struct xt_NFQ_info_v3 { queuenum, queues_total, flags } (host order), padded
     * to XT_ALIGN: no NFQ_FLAG_BYPASS, so an unread queue drops. */
    uint16_t info[4] = { queue, 1, 0, 0 };
    attr(&m, h, NFTA_TARGET_INFO, info, sizeof info);
    nest_end(&m, data);
    nest_end(&m, elem);
    nest_end(&m, exprs);
    msg_begin(&m, NFNL_MSG_BATCH_END, NLM_F_REQUEST, AF_UNSPEC, NFNL_SUBSYS_NFTABLES, seq + 2);
    if (m.bad) return -EMSGSIZE;
    int fd = nl_socket();
    if (fd < 0) return fd;
    int r = send_all(fd, buf, m.len);
    if (r == 0) r = wait_ack(fd, seq + 1);
    close(fd);
    return r;
}

int sbx_nfq_open(uint16_t queue, uint32_t copy_range) {
    int fd = nl_socket();
    if (fd < 0) return fd;
    int size = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    uint8_t buf[256];
    uint32_t seq = (uint32_t)time(NULL);
    struct msg m = { .buf = buf, .cap = sizeof buf };
    struct nlmsghdr *h = msg_begin(&m, (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, AF_UNSPEC, queue, seq);
    struct nfqnl_msg_config_cmd cmd = { .command = NFQNL_CFG_CMD_BIND };
    attr(&m, h, NFQA_CFG_CMD, &cmd, sizeof cmd);
    struct nfqnl_msg_config_params params = { .copy_range = htonl(copy_range), .copy_mode = NFQNL_COPY_PACKET };
    attr(&m, h, NFQA_CFG_PARAMS, &params, sizeof params);
    uint32_t maxlen = htonl(1024);
    attr(&m, h, NFQA_CFG_QUEUE_MAXLEN, &maxlen, sizeof maxlen);
    int r = m.bad ? -EMSGSIZE : send_all(fd, buf, m.len);
    if (r == 0) r = wait_ack(fd, seq);
    if (r < 0) { close(fd); return r; }
    struct timeval none = { 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    return fd;
}

int sbx_nfq_receive(int fd, uint8_t *buf, size_t capacity, uint32_t *id, uint32_t *offset, uint32_t *length) {
    ssize_t n = recv(fd, buf, capacity, MSG_DONTWAIT);
    if (n < 0) return -errno;
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    if (!NLMSG_OK(h, (size_t)n)) return 0;
    if (h->nlmsg_type != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET)) return 0;
    size_t start = NLMSG_ALIGN(sizeof(struct nlmsghdr)) + NLMSG_ALIGN(sizeof(struct nfgenmsg));
    int have_id = 0, have_payload = 0;
    for (size_t at = start; at + NLA_HDRLEN <= h->nlmsg_len;) {
        struct nlattr *a = (struct nlattr *)((uint8_t *)h + at);
        if (a->nla_len < NLA_HDRLEN || at + a->nla_len > h->nlmsg_len) break;
        uint16_t type = a->nla_type & NLA_TYPE_MASK;
        size_t size = a->nla_len - NLA_HDRLEN;
        if (type == NFQA_PACKET_HDR && size >= sizeof(struct nfqnl_msg_packet_hdr)) {
            struct nfqnl_msg_packet_hdr ph;
            memcpy(&ph, (uint8_t *)a + NLA_HDRLEN, sizeof ph);
            *id = ntohl(ph.packet_id);
            have_id = 1;
        } else if (type == NFQA_PAYLOAD) {
            *offset = (uint32_t)(at + NLA_HDRLEN);
            *length = (uint32_t)size;
            have_payload = 1;
        }
        at += NLA_ALIGN(a->nla_len);
    }
    if (!have_id) return 0;
    if (!have_payload) { *offset = 0; *length = 0; }
    return 1;
}

int sbx_nfq_verdict(int fd, uint16_t queue, uint32_t id, uint32_t verdict, uint32_t mark) {
    uint8_t buf[128];
    struct msg m = { .buf = buf, .cap = sizeof buf };
    struct nlmsghdr *h = msg_begin(&m, (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_VERDICT, NLM_F_REQUEST, AF_UNSPEC, queue, 0);
    struct nfqnl_msg_verdict_hdr v = { .verdict = htonl(verdict), .id = htonl(id) };
    attr(&m, h, NFQA_VERDICT_HDR, &v, sizeof v);
    if (mark) {
        uint32_t mk = htonl(mark);
        attr(&m, h, NFQA_MARK, &mk, sizeof mk);
    }
    if (m.bad) return -EMSGSIZE;
    return send_all(fd, buf, m.len);
}
