/* Stochastic gradient descent in cs231n's forms: plain, with momentum, and Nesterov momentum.
 * Slot s0 is the velocity. Weight decay wd is decoupled, as AdamW's: w -= lr·wd·w from the old w
 * (0 by default, which leaves every result bit-identical). */
#include "rules.h"

/* w -= lr·dw (+ lr·wd·w) */
NB_RULE(nb_sgd_update, {
    const double lr = c->cfg.lr, decay = c->cfg.lr * c->cfg.weight_decay;
    NB_OPTIM_EACH(a, w[i] = w[i] - decay * w[i] - lr * g[i];);
})

/* v = μ·v − lr·dw;  w += v */
NB_RULE(nb_momentum_update, {
    const double lr = c->cfg.lr, mu = c->cfg.momentum, decay = c->cfg.lr * c->cfg.weight_decay;
    NB_OPTIM_EACH(a, {
        const double v = mu * s0[i] - lr * g[i];
        s0[i] = v;
        w[i] = w[i] - decay * w[i] + v;
    });
})

/* v_prev = v;  v = μ·v − lr·dw;  w += −μ·v_prev + (1+μ)·v */
NB_RULE(nb_nesterov_update, {
    const double lr = c->cfg.lr, mu = c->cfg.momentum, decay = c->cfg.lr * c->cfg.weight_decay;
    NB_OPTIM_EACH(a, {
        const double v_prev = s0[i];
        const double v = mu * v_prev - lr * g[i];
        s0[i] = v;
        w[i] = w[i] - decay * w[i] - mu * v_prev + (1 + mu) * v;
    });
})
