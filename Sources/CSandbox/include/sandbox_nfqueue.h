/*
 * sandbox_nfqueue.h — the SNI check's kernel side (Docs/network.md, "Names: the
 * server name check"): an nfnetlink_queue socket the supervisor reads the first data
 * packet of a host rule's flows from and answers with a verdict, and the one rule
 * that sends packets there.
 *
 * Raw netlink (NETLINK_NETFILTER), no libmnl. Every socket is made in the calling
 * thread's network namespace (call from Netns.run). Every function returns -errno on
 * failure, never -1 with errno.
 */
#ifndef SANDBOX_NFQUEUE_H
#define SANDBOX_NFQUEUE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Appends to chain `chain` of table `table` (family NFPROTO_IPV4 or NFPROTO_IPV6) a
 * rule sending every packet that reaches it to queue `queue`, without the bypass
 * flag: while no socket is bound to the queue, its packets are dropped. The rule is
 * the x_tables NFQUEUE target through nft_compat (revision 3, flags 0), because this
 * kernel may lack nft's own `queue` expression (CONFIG_NFT_QUEUE). 0 or -errno. */
int sbx_nft_append_queue_rule(int family, const char *table, const char *chain, uint16_t queue);

/* A socket bound to queue `queue` in copy-packet mode (up to `copy_range` bytes of
 * each packet), O_CLOEXEC. The fd or -errno. */
int sbx_nfq_open(uint16_t queue, uint32_t copy_range);

/* Reads one message. 1: a queued packet, its id in *id and its bytes (the IP
 * packet, as far as copied) at buf + *offset, *length long; 0: something else (an
 * ack, an error message); -errno: the read failed (-EAGAIN: nothing to read,
 * -ENOBUFS: the kernel dropped packets it could not deliver). */
int sbx_nfq_receive(int fd, uint8_t *buf, size_t capacity, uint32_t *id, uint32_t *offset, uint32_t *length);

/* The verdict on packet `id`: `verdict` NF_ACCEPT (1), NF_DROP (0) or NF_REPEAT (4);
 * `mark`, when not 0, is set as the packet's mark first (what a repeated packet's
 * rules then read). 0 or -errno. */
int sbx_nfq_verdict(int fd, uint16_t queue, uint32_t id, uint32_t verdict, uint32_t mark);

#ifdef __cplusplus
}
#endif

#endif
