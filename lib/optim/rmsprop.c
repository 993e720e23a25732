/* RMSProp (cs231n): a running average of squared gradients scales each element's step.
 * Slot s0 is the cache; ε sits outside the square root. */
#include "rules.h"

/* cache = ρ·cache + (1−ρ)·dw²;  w -= lr·dw / (√cache + ε) */
NB_RULE(nb_rmsprop_update, {
    const double lr = c->cfg.lr, rho = c->cfg.decay_rate, eps = c->cfg.eps;
    NB_OPTIM_EACH(a, {
        const double dw = g[i];
        const double cache = rho * s0[i] + (1 - rho) * (dw * dw);
        s0[i] = cache;
        w[i] = w[i] - lr * dw / (sqrt(cache) + eps);
    });
})
