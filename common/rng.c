#include "common/rng.h"

#include <math.h>

uint64_t hash64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void rng_seed(rng_state *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = x = hash64(x);
}

uint64_t rng_next(rng_state *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double rng_uniform(rng_state *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

static double box_muller(double u1, double u2) {
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

double rng_normal(rng_state *r) {
    double u1 = ((double)(rng_next(r) >> 11) + 0.5) * 0x1.0p-53; // (0,1): log is finite
    return box_muller(u1, rng_uniform(r));
}

double hash_uniform(uint64_t key, uint64_t index) {
    uint64_t h = hash64(hash64(key) ^ hash64(index * 0xD6E8FEB86659FD93ull + 1));
    return ((double)(h >> 11) + 0.5) * 0x1.0p-53;
}

double hash_normal(uint64_t key, uint64_t index) {
    return box_muller(hash_uniform(key, 2 * index), hash_uniform(key, 2 * index + 1));
}
