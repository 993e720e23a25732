/* Math for float rows in operations every vector unit has: libm's expf is a scalar call, so a loop
 * that calls it never vectorizes. Selects are plain conditionals on floats, which GCC turns into
 * vector blends, except where noted. */
#ifndef NB_VMATH_H
#define NB_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* e^x for x <= 0 (and -inf): x = n·ln2 + r with n = round(x/ln2), |r| <= ln2/2, e^r by its Taylor
 * polynomial to r⁷ (relative error below 1e-8), times 2ⁿ made in the exponent bits; 0 below -87,
 * where e^x leaves float's normal range. */
static inline float nb_exp_nonpositive_f32(float x)
{
    /* x clamped at -87 by a select on the bits: a float select before the conversion to int below
     * keeps GCC from vectorizing (it will not speculate the conversion) */
    const float low = -87.0f;
    int32_t x_bits, low_bits;
    memcpy(&x_bits, &x, sizeof x);
    memcpy(&low_bits, &low, sizeof low);
    const int32_t below = -(int32_t)(x < low), clamped_bits = (x_bits & ~below) | (low_bits & below);
    float xc;
    memcpy(&xc, &clamped_bits, sizeof xc);
    /* k = x/ln2, 0 for a NaN x (converting NaN to int is undefined; the NaN still reaches r below) */
    const float k_any = xc * 1.44269504f;
    int32_t k_bits;
    memcpy(&k_bits, &k_any, sizeof k_bits);
    k_bits &= -(int32_t)(x == x);
    float k;
    memcpy(&k, &k_bits, sizeof k);
    const int32_t n = (int32_t)(k - 0.5f);   /* k <= 0: truncation of k - 0.5 rounds to nearest */
    const float r = (xc - (float)n * 0.693145752f) - (float)n * 1.42860677e-6f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const uint32_t bits = (uint32_t)(n + 127) << 23;   /* 2ⁿ (n >= -126 here) */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return (float)(x >= -87.0f) * (p * scale);   /* a product with a 0/1 mask: a select would not vectorize */
}

#define NB_VMATH_LANES 16   /* partial sums and maxima in a vector's worth of lanes: the loops vectorize */

static inline float nb_row_max_f32(const float *x, int64_t n)
{
    const int64_t whole = n / NB_VMATH_LANES * NB_VMATH_LANES;
    float lane[NB_VMATH_LANES], max = -INFINITY;
    for (int l = 0; l < NB_VMATH_LANES; l++) lane[l] = -INFINITY;
    for (int64_t j = 0; j < whole; j += NB_VMATH_LANES)
        for (int l = 0; l < NB_VMATH_LANES; l++) lane[l] = x[j + l] > lane[l] ? x[j + l] : lane[l];
    for (int l = 0; l < NB_VMATH_LANES; l++) max = lane[l] > max ? lane[l] : max;
    for (int64_t j = whole; j < n; j++) max = x[j] > max ? x[j] : max;
    return max;
}

static inline float nb_row_sum_f32(const float *x, int64_t n)
{
    const int64_t whole = n / NB_VMATH_LANES * NB_VMATH_LANES;
    float lane[NB_VMATH_LANES] = { 0 }, sum = 0;
    for (int64_t j = 0; j < whole; j += NB_VMATH_LANES)
        for (int l = 0; l < NB_VMATH_LANES; l++) lane[l] += x[j + l];
    for (int l = 0; l < NB_VMATH_LANES; l++) sum += lane[l];
    for (int64_t j = whole; j < n; j++) sum += x[j];
    return sum;
}

/* out = softmax(scale·x) over n elements (out may be x); scale > 0 */
static inline void nb_row_softmax_f32(float *out, const float *x, int64_t n, float scale)
{
    const float max = nb_row_max_f32(x, n);
    for (int64_t j = 0; j < n; j++) out[j] = nb_exp_nonpositive_f32(scale * (x[j] - max));
    const float inv = 1 / nb_row_sum_f32(out, n);
    for (int64_t j = 0; j < n; j++) out[j] *= inv;
}

/* out = x - max - log Σ exp(x - max) over n elements (out is scratch first: not x) */
static inline void nb_row_log_softmax_f32(float *out, const float *x, int64_t n)
{
    const float max = nb_row_max_f32(x, n);
    for (int64_t j = 0; j < n; j++) out[j] = nb_exp_nonpositive_f32(x[j] - max);
    const float log_sum = logf(nb_row_sum_f32(out, n));
    for (int64_t j = 0; j < n; j++) out[j] = (x[j] - max) - log_sum;
}

#endif
