/* nb_fprint: the exact text of the NumPy-like layout for shapes, dtypes, views and special values. */
#include "nbtest.h"

#include <stdlib.h>


static char *printed(const nb_tensor *t)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(nb_fprint(f, t), 0);
    fclose(f);
    return buf;
}

#define assert_printed(t, text)                                                                      \
    do {                                                                                             \
        char *s_ = printed(t);                                                                       \
        ck_assert_str_eq(s_, text);                                                                  \
        free(s_);                                                                                    \
    } while (0)

START_TEST(print_aligns_columns)
{
    double v[6] = { 1.5, 2, 3, -4, 5, 6 };
    nb_tensor *x = nb_from_doubles(NB_F64, NB_SHAPE(2, 3), v);
    assert_printed(x, "[[ 1.5  2.   3. ]\n [-4.   5.   6. ]]\nf64 [2,3]\n");
    assert_printed(nb_transpose(x, 0, 1), "[[ 1.5 -4. ]\n [ 2.   5. ]\n [ 3.   6. ]]\nf64 [3,2]\n");
    assert_printed(nb_slice(x, 1, 0, 3, 2), "[[ 1.5  3. ]\n [-4.   6. ]]\nf64 [2,2]\n");
}
END_TEST

START_TEST(print_shortest_digits)
{
    double v[3] = { 0.1, 1.1, -0.25 };
    /* f32 values print as the shortest text that reads back as the same float */
    assert_printed(nb_from_doubles(NB_F32, NB_SHAPE(3), v), "[ 0.1   1.1  -0.25]\nf32 [3]\n");
    double third[2] = { 1.0 / 3, 2 };
    assert_printed(nb_from_doubles(NB_F64, NB_SHAPE(2), third), "[0.33333333 2.        ]\nf64 [2]\n");
}
END_TEST

START_TEST(print_3d_and_integers)
{
    assert_printed(nb_reshape(nb_arange(NB_F32, 0, 12, 1), NB_SHAPE(2, 2, 3)),
                   "[[[ 0.  1.  2.]\n  [ 3.  4.  5.]]\n\n [[ 6.  7.  8.]\n  [ 9. 10. 11.]]]\nf32 [2,2,3]\n");
    double v[4] = { -3, 12, 0, 7 };
    assert_printed(nb_from_doubles(NB_I64, NB_SHAPE(2, 2), v), "[[-3 12]\n [ 0  7]]\ni64 [2,2]\n");
}
END_TEST

START_TEST(print_scientific_and_non_finite)
{
    double v[3] = { 1e-5, 2.5e10, -3 };
    assert_printed(nb_from_doubles(NB_F64, NB_SHAPE(3), v), "[ 1.0e-05  2.5e+10 -3.0e+00]\nf64 [3]\n");
    double small[2] = { 1e-5, 1e-6 };
    assert_printed(nb_from_doubles(NB_F64, NB_SHAPE(2), small), "[1.e-05 1.e-06]\nf64 [2]\n");
    double odd[3] = { INFINITY, NAN, 1 };
    assert_printed(nb_from_doubles(NB_F64, NB_SHAPE(3), odd), "[inf nan  1.]\nf64 [3]\n");
}
END_TEST

START_TEST(print_scalar_and_empty)
{
    assert_printed(nb_scalar(NB_F64, 2.5), "2.5\nf64 []\n");
    assert_printed(nb_scalar(NB_I64, -7), "-7\ni64 []\n");
    assert_printed(nb_zeros(NB_F32, NB_SHAPE(2, 0)), "[]\nf32 [2,0]\n");
}
END_TEST

START_TEST(print_wraps_long_rows)
{
    assert_printed(nb_arange(NB_F64, 0, 30, 1),
                   "[ 0.  1.  2.  3.  4.  5.  6.  7.  8.  9. 10. 11. 12. 13. 14. 15. 16. 17.\n"
                   " 18. 19. 20. 21. 22. 23. 24. 25. 26. 27. 28. 29.]\nf64 [30]\n");
}
END_TEST

START_TEST(print_summarises_big_tensors)
{
    assert_printed(nb_arange(NB_I64, 0, 2000, 1), "[   0    1    2 ... 1997 1998 1999]\ni64 [2000]\n");
    assert_printed(nb_reshape(nb_arange(NB_I64, 0, 1600, 1), NB_SHAPE(40, 40)),
                   "[[   0    1    2 ...   37   38   39]\n"
                   " [  40   41   42 ...   77   78   79]\n"
                   " [  80   81   82 ...  117  118  119]\n"
                   " ...\n"
                   " [1480 1481 1482 ... 1517 1518 1519]\n"
                   " [1520 1521 1522 ... 1557 1558 1559]\n"
                   " [1560 1561 1562 ... 1597 1598 1599]]\ni64 [40,40]\n");
    /* exactly 1000 elements are printed in full */
    char *s = printed(nb_zeros(NB_I64, NB_SHAPE(1000)));
    ck_assert_ptr_null(strstr(s, "..."));
    free(s);
}
END_TEST

START_TEST(print_errors)
{
    nb_clear_error();
    ck_assert_int_eq(nb_fprint(stdout, NULL), -1);
    ck_assert_str_eq(nb_last_error(), "");
    ck_assert_int_eq(nb_fprint(NULL, nb_scalar(NB_F64, 1)), -1);
    ck_assert_str_eq(nb_last_error(), "nb_fprint: NULL file");
}
END_TEST

static Suite *print_suite(void)
{
    Suite *s = suite_create("print");
    TCase *print = tcase_create("print");
    tcase_add_test(print, print_aligns_columns);
    tcase_add_test(print, print_shortest_digits);
    tcase_add_test(print, print_3d_and_integers);
    tcase_add_test(print, print_scientific_and_non_finite);
    tcase_add_test(print, print_scalar_and_empty);
    tcase_add_test(print, print_wraps_long_rows);
    tcase_add_test(print, print_summarises_big_tensors);
    tcase_add_test(print, print_errors);
    suite_add_tcase(s, print);
    return s;
}

NBT_MAIN(print_suite)
