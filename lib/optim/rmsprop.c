/* RMSProp (cs231n): a running average of squared gradients scales each element's step.
 * Slot s0 is the cache; ε sits outside the square root. Weight decay is decoupled (sgd.c). */
#include "rules.h"

/* cache = ρ·cache + (1−ρ)·dw²;  w -= lr·dw / (√cache + ε) */
NB_RULE(nb_rmsprop_update, {
    const double lr = c->cfg.lr, rho = c->cfg.decay_rate, eps = c->cfg.eps, decay = c->cfg.lr * c->cfg.weight_decay;
    NB_OPTIM_EACH(a, {
        const double dw = g[i];
        const double cache = rho * s0[i] + (1 - rho) * (dw * dw);
        s0[i] = cache;
        w[i] = w[i] - decay * w[i] - lr * dw / (sqrt(cache) + eps);
    });
})
