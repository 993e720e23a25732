/* nabla/optim.h — optimizers (SGD, momentum, Nesterov, RMSProp, Adam, AdamW), gradient clipping and
 * learning-rate schedules.
 *
 * CONVENTIONS (cs231n assignment 2, not PyTorch)
 *   sgd           w -= lr·dw
 *   sgd_momentum  v = μ·v − lr·dw;  w += v                       (PyTorch: v = μv + g; w -= lr·v)
 *   nesterov      v_prev = v;  v = μ·v − lr·dw;  w += −μ·v_prev + (1+μ)·v
 *   rmsprop       cache = ρ·cache + (1−ρ)·dw²;  w -= lr·dw / (√cache + ε)     (ε outside the root)
 *   adam          t += 1 first;  m = β1·m + (1−β1)·dw;  v = β2·v + (1−β2)·dw²;
 *                 w -= lr·m̂ / (√v̂ + ε)  with  m̂ = m/(1−β1^t),  v̂ = v/(1−β2^t)
 *   adamw         adam, plus decoupled weight decay from the old w:  w -= lr·wd·w
 *   Every kind takes weight_decay, decoupled as AdamW's (w -= lr·wd·w from the old w, besides the
 *   rule's step); it is 0 by default except for adamw (1e-2), so adam with a weight decay is adamw.
 *   Decoupled decay is not L2 regularisation in the loss (cs231n's reg), except for plain sgd.
 *
 * STATE
 *   Parameters are persistent leaves that require grad (nb_param). The optimizer does not own them.
 *   Its per-parameter state (velocity, cache, m, v) is persistent, allocated once at creation as
 *   zeros with the parameter's dtype and shape, and freed by nb_optimizer_free; a step allocates
 *   nothing. The step counter t is global to the optimizer (one count for all parameters): it grows
 *   by one at every nb_optimizer_step, and Adam's bias correction uses it, also for a parameter that
 *   was skipped on some earlier steps.
 *   State slots are named "<param name>.velocity" (sgd_momentum, nesterov), "<param name>.cache"
 *   (rmsprop), "<param name>.m" and "<param name>.v" (adam, adamw); sgd has none. Together with
 *   nb_optimizer_steps/nb_optimizer_set_steps and nb_optimizer_lr/set_lr they are everything a
 *   checkpoint needs to resume.
 *
 * ERRORS
 *   Functions returning a pointer return NULL, those returning int return -1, those returning a
 *   double return NaN; each records a message naming the function and the offending argument
 *   (nb_last_error). Nothing aborts. Updates are computed in double and stored in the parameter's
 *   dtype (f32 or f64).
 */
#ifndef NABLA_OPTIM_H
#define NABLA_OPTIM_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { NB_SGD, NB_SGD_MOMENTUM, NB_NESTEROV, NB_RMSPROP, NB_ADAM, NB_ADAMW } nb_optim_kind;

/* Hyperparameters. A kind reads only its own fields: lr (all), momentum (sgd_momentum, nesterov;
 * in [0,1)), decay_rate (rmsprop; in [0,1)), beta1 and beta2 (adam, adamw; in [0,1)), eps (rmsprop,
 * adam, adamw; > 0), weight_decay (all; >= 0). lr > 0. */
typedef struct {
    nb_optim_kind kind;
    double lr, momentum, decay_rate, beta1, beta2, eps, weight_decay;
} nb_optim_config;

/* cs231n defaults: lr 1e-2 (sgd, sgd_momentum, nesterov, rmsprop) or 1e-3 (adam, adamw); momentum
 * 0.9, decay_rate 0.99, beta1 0.9, beta2 0.999, eps 1e-8 in every config (unused ones are harmless);
 * weight_decay 1e-2 for adamw, 0 otherwise. An unknown kind records an error and gives lr NaN. */
nb_optim_config nb_optim_defaults(nb_optim_kind kind);

/* "sgd", "sgd_momentum", "nesterov", "rmsprop", "adam", "adamw" (exact, lower case) <-> kind.
 * parse returns 0, or -1 with "nb_optim_kind_parse: unknown optimizer 'x' (expected sgd, ...)";
 * name returns NULL (error recorded) for a value outside the enum. */
int nb_optim_kind_parse(const char *name, nb_optim_kind *kind);
const char *nb_optim_kind_name(nb_optim_kind kind);

typedef struct nb_optimizer nb_optimizer;

/* An optimizer over params[0..n) (n >= 1): each a distinct, persistent (nb_param), contiguous f32/f64
 * leaf that requires grad. names[i] name the parameters for state slots and checkpoints; they are
 * copied, must be non-empty and distinct. names may be NULL: the parameters are then called "0",
 * "1", ... The configuration is validated (see nb_optim_config). */
nb_optimizer *nb_optimizer_new(nb_optim_config cfg, int n, nb_tensor *const *params, const char *const *names);

/* One update of every parameter from its ->grad; a parameter whose grad is NULL is skipped. The step
 * counter grows by one first (so Adam's first step uses t = 1). Every grad is checked (same dtype
 * and shape as its parameter, contiguous) before anything changes: on -1 nothing was updated. */
int nb_optimizer_step(nb_optimizer *o);

/* Sets every existing grad to zeros, keeping its memory (grads that do not exist stay NULL). */
void nb_optimizer_zero_grad(nb_optimizer *o);

/* The global L2 norm over all existing grads, computed in double. When it exceeds max_norm (> 0),
 * every grad is multiplied by max_norm/norm, so the clipped norm is max_norm. A non-finite norm
 * leaves the grads unchanged (and is returned, for the caller to skip the step). Returns the norm
 * before clipping, or NaN with an error recorded. */
double nb_optimizer_clip_grad_norm(nb_optimizer *o, double max_norm);

/* The learning rate used by the next step. set_lr accepts any finite lr >= 0 (a schedule may reach
 * 0); a negative or non-finite lr records an error and keeps the old one. */
void nb_optimizer_set_lr(nb_optimizer *o, double lr);
double nb_optimizer_lr(const nb_optimizer *o);       /* NaN for NULL */

/* The step counter t: the number of steps taken (or restored from a checkpoint). t >= 0. */
int64_t nb_optimizer_steps(const nb_optimizer *o);   /* -1 for NULL */
void nb_optimizer_set_steps(nb_optimizer *o, int64_t t);

/* Calls fn(name, tensor, ctx) for every state slot, parameter by parameter in creation order and
 * slots in the order listed above (velocity; cache; m then v). The tensors are the optimizer's own:
 * write into them (nb_copy_into) to restore a checkpoint. A non-zero return from fn stops the walk
 * and is returned; otherwise 0 (also for sgd, which has no slots); -1 for a NULL o or fn. */
typedef int (*nb_state_visit_fn)(const char *name, nb_tensor *t, void *ctx);
int nb_optimizer_visit_state(nb_optimizer *o, nb_state_visit_fn fn, void *ctx);

/* Frees the state and the names (not the parameters). NULL is a no-op. */
void nb_optimizer_free(nb_optimizer *o);

/* ---- learning-rate schedules: pure functions (NaN + error for bad arguments) ---- */
/* lr0 · gamma^floor(epoch/step_size); epoch >= 0, step_size >= 1. cs231n's "lr *= lr_decay after
 * each epoch" is nb_lr_step(lr0, epoch, 1, lr_decay). */
double nb_lr_step(double lr0, int64_t epoch, int64_t step_size, double gamma);
/* lr_min + (lr0 − lr_min)·(1 + cos(π·step/total_steps))/2 for 0 <= step <= total_steps (lr0 at 0,
 * lr_min at total_steps), lr_min after; total_steps >= 1. */
double nb_lr_cosine(double lr0, int64_t step, int64_t total_steps, double lr_min);
/* linear warm-up: lr·(step+1)/warmup_steps for step < warmup_steps (steps count from 0), then lr */
double nb_lr_warmup(double lr, int64_t step, int64_t warmup_steps);

#ifdef __cplusplus
}
#endif
#endif
