/* libFuzzer target for nb_solver_resume (the path nabla-train --resume takes): the input is the
 * checkpoint file, resumed by a fresh solver set to train to epoch 4 (fuzz_solver.h). A checkpoint
 * that resumes must hold a sane position, and training from it must end: with the position checks
 * missing, epoch "nan" trained negative epochs forever. */
#include "fuzz_common.h"
#include "fuzz_solver.h"

#include <limits.h>
#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[PATH_MAX];
    if (!path[0]) fuzz_path(path, sizeof path, "resume", ".safetensors");
    fuzz_write_file(path, data, size);
    fuzz_solver f;
    if (fuzz_solver_new(&f, 4)) {
        fprintf(stderr, "fuzz: the solver: %s\n", nb_last_error());
        abort();
    }
    if (nb_solver_resume(f.solver, path) == 0) {
        int64_t n;
        nb_solver_loss_history(f.solver, &n);
        const double best = nb_solver_best_val_acc(f.solver), lr = nb_solver_lr(f.solver);
        if (nb_solver_epoch(f.solver) < 0 || n < 0 || !(best == -1 || (best >= 0 && best <= 1)) || !isfinite(lr)) abort();
        /* at most 4 epochs of 3 iterations remain: a run that ends, or a clean error */
        const int rc = nb_solver_train(f.solver);
        if (rc == -1 && !nb_last_error()[0]) abort();
        int64_t after;
        nb_solver_loss_history(f.solver, &after);
        if (rc == 0 && (nb_solver_epoch(f.solver) < 4 || after > 12)) abort();
    }
    fuzz_solver_free(&f);
    nb_scope_reset(NULL);
    nb_cleanup();
    return 0;
}
