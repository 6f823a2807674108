/*
 * rng.c — the process's random numbers: xoshiro256** seeded through splitmix64, normals by
 * Marsaglia's polar method.
 */
#include "core/nv.h"

#include <math.h>

/* ---- random numbers: xoshiro256** seeded through splitmix64 ----------------------------- */
static uint64_t rng[4] = {0x9E3779B97F4A7C15ull, 0xBF58476D1CE4E5B9ull, 0x94D049BB133111EBull, 1};
static int have_spare;
static double spare;

static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void nv_rng_get(uint64_t st[5]) {
  for (int i = 0; i < 4; i++) st[i] = rng[i];
  union { double d; uint64_t u; } sp = {.d = have_spare ? spare : 0.0};
  st[4] = have_spare ? sp.u : 0;   /* the cached normal, when there is one */
  if (have_spare && st[4] == 0) st[4] = 1;  /* keep "has a spare" distinguishable */
}

void nv_rng_set(const uint64_t st[5]) {
  for (int i = 0; i < 4; i++) rng[i] = st[i];
  union { double d; uint64_t u; } sp = {.u = st[4]};
  have_spare = st[4] != 0;
  spare = sp.d;
}

void nv_manual_seed(uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) rng[i] = splitmix(&x);
  have_spare = 0;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t nv_rand_u64(void) {
  uint64_t r = rotl(rng[1] * 5, 7) * 9, t = rng[1] << 17;
  rng[2] ^= rng[0]; rng[3] ^= rng[1]; rng[1] ^= rng[2]; rng[0] ^= rng[3];
  rng[2] ^= t; rng[3] = rotl(rng[3], 45);
  return r;
}

double nv_rand_uniform(void) { return (double)(nv_rand_u64() >> 11) * (1.0 / 9007199254740992.0); }

double nv_rand_normal(void) {
  if (have_spare) { have_spare = 0; return spare; }
  double u, v, s;
  do {
    u = 2.0 * nv_rand_uniform() - 1.0;
    v = 2.0 * nv_rand_uniform() - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  double m = sqrt(-2.0 * log(s) / s);   /* Marsaglia's polar method */
  spare = v * m;
  have_spare = 1;
  return u * m;
}
