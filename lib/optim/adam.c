/* Adam with bias correction (cs231n), and AdamW: Adam plus weight decay decoupled from the gradient
 * (w -= lr·wd·w, from the old w). One rule serves both: they differ in their default weight decay
 * (0 for adam, 1e-2 for adamw). Slots s0 = m (first moment), s1 = v (second moment). */
#include "rules.h"

#include <float.h>
#include <tgmath.h>   /* sqrt of a float is sqrtf */

/* t has already been incremented;  m = β1·m + (1−β1)·dw;  v = β2·v + (1−β2)·dw²;
 * w -= lr·wd·w + lr·m̂/(√v̂ + ε)  with  m̂ = m/(1−β1^t),  v̂ = v/(1−β2^t).
 * Unlike the other rules, Adam computes in the parameter's own type R: its square root and division
 * per element are the loop's cost, float's run twice as many per instruction as double's, and each
 * result is rounded to R when stored anyway (float32_matches_float64 checks the difference). */
#define ADAM_ELEMENT(R, eps_R)                                                                           \
    {                                                                                                    \
        const R dw = g[i], wi = w[i];                                                                    \
        const R m = (R)b1 * s0[i] + (R)(1 - b1) * dw;                                                    \
        const R v = (R)b2 * s1[i] + (R)(1 - b2) * (dw * dw);                                             \
        s0[i] = m;                                                                                       \
        s1[i] = v;                                                                                       \
        w[i] = wi - (R)(lr * wd) * wi - (R)step * m / (sqrt(v) * (R)inv_sqrt_bc2 + eps_R);            \
    }

NB_RULE(nb_adam_update, {
    const double wd = c->cfg.weight_decay;
    const double lr = c->cfg.lr, b1 = c->cfg.beta1, b2 = c->cfg.beta2, eps = c->cfg.eps;
    const double bc1 = 1 - pow(b1, (double)c->t), bc2 = 1 - pow(b2, (double)c->t);
    /* √v̂ = √v / √bc2 and lr·m̂ = (lr/bc1)·m: one division and one square root per element */
    const double step = lr / bc1, inv_sqrt_bc2 = 1 / sqrt(bc2);
    const float eps_float = fmaxf((float)eps, FLT_TRUE_MIN); /* a positive eps stays positive */
    if (a->dtype == NB_F32) NB_OPTIM_EACH_T(float, a, ADAM_ELEMENT(float, eps_float));
    else NB_OPTIM_EACH_T(double, a, ADAM_ELEMENT(double, eps));
})
