/* A program outside nabla's tree, built by the install and subproject tests (tests/install.sh,
 * tests/subproject.sh) against the installed or subproject library: one small expression, its
 * backward, and a check of the gradient against the value worked out by hand. */
#include <stdio.h>
#include <nabla/nabla.h>

int main(void)
{
    /* loss = sum(relu(x @ w)) with x = [[1, 2], [-3, 1]], w = [[1], [1]]: rows 3 and -2, so only
     * the first row passes the relu and dloss/dw = x's first row = [1, 2] */
    nb_tensor *x = nb_from_doubles(NB_F64, NB_SHAPE(2, 2), (double[]){ 1, 2, -3, 1 });
    nb_tensor *w = nb_param(nb_ones(NB_F64, NB_SHAPE(2, 1)));
    nb_tensor *loss = nb_sum(nb_relu(nb_matmul(x, w)));
    if (!loss || nb_backward(loss) != 0) {
        fprintf(stderr, "app: %s\n", nb_last_error());
        return 1;
    }
    double g0 = nb_get(w->grad, 0), g1 = nb_get(w->grad, 1);
    printf("loss %g, dloss/dw [%g, %g]\n", nb_item(loss), g0, g1);
    int ok = nb_item(loss) == 3 && g0 == 1 && g1 == 2;
    nb_free(w);
    nb_cleanup();
    return ok ? 0 : 1;
}
