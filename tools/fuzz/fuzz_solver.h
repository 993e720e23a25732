/* The solver the resume fuzz target feeds checkpoints to, and make_corpus trains to write its seeds:
 * a TwoLayerNet 4-5-3 (f32) on 24 fixed points, Adam, batches of 8 shuffled (3 per epoch), so that
 * a seed checkpoint matches it in every recorded property and the fuzzer reaches the position checks. */
#ifndef NABLA_FUZZ_SOLVER_H
#define NABLA_FUZZ_SOLVER_H

#include "nabla/nabla.h"

typedef struct { nb_model *model; nb_tensor *x, *y; nb_solver *solver; } fuzz_solver;

static int fuzz_solver_new(fuzz_solver *f, int64_t epochs)
{
    nb_rng r;
    nb_rng_seed(&r, 5);
    double xv[24 * 4], yv[24];
    for (int i = 0; i < 24; i++) {
        yv[i] = i % 3;
        for (int j = 0; j < 4; j++) xv[i * 4 + j] = nb_rng_normal(&r) + (j == i % 3 ? 3 : 0);
    }
    f->x = nb_persist(nb_from_doubles(NB_F32, NB_SHAPE(24, 4), xv));
    f->y = nb_persist(nb_from_doubles(NB_I64, NB_SHAPE(24), yv));
    f->model = nb_two_layer_net(4, 5, 3, 1e-1, 0, NB_F32, &r);
    nb_solver_config c = nb_solver_defaults();
    c.optim = nb_optim_defaults(NB_ADAM);
    c.batch_size = 8;
    c.batch_mode = NB_BATCH_SHUFFLE;
    c.num_epochs = epochs;
    c.num_train_samples = 0;
    c.verbose = false;
    f->solver = f->x && f->y && f->model ? nb_solver_new(f->model, f->x, f->y, f->x, f->y, &c) : NULL;
    nb_scope_reset(NULL);
    return f->solver ? 0 : -1;
}

static void fuzz_solver_free(fuzz_solver *f)
{
    nb_solver_free(f->solver);
    nb_model_free(f->model);
    nb_free(f->x);
    nb_free(f->y);
}

#endif
