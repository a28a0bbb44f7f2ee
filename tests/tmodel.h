/* tmodel.h: helpers of the model tests, header only (include after cmocka.h and clofnet.h). */
#ifndef TESTS_TMODEL_H
#define TESTS_TMODEL_H

#include <string.h>

/* 1 when two training states (.state checkpoints) hold the same parameters, moments and step
 * count. Their resume records also hold each epoch's wall time, which differs between runs,
 * so the files themselves are not compared. */
static inline int tm_same_state(const char *a, const char *b)
{
    struct cn_state sa, sb;
    char err[CN_ERRLEN];
    int oa = 0, ob = 0;
    assert_int_equal(cn_ckpt_load(a, NULL, &sa, NULL, &oa, NULL, NULL, err), CN_OK);
    assert_int_equal(cn_ckpt_load(b, NULL, &sb, NULL, &ob, NULL, NULL, err), CN_OK);
    assert_true(oa && ob);
    const size_t bytes = (size_t)sa.n_params * sizeof(float);
    const int same = sa.n_params == sb.n_params && sa.step == sb.step &&
                     memcmp(sa.param, sb.param, bytes) == 0 && memcmp(sa.m, sb.m, bytes) == 0 &&
                     memcmp(sa.v, sb.v, bytes) == 0;
    cn_state_free(&sa);
    cn_state_free(&sb);
    return same;
}

#endif
