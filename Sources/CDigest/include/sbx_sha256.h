/* SHA-256 and HMAC-SHA256 (FIPS 180-4, RFC 2104), self-contained: the digests every
 * layer computes (policy files, plans, the audit chain, [binary] pins) without
 * loading libcrypto, whose loading and initialisation cost every run's start-up
 * more than all of its hashing. On x86-64 CPUs with the SHA extensions the block
 * function uses them (chosen once, at run time). */
#ifndef SBX_SHA256_H
#define SBX_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SBX_SHA256_DIGEST_LENGTH 32
#define SBX_SHA256_HEX_LENGTH 64

typedef struct {
    uint32_t state[8];
    uint64_t length;      /* bytes hashed so far */
    uint8_t block[64];    /* a partial block */
    size_t fill;          /* bytes in block */
} sbx_sha256_ctx;

void sbx_sha256_init(sbx_sha256_ctx *ctx);
void sbx_sha256_update(sbx_sha256_ctx *ctx, const void *data, size_t count);
void sbx_sha256_final(sbx_sha256_ctx *ctx, uint8_t out[SBX_SHA256_DIGEST_LENGTH]);
void sbx_sha256(const void *data, size_t count, uint8_t out[SBX_SHA256_DIGEST_LENGTH]);
/* The digest as lowercase hex and a NUL: what every layer compares and records
 * (policy files, plans, the audit chain, the seccomp cache's spec digest). */
void sbx_sha256_hex(const void *data, size_t count, char out[SBX_SHA256_HEX_LENGTH + 1]);
void sbx_hmac_sha256(const void *key, size_t key_length, const void *data, size_t count,
                     uint8_t out[SBX_SHA256_DIGEST_LENGTH]);

/* For tests: 1 when the SHA extensions are used; `sbx_sha256_use_portable(1)` makes
 * every later call use the portable block function (so both are tested on one
 * machine). */
int sbx_sha256_accelerated(void);
void sbx_sha256_use_portable(int on);

#endif
