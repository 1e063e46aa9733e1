/* SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104). See include/sbx_sha256.h. */
#include "sbx_sha256.h"

#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static inline uint32_t load_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* The portable block function: `blocks` blocks of 64 bytes. */
static void blocks_portable(uint32_t state[8], const uint8_t *data, size_t blocks) {
    uint32_t w[64];
    while (blocks--) {
        for (int i = 0; i < 16; i++) w[i] = load_be32(data + 4 * i);
        for (int i = 16; i < 64; i++) {
            uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
        for (int i = 0; i < 64; i++) {
            uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
            uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g; g = f; f = e; e = d + t1;
            d = c; c = b; b = a; a = t1 + t2;
        }
        state[0] += a; state[1] += b; state[2] += c; state[3] += d;
        state[4] += e; state[5] += f; state[6] += g; state[7] += h;
        data += 64;
    }
}

#if defined(__x86_64__)
/* The SHA extensions (SHA256RNDS2, SHA256MSG1, SHA256MSG2): four rounds per group,
 * the message schedule kept in four vectors w[0..3] used in turn. The state is held
 * as ABEF / CDGH, the order the instructions want. */
__attribute__((target("sha,sse4.1,ssse3")))
static void blocks_shani(uint32_t state[8], const uint8_t *data, size_t blocks) {
    const __m128i byteswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[0]), 0xB1); /* CDAB */
    __m128i state1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[4]), 0x1B); /* EFGH */
    __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);    /* ABEF */
    state1 = _mm_blend_epi16(state1, tmp, 0xF0);         /* CDGH */

    while (blocks--) {
        __m128i abef = state0, cdgh = state1;
        __m128i w[4];
#pragma clang loop unroll(full)
        for (int g = 0; g < 16; g++) {
            if (g < 4) w[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * g)), byteswap);
            __m128i msg = _mm_add_epi32(w[g & 3], _mm_loadu_si128((const __m128i *)&K[4 * g]));
            state1 = _mm_sha256rnds2_epu32(state1, state0, msg);
            if (g >= 3 && g <= 14) {
                /* w[g+1] (16 rounds on) from w[g-3] (in w[g+1]'s slot, already through MSG1),
                 * w[g-1]:w[g] and w[g]. */
                __m128i t = _mm_alignr_epi8(w[g & 3], w[(g - 1) & 3], 4);
                w[(g + 1) & 3] = _mm_sha256msg2_epu32(_mm_add_epi32(w[(g + 1) & 3], t), w[g & 3]);
            }
            msg = _mm_shuffle_epi32(msg, 0x0E);
            state0 = _mm_sha256rnds2_epu32(state0, state1, msg);
            if (g >= 1 && g <= 12) w[(g - 1) & 3] = _mm_sha256msg1_epu32(w[(g - 1) & 3], w[g & 3]);
        }
        state0 = _mm_add_epi32(state0, abef);
        state1 = _mm_add_epi32(state1, cdgh);
        data += 64;
    }

    tmp = _mm_shuffle_epi32(state0, 0x1B);               /* FEBA */
    state1 = _mm_shuffle_epi32(state1, 0xB1);            /* DCHG */
    state0 = _mm_blend_epi16(tmp, state1, 0xF0);         /* DCBA */
    state1 = _mm_alignr_epi8(state1, tmp, 8);            /* ABEF */
    _mm_storeu_si128((__m128i *)&state[0], state0);
    _mm_storeu_si128((__m128i *)&state[4], state1);
}

static int cpu_has_shani(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int ssse3 = (c >> 9) & 1, sse41 = (c >> 19) & 1;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return ssse3 && sse41 && ((b >> 29) & 1);
}
#endif

/* -1: not yet decided; 0 portable; 1 SHA extensions. Racing first calls decide alike. */
static volatile int mode = -1;
static volatile int force_portable = 0;

int sbx_sha256_accelerated(void) {
    if (mode < 0) {
#if defined(__x86_64__)
        mode = cpu_has_shani();
#else
        mode = 0;
#endif
    }
    return mode == 1 && !force_portable;
}

void sbx_sha256_use_portable(int on) { force_portable = on; }

static void blocks(uint32_t state[8], const uint8_t *data, size_t n) {
#if defined(__x86_64__)
    if (sbx_sha256_accelerated()) { blocks_shani(state, data, n); return; }
#endif
    blocks_portable(state, data, n);
}

void sbx_sha256_init(sbx_sha256_ctx *ctx) {
    static const uint32_t h0[8] = {
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    };
    memcpy(ctx->state, h0, sizeof h0);
    ctx->length = 0;
    ctx->fill = 0;
}

void sbx_sha256_update(sbx_sha256_ctx *ctx, const void *data, size_t count) {
    const uint8_t *p = data;
    ctx->length += count;
    if (ctx->fill > 0) {
        size_t take = 64 - ctx->fill < count ? 64 - ctx->fill : count;
        memcpy(ctx->block + ctx->fill, p, take);
        ctx->fill += take; p += take; count -= take;
        if (ctx->fill < 64) return;
        blocks(ctx->state, ctx->block, 1);
        ctx->fill = 0;
    }
    if (count >= 64) {
        blocks(ctx->state, p, count / 64);
        p += count - count % 64;
        count %= 64;
    }
    memcpy(ctx->block, p, count);
    ctx->fill = count;
}

void sbx_sha256_final(sbx_sha256_ctx *ctx, uint8_t out[SBX_SHA256_DIGEST_LENGTH]) {
    uint64_t bits = ctx->length * 8;
    uint8_t pad[72] = {0x80};
    /* 0x80, zeros up to 56 mod 64, then the length in bits, big-endian. */
    size_t padding = ctx->fill < 56 ? 56 - ctx->fill : 120 - ctx->fill;
    for (int i = 0; i < 8; i++) pad[padding + i] = (uint8_t)(bits >> (56 - 8 * i));
    uint64_t length = ctx->length;
    sbx_sha256_update(ctx, pad, padding + 8);
    ctx->length = length;
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(ctx->state[i] >> 24);
        out[4 * i + 1] = (uint8_t)(ctx->state[i] >> 16);
        out[4 * i + 2] = (uint8_t)(ctx->state[i] >> 8);
        out[4 * i + 3] = (uint8_t)ctx->state[i];
    }
}

void sbx_sha256(const void *data, size_t count, uint8_t out[SBX_SHA256_DIGEST_LENGTH]) {
    sbx_sha256_ctx ctx;
    sbx_sha256_init(&ctx);
    sbx_sha256_update(&ctx, data, count);
    sbx_sha256_final(&ctx, out);
}

void sbx_sha256_hex(const void *data, size_t count, char out[SBX_SHA256_HEX_LENGTH + 1]) {
    static const char digits[] = "0123456789abcdef";
    uint8_t digest[SBX_SHA256_DIGEST_LENGTH];
    sbx_sha256(data, count, digest);
    for (size_t i = 0; i < SBX_SHA256_DIGEST_LENGTH; i++) {
        out[2 * i] = digits[digest[i] >> 4];
        out[2 * i + 1] = digits[digest[i] & 15];
    }
    out[SBX_SHA256_HEX_LENGTH] = 0;
}

void sbx_hmac_sha256(const void *key, size_t key_length, const void *data, size_t count,
                     uint8_t out[SBX_SHA256_DIGEST_LENGTH]) {
    uint8_t k[64] = {0}, pad[64], inner[SBX_SHA256_DIGEST_LENGTH];
    /* A key longer than the block is hashed first. */
    if (key_length > 64) sbx_sha256(key, key_length, k);
    else if (key_length > 0) memcpy(k, key, key_length);
    sbx_sha256_ctx ctx;
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x36;
    sbx_sha256_init(&ctx);
    sbx_sha256_update(&ctx, pad, 64);
    sbx_sha256_update(&ctx, data, count);
    sbx_sha256_final(&ctx, inner);
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x5c;
    sbx_sha256_init(&ctx);
    sbx_sha256_update(&ctx, pad, 64);
    sbx_sha256_update(&ctx, inner, sizeof inner);
    sbx_sha256_final(&ctx, out);
}
