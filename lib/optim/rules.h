/* Internal interface between the optimizer core (optimizer.c) and its update rules (sgd.c,
 * rmsprop.c, adam.c): one small function per rule over one parameter's contiguous arrays. */
#ifndef NABLA_OPTIM_RULES_H
#define NABLA_OPTIM_RULES_H

#include "../internal.h"
#include "nabla/optim.h"

#include <math.h>

/* What a rule sees of the optimizer: the hyperparameters (cfg.lr is the current learning rate) and
 * the step number, already incremented (1 on the first step). */
typedef struct {
    nb_optim_config cfg;
    int64_t t;
} nb_optim_ctx;

/* One parameter: n contiguous elements of dtype (f32 or f64) in w, its grad g and state slots s[]. */
typedef struct {
    nb_dtype dtype;
    int64_t n;
    void *w;
    const void *g;
    void *s[2];   /* NULL when the rule has fewer slots */
} nb_optim_arrays;

typedef void (*nb_update_fn)(const nb_optim_ctx *c, const nb_optim_arrays *a);

void nb_sgd_update(const nb_optim_ctx *c, const nb_optim_arrays *a);       /* sgd.c */
void nb_momentum_update(const nb_optim_ctx *c, const nb_optim_arrays *a);  /* sgd.c */
void nb_nesterov_update(const nb_optim_ctx *c, const nb_optim_arrays *a);  /* sgd.c */
void nb_rmsprop_update(const nb_optim_ctx *c, const nb_optim_arrays *a);   /* rmsprop.c */
void nb_adam_update(const nb_optim_ctx *c, const nb_optim_arrays *a);      /* adam.c: adam and adamw */

/* The loop skeleton every rule shares: runs the statements for i in [0, a->n) with typed pointers
 * w, g, s0, s1 (float or double, after a->dtype; unused ones may be NULL). Rules compute in double
 * and store in T (Adam computes in T: see adam.c). The caller must not have its own variables named w, g, s0, s1 or i (-Wshadow). */
#define NB_OPTIM_EACH_T(T, a, ...)                                                                   \
    do {                                                                                             \
        T *restrict w = (a)->w;                                                                      \
        const T *restrict g = (a)->g;                                                                \
        T *restrict s0 = (a)->s[0];                                                                  \
        T *restrict s1 = (a)->s[1];                                                                  \
        (void)w, (void)g, (void)s0, (void)s1;                                                        \
        const int64_t n_ = (a)->n;                                                                   \
        for (int64_t i = 0; i < n_; i++) { __VA_ARGS__ }                                             \
    } while (0)

/* Defines the rule `void fn(const nb_optim_ctx *c, const nb_optim_arrays *a)` from its body (the
 * statements given), compiled for every instruction-set level (internal.h); fn runs the level in use */
#define NB_RULE_AT(ISA, ATTR, fn, ...)                                                               \
    ATTR static void fn##_##ISA(const nb_optim_ctx *c, const nb_optim_arrays *a) { __VA_ARGS__ }
#define NB_RULE(fn, ...)                                                                             \
    NB_FOR_ISA(NB_RULE_AT, fn, __VA_ARGS__)                                                          \
    void fn(const nb_optim_ctx *c, const nb_optim_arrays *a)                                         \
    {                                                                                                \
        static const nb_update_fn at_level[NB_ISA_LEVELS] = NB_ISA_TABLE(fn);                       \
        NB_ISA_PICK(at_level)(c, a);                                                                 \
    }

#define NB_OPTIM_EACH(a, ...)                                                                        \
    do {                                                                                             \
        if ((a)->dtype == NB_F32) NB_OPTIM_EACH_T(float, a, __VA_ARGS__);                            \
        else NB_OPTIM_EACH_T(double, a, __VA_ARGS__);                                                \
    } while (0)

#endif
