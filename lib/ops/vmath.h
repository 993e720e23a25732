/* Math for float rows in operations every vector unit has: libm's expf is a scalar call, so a loop
 * that calls it never vectorizes. Selects are plain conditionals on floats, which GCC turns into
 * vector blends, except where noted. */
#ifndef NB_VMATH_H
#define NB_VMATH_H

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
    const float k = xc * 1.44269504f;
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
    const int32_t bits = (n + 127) << 23;    /* 2ⁿ */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return (float)(x >= -87.0f) * (p * scale);   /* a product with a 0/1 mask: a select would not vectorize */
}

#endif
