// Deterministic random numbers: xoshiro256** streams, plus counter-based
// draws (a value per (key, index)) so parallel fills do not depend on threads.
#ifndef GK_RNG_H
#define GK_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} rng_state;

void rng_seed(rng_state *r, uint64_t seed);
uint64_t rng_next(rng_state *r);
double rng_uniform(rng_state *r); // [0, 1)
double rng_normal(rng_state *r);  // standard normal

uint64_t hash64(uint64_t x);                          // splitmix64 finalizer
double hash_uniform(uint64_t key, uint64_t index);    // (0, 1)
double hash_normal(uint64_t key, uint64_t index);     // standard normal, Box-Muller

#endif
