/* nabla/solver.h — cs231n's Solver: trains a model on train/val data with an optimizer.
 *
 * Each iteration draws a minibatch, computes the model's loss and gradients (nb_model_loss) and
 * takes one optimizer step, all inside the solver's own scope, reset after the step. Accuracy on
 * the training set (a random subsample of num_train_samples) and on the validation set is checked
 * at the first iteration, at every epoch end and at the last iteration; the parameters with the
 * best validation accuracy are kept and restored when training ends.
 *
 * LEARNING RATE
 *   The rate of a step is the solver's rate (nb_solver_lr: cfg.optim.lr at first) shaped by
 *   cfg.lr_schedule, after an optional linear warm-up over the first warmup_iterations steps (rate ×
 *   k/warmup_iterations at step k = 1, 2, ...):
 *     NB_LR_STEP     ×lr_decay after every lr_step_epochs epochs (cs231n's Solver: lr_decay after
 *                    each epoch, the default; lr_decay 1 keeps the rate constant)
 *     NB_LR_COSINE   from the rate down to lr_min at the last iteration along half a cosine (SGDR
 *                    without restarts), counted after the warm-up; lr_decay must stay 1
 *     NB_LR_PLATEAU  ×lr_decay when the validation accuracy has not improved for lr_patience epochs
 *   A callback may change the rate with nb_solver_set_lr(p->solver, lr): the next steps use it and
 *   the schedule continues from it (the cosine then runs from it). With ranks, every rank's callback
 *   must set the same rate.
 * Randomness (minibatches, dropout masks, the accuracy subsample) is drawn from generators
 * re-seeded from `seed` at the start of each epoch, so resuming from an epoch-end checkpoint
 * follows the same trajectory as an uninterrupted run (same seed, same thread count).
 *
 * With cfg.dist every rank runs the same calls on the same data: the model's tensors are broadcast
 * from rank 0 when training starts; each rank computes the loss of its shard of every minibatch
 * (nb_dist_shard of the batch's rows), the gradients are summed over the ranks weighted by the
 * shards' sizes (nb_dist_allreduce_grads) and each rank takes the same optimizer step; the loss
 * reported is the global batch's. Accuracy checks evaluate each rank's shard of the samples and sum
 * the counts, after averaging the ranks' running statistics (batchnorm). Only rank 0 prints (verbose)
 * and writes checkpoints; every rank reads one to resume (same number of ranks). A failure on any
 * rank (a diverged loss, a failed checkpoint) stops every rank, the error naming the rank
 * ("rank 1 failed: ..."); a callback's stop on any rank stops all. batch_size must be at least the
 * number of ranks. nb_solver_accuracy is then a collective call.
 */
#ifndef NABLA_SOLVER_H
#define NABLA_SOLVER_H

#include "data.h"
#include "dist.h"
#include "model.h"
#include "optim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_solver nb_solver;

typedef enum { NB_LR_STEP, NB_LR_COSINE, NB_LR_PLATEAU } nb_lr_schedule;

typedef struct {
    int64_t iteration, num_iterations;    /* iteration counts from 1 */
    int64_t epoch, num_epochs;            /* epochs completed */
    double loss, lr;                      /* lr: the rate of the next step */
    double elapsed_s, images_per_s;       /* since train (or resume) started */
    bool checked;                         /* accuracies were measured at this iteration */
    double train_acc, val_acc;            /* valid when checked */
    nb_solver *solver;                    /* the solver, for nb_solver_set_lr */
} nb_solver_progress;

/* called after every iteration; a non-zero return stops training (nb_solver_train returns 1) */
typedef int (*nb_solver_callback)(const nb_solver_progress *p, void *ctx);

typedef struct {
    nb_optim_config optim;        /* update rule and its settings; default SGD, lr 1e-2 */
    double lr_decay;              /* 1.0 */
    nb_lr_schedule lr_schedule;   /* NB_LR_STEP (see LEARNING RATE above) */
    int64_t lr_step_epochs;       /* NB_LR_STEP: 1 */
    int64_t lr_patience;          /* NB_LR_PLATEAU: 1 */
    double lr_min;                /* NB_LR_COSINE: 0 */
    int64_t warmup_iterations;    /* 0 = no warm-up */
    int64_t batch_size;           /* 100 */
    int64_t num_epochs;           /* 10 */
    int64_t num_train_samples;    /* 1000; 0 = the whole training set */
    int64_t num_val_samples;      /* 0 = the whole validation set */
    const char *checkpoint_path;  /* NULL = none; written atomically at every epoch end */
    int64_t print_every;          /* 10 */
    bool verbose;                 /* true: cs231n's progress lines on stdout */
    nb_batch_mode batch_mode;     /* NB_BATCH_SAMPLE (cs231n: with replacement) or NB_BATCH_SHUFFLE */
    double clip_norm;             /* > 0: clip the global gradient norm; 0 = off */
    int crop_pad;                 /* augmentation: random crop with this zero padding; 0 = off */
    bool hflip;                   /* augmentation: random horizontal flip */
    uint64_t seed;                /* 0 */
    nb_solver_callback callback;  /* NULL */
    void *callback_ctx;
    nb_dist *dist;                /* NULL = one process; else data-parallel over its ranks (below) */
} nb_solver_config;

nb_solver_config nb_solver_defaults(void);
/* "step", "cosine", "plateau" <-> schedule; parse returns 0, or -1 with a message listing them */
int nb_lr_schedule_parse(const char *name, nb_lr_schedule *schedule);
const char *nb_lr_schedule_name(nb_lr_schedule schedule);

/* The model and data are borrowed and must outlive the solver; x tensors are [N,...], y are i64 [N]. */
nb_solver *nb_solver_new(nb_model *model, nb_tensor *train_x, nb_tensor *train_y, nb_tensor *val_x,
                         nb_tensor *val_y, const nb_solver_config *cfg);
/* Trains to num_epochs: 0 when done, 1 when the callback stopped it, -1 on error (for a diverged
 * loss the message reads "loss diverged at iteration N: try a smaller learning rate"). */
int nb_solver_train(nb_solver *s);
/* Restores model, optimizer, histories and position from a checkpoint written by this solver's
 * configuration; training then continues from the epoch it was saved at. The checkpoint records
 * what must not change and resuming refuses a difference, naming both values: the batch size and
 * mode, the training and validation data (dtype, shape and a fingerprint of sampled values), the
 * optimizer kind and its hyperparameters other than the learning rate. The learning rate continues
 * from the checkpoint's (decayed) value: cfg.optim.lr is only the first epoch's (nb_solver_lr reads
 * the one in use). num_epochs, lr_decay, clip_norm, augmentation and the seed may change. The
 * position is checked before anything changes: epoch, iteration and optimizer steps whole numbers in
 * range and consistent with each other and with the batches per epoch, histories f64 vectors of the
 * lengths the position implies (accuracies in [0,1]), best_val_acc the best of them, lr finite.
 * With cfg.dist it is a collective call: when any rank refuses, every rank does ("rank R failed: ..."). */
int nb_solver_resume(nb_solver *s, const char *path);
int nb_solver_save(nb_solver *s, const char *path);   /* atomic */
/* fraction of correct predictions on x (a random subsample of num_samples when 0 < num_samples < N) */
int nb_solver_accuracy(nb_solver *s, nb_tensor *x, nb_tensor *y, int64_t num_samples, double *acc);

/* histories: loss per iteration; train and val accuracy per check */
const double *nb_solver_loss_history(const nb_solver *s, int64_t *n);
const double *nb_solver_train_acc_history(const nb_solver *s, int64_t *n);
const double *nb_solver_val_acc_history(const nb_solver *s, int64_t *n);
double nb_solver_best_val_acc(const nb_solver *s);
int64_t nb_solver_epoch(const nb_solver *s);
double nb_solver_lr(const nb_solver *s);   /* the solver's rate, before warm-up and cosine (after resume: the checkpoint's) */
double nb_solver_step_lr(const nb_solver *s);   /* the rate the next step will use, after warm-up and cosine */
/* sets the solver's rate (finite, >= 0); the schedule continues from it. 0, or -1 with a message */
int nb_solver_set_lr(nb_solver *s, double lr);
void nb_solver_free(nb_solver *s);

#ifdef __cplusplus
}
#endif
#endif
