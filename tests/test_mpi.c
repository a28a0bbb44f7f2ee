/* test_mpi.c: nbody-gen and nbody-train under mpirun (2 and 3 ranks, oversubscribed): the same
 * bytes as one process, one message and no files when one rank is given a bad argument, and
 * --resume across rank counts. Registered only where MPI was found (tests/mpi.cmake). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "clofnet.h"
#include "sim.h"
#include "tfs.h"

#define GEN BIN_DIR "/sim/nbody-gen"
#define TRAIN BIN_DIR "/model/nbody-train"
/* mpirun: --quiet drops its own banner after a failed rank, so stderr holds ours alone */
#define MPIRUN MPIEXEC " --quiet --oversubscribe"
/* Splits that no rank count divides, one of them smaller than 3 ranks (a rank with none). */
#define GEN_SMALL "--train 7 --valid 5 --test 2 --length 1000 --sample-freq 100"
/* Training: 6 shares of 16 graphs a batch (3 per rank on 2, 2 per rank on 3), 3 batches an
 * epoch, validation every epoch, a small network so that a run takes a second or two. */
#define TRAIN_ARGS "--epochs 4 --val-every 1 --batch 96 --hidden 32 --layers 2 --quiet"
#define TRAIN_EPOCHS 4

static char root[256];

static int setup(void **state)
{
    (void)state;
    /* mpirun refuses root without both (the test machine's CI runs as root) */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    return tfs_mkdtemp(root, sizeof root, "test_mpi");
}

static int teardown(void **state)
{
    (void)state;
    tfs_remove_tree(root);
    return 0;
}

/* Run a shell command in root; its exit status; stdout into out and stderr into err if given. */
static int sh(const char *cmd, char *out, size_t outlen, char *err, size_t errlen)
{
    char full[4096], of[300], ef[300];
    snprintf(of, sizeof of, "%s/stdout.txt", root);
    snprintf(ef, sizeof ef, "%s/stderr.txt", root);
    snprintf(full, sizeof full, "cd '%s' && %s >'%s' 2>'%s'", root, cmd, of, ef);
    int st = system(full);
    char *bufs[2] = {out, err};
    size_t lens[2] = {outlen, errlen};
    const char *files[2] = {of, ef};
    for (int k = 0; k < 2; k++) {
        if (!bufs[k])
            continue;
        FILE *f = fopen(files[k], "r");
        size_t n = f ? fread(bufs[k], 1, lens[k] - 1, f) : 0;
        bufs[k][n] = '\0';
        if (f)
            fclose(f);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The same bytes in two files (the first `prefix` bytes when prefix > 0). */
static void assert_same_file(const char *a, const char *b, size_t prefix)
{
    size_t la = 0, lb = 0;
    unsigned char *x = tfs_slurp(a, &la), *y = tfs_slurp(b, &lb);
    if (!x || !y)
        fail_msg("cannot read %s or %s", a, b);
    if (prefix == 0) {
        if (la != lb)
            fail_msg("%s has %zu bytes, %s %zu", a, la, b, lb);
        prefix = la;
    }
    if (la < prefix || lb < prefix)
        fail_msg("%s or %s is shorter than %zu bytes", a, b, prefix);
    if (memcmp(x, y, prefix) != 0)
        fail_msg("%s and %s differ", a, b);
    free(x);
    free(y);
}

/* The twelve files of two datasets of root/GEN_SMALL's shape, byte for byte. */
static void assert_same_dataset(const char *a, const char *b)
{
    static const char *const q[4] = {"loc", "vel", "edges", "charges"};
    static const char *const sp[3] = {"train", "valid", "test"};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) {
            char fa[600], fb[600];
            snprintf(fa, sizeof fa, "%s/%s/%s_%s_charged5_initvel1small.npy", root, a, q[i], sp[j]);
            snprintf(fb, sizeof fb, "%s/%s/%s_%s_charged5_initvel1small.npy", root, b, q[i], sp[j]);
            assert_same_file(fa, fb, 0);
        }
    char m[600];
    snprintf(m, sizeof m, "%s/%s/dataset.json", root, b);
    assert_true(tfs_exists(m));
}

/* Exactly one line on stderr, containing `expect`. */
static void assert_one_message(const char *err, const char *expect)
{
    const char *nl = strchr(err, '\n');
    if (!strstr(err, expect) || !nl || nl[1] != '\0')
        fail_msg("expected one line naming '%s', got '%s'", expect, err);
}

/* Generation on 2 and 3 ranks, with 1 or 2 threads each, writes the one-process bytes. */
static void test_gen_same_bytes(void **state)
{
    (void)state;
    char err[2048];
    assert_int_equal(sh(GEN " " GEN_SMALL " --threads 2 --out one", NULL, 0, err, sizeof err), 0);
    const char *runs[3][2] = {{"-np 2", "--threads 1 --out r2"},
                              {"-np 3", "--threads 1 --out r3"},
                              {"-np 2", "--threads 2 --out r2t2"}};
    for (int k = 0; k < 3; k++) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, MPIRUN " %s " GEN " " GEN_SMALL " %s", runs[k][0], runs[k][1]);
        int st = sh(cmd, NULL, 0, err, sizeof err);
        if (st)
            fail_msg("%s: exit %d: %s", cmd, st, err);
        /* one summary line, from rank 0 */
        assert_one_message(err, "14 trajectories");
        assert_same_dataset("one", strrchr(runs[k][1], ' ') + 1);
    }
    /* and the comparison can fail: another seed is other bytes */
    assert_int_equal(sh(MPIRUN " -np 2 " GEN " " GEN_SMALL " --seed 44 --out s44", NULL, 0, err,
                        sizeof err), 0);
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/one/loc_train_charged5_initvel1small.npy", root);
    snprintf(b, sizeof b, "%s/s44/loc_train_charged5_initvel1small.npy", root);
    size_t la = 0, lb = 0;
    unsigned char *x = tfs_slurp(a, &la), *y = tfs_slurp(b, &lb);
    assert_true(x && y && la == lb && memcmp(x, y, la) != 0);
    free(x);
    free(y);
}

/* One rank with a bad argument, or other options than rank 0: every rank stops, one message
 * (the lowest failing rank's), a non-zero exit, and nothing in the working folder. */
static void test_gen_bad_argument_one_rank(void **state)
{
    (void)state;
    struct {
        const char *cmd, *expect;
    } cases[] = {
        {MPIRUN " -np 1 " GEN " " GEN_SMALL " --out bad : -np 1 " GEN " " GEN_SMALL
                " --out bad --bodies x", "--bodies 'x'"},
        {MPIRUN " -np 2 " GEN " " GEN_SMALL " --out bad : -np 1 " GEN " " GEN_SMALL
                " --out bad --train -1", "--train '-1'"},
        {MPIRUN " -np 3 " GEN " " GEN_SMALL " --out bad --length 1050", "multiple"},
        {MPIRUN " -np 1 " GEN " " GEN_SMALL " --out bad : -np 2 " GEN " " GEN_SMALL
                " --out bad --seed 4", "rank 1 was given other options"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char err[2048];
        int st = sh(cases[k].cmd, NULL, 0, err, sizeof err);
        if (st == 0)
            fail_msg("%s: exit 0", cases[k].cmd);
        assert_one_message(err, cases[k].expect);
        /* stdout.txt and stderr.txt only: no dataset, no lock, no temporary folder */
        assert_int_equal(tfs_count_entries(root), 2);
    }
}

/* The byte count of a training state before its resume record: header, parameters and both
 * AdamW moments (the record holds each epoch's wall time, which no two runs share). */
static size_t state_prefix(void)
{
    struct cn_config c;
    cn_config_default(&c, CN_TASK_POSITION);
    c.hidden = 32;
    c.layers = 2;
    return 96 + 3 * 4 * (size_t)cn_param_count(&c);
}

/* A dataset for training: 300 trajectories, frames 30 and 40 present. */
static void make_training_data(void)
{
    char err[2048];
    if (sh(GEN " --train 300 --valid 40 --test 40 --length 4200 --out d5", NULL, 0, err,
           sizeof err) != 0)
        fail_msg("nbody-gen: %s", err);
}

/* Training on 2 and 3 ranks (1 or 2 threads each) writes the checkpoint and the optimizer
 * state of the threaded run with the same shares; the best epoch is the last, so the
 * checkpoint compared is the trained one. */
static void test_train_same_bytes(void **state)
{
    (void)state;
    make_training_data();
    char out[4096], err[2048], want[64];
    int st = sh(TRAIN " --data d5 " TRAIN_ARGS " --threads 2 --out ref.ckpt", out, sizeof out,
                err, sizeof err);
    if (st)
        fail_msg("nbody-train: exit %d: %s", st, err);
    snprintf(want, sizeof want, "at epoch %d;", TRAIN_EPOCHS - 1);
    if (!strstr(out, want))
        fail_msg("the reference run's best epoch is not the last: %s", out);
    const char *runs[3][2] = {{"-np 2", "--threads 1 --out m2.ckpt"},
                              {"-np 3", "--threads 1 --out m3.ckpt"},
                              {"-np 2", "--threads 2 --out m2t2.ckpt"}};
    for (int k = 0; k < 3; k++) {
        char cmd[1024], a[600], b[600], sa[600], sb[600];
        snprintf(cmd, sizeof cmd, MPIRUN " %s " TRAIN " --data d5 " TRAIN_ARGS " %s", runs[k][0],
                 runs[k][1]);
        st = sh(cmd, out, sizeof out, err, sizeof err);
        if (st)
            fail_msg("%s: exit %d: %s", cmd, st, err);
        assert_string_equal(err, "");
        /* one summary line: stdout from rank 0 only */
        assert_non_null(strstr(out, want));
        assert_null(strstr(strstr(out, want) + 1, "parameters"));
        const char *name = strrchr(runs[k][1], ' ') + 1;
        snprintf(a, sizeof a, "%s/ref.ckpt", root);
        snprintf(b, sizeof b, "%s/%s", root, name);
        snprintf(sa, sizeof sa, "%s/ref.ckpt.state", root);
        snprintf(sb, sizeof sb, "%s/%s.state", root, name);
        assert_same_file(a, b, 0);
        assert_same_file(sa, sb, state_prefix());
    }
    /* and the comparison can fail: another seed trains other weights */
    st = sh(MPIRUN " -np 2 " TRAIN " --data d5 " TRAIN_ARGS " --seed 7 --out s7.ckpt", NULL, 0, err,
            sizeof err);
    assert_int_equal(st, 0);
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/ref.ckpt", root);
    snprintf(b, sizeof b, "%s/s7.ckpt", root);
    size_t la = 0, lb = 0;
    unsigned char *x = tfs_slurp(a, &la), *y = tfs_slurp(b, &lb);
    assert_true(x && y && la == lb && memcmp(x, y, la) != 0);
    free(x);
    free(y);
}

/* A run stopped on 2 ranks and resumed on 3, and one stopped on 3 resumed by one process,
 * end in the bytes of the uninterrupted run. */
static void test_train_resume(void **state)
{
    (void)state;
    make_training_data();
    char err[2048];
    int st = sh(TRAIN " --data d5 " TRAIN_ARGS " --threads 2 --out ref.ckpt", NULL, 0, err,
                sizeof err);
    assert_int_equal(st, 0);
    const char *parts[2][3] = {
        {"-np 2", MPIRUN " -np 3 " TRAIN " --data d5 --out a.ckpt --resume --threads 1", "a.ckpt"},
        {"-np 3", TRAIN " --data d5 --out b.ckpt --resume --threads 2", "b.ckpt"}};
    for (int k = 0; k < 2; k++) {
        char cmd[1024], a[600], b[600];
        snprintf(cmd, sizeof cmd, MPIRUN " %s " TRAIN " --data d5 " TRAIN_ARGS " --threads 1 "
                 "--stop-after 2 --out %s", parts[k][0], parts[k][2]);
        st = sh(cmd, NULL, 0, err, sizeof err);
        if (st)
            fail_msg("%s: exit %d: %s", cmd, st, err);
        snprintf(a, sizeof a, "%s/%s.csv", root, parts[k][2]);
        size_t len;
        char *csv = (char *)tfs_slurp(a, &len);
        assert_non_null(csv);
        assert_non_null(strstr(csv, "\n1,"));
        assert_null(strstr(csv, "\n2,")); /* stopped after two epochs */
        free(csv);
        st = sh(parts[k][1], NULL, 0, err, sizeof err);
        if (st)
            fail_msg("%s: exit %d: %s", parts[k][1], st, err);
        snprintf(a, sizeof a, "%s/ref.ckpt", root);
        snprintf(b, sizeof b, "%s/%s", root, parts[k][2]);
        assert_same_file(a, b, 0);
        snprintf(a, sizeof a, "%s/ref.ckpt.state", root);
        snprintf(b, sizeof b, "%s/%s.state", root, parts[k][2]);
        assert_same_file(a, b, state_prefix());
    }
}

/* One rank with a bad argument, other options, or an output only rank 0 cannot write: every
 * rank stops before training, one message, non-zero exit, no checkpoint, state or history. */
static void test_train_bad_argument_one_rank(void **state)
{
    (void)state;
    make_training_data();
    struct {
        const char *cmd, *expect;
    } cases[] = {
        {MPIRUN " -np 1 " TRAIN " --data d5 " TRAIN_ARGS " --out bad.ckpt : -np 1 " TRAIN
                " --data d5 " TRAIN_ARGS " --out bad.ckpt --epochs x", "--epochs 'x'"},
        {MPIRUN " -np 2 " TRAIN " --data d5 " TRAIN_ARGS " --out bad.ckpt : -np 1 " TRAIN
                " --data d5 " TRAIN_ARGS " --out bad.ckpt --lr abc", "--lr 'abc'"},
        {MPIRUN " -np 1 " TRAIN " --data d5 " TRAIN_ARGS " --out bad.ckpt : -np 2 " TRAIN
                " --data d5 " TRAIN_ARGS " --out bad.ckpt --seed 3", "rank 1 was given other options"},
        {MPIRUN " -np 3 " TRAIN " --data d5 " TRAIN_ARGS " --out no/such/dir/bad.ckpt",
         "cannot write no/such/dir/bad.ckpt"},
        {MPIRUN " -np 2 " TRAIN " --data nodata " TRAIN_ARGS " --out bad.ckpt", "nodata"},
        {MPIRUN " -np 2 " TRAIN " --data d5 --out bad.ckpt --resume", "nothing to resume"},
    };
    /* d5, stdout.txt and stderr.txt (made by the data's generation) */
    const int entries = tfs_count_entries(root);
    assert_int_equal(entries, 3);
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char err[2048];
        int st = sh(cases[k].cmd, NULL, 0, err, sizeof err);
        if (st == 0)
            fail_msg("%s: exit 0", cases[k].cmd);
        assert_one_message(err, cases[k].expect);
        /* no checkpoint, state, history or temporary of any of them */
        assert_int_equal(tfs_count_entries(root), entries);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gen_same_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gen_bad_argument_one_rank, setup, teardown),
        cmocka_unit_test_setup_teardown(test_train_same_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_train_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_train_bad_argument_one_rank, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
