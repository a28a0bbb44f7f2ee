/* nbody_gen.c: the dataset generator program. Writes the 12 .npy files of a
 * charged-particle benchmark (loc, vel, edges, charges x train, valid, test). */
#include "sim.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: nbody-gen [options]\n"
    "Generate a charged-particle N-body dataset in the layout of the ClofNet/EGNN\n"
    "benchmark: {loc,vel,edges,charges}_{train,valid,test}_{sim}{n}_initvel1{tag}.npy\n"
    "\n"
    "  --sim charged|static|dynamic  force setting: ES, G+ES, L+ES (default charged)\n"
    "  --bodies N          bodies per system, >= 2 (default 5)\n"
    "  --train N           training trajectories (default 3000)\n"
    "  --valid N           validation trajectories (default 2000)\n"
    "  --test N            test trajectories (default 2000)\n"
    "  --length T          simulation steps per trajectory (default 5000)\n"
    "  --sample-freq F     save every F steps; T must be a multiple of F (default 100)\n"
    "  --seed S            global seed, 0 .. 4294967295 (default 43)\n"
    "  --tag TAG           file name suffix after initvel1 (default small)\n"
    "  --out DIR           output directory, created if missing (default .)\n"
    "  --reference-seeds   derive per-trajectory seeds exactly as the reference\n"
    "                      generator does (repeats possible); default: the same\n"
    "                      stream with repeats skipped, so no trajectory appears twice\n"
    "  --threads K         worker threads (default: all cores); output is identical\n"
    "  --force             overwrite an existing dataset\n"
    "  --json              print a one-line JSON summary on stdout\n"
    "  --help              this text\n";

struct options {
    int kind, bodies, length, sample_freq, threads, reference, force, json;
    long train, valid, test;
    uint32_t seed;
    const char *tag, *out;
};

static int fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "nbody-gen: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    return 2;
}

/* Fill o from argv; returns 0, or an exit status after printing the problem. */
static int parse_args(int argc, char **argv, struct options *o)
{
    *o = (struct options){.kind = SIM_CHARGED, .bodies = 5, .length = 5000, .sample_freq = 100,
                          .train = 3000, .valid = 2000, .test = 2000, .seed = 43,
                          .tag = "small", .out = "."};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            exit(0);
        }
        if (!strcmp(a, "--reference-seeds")) { o->reference = 1; continue; }
        if (!strcmp(a, "--force")) { o->force = 1; continue; }
        if (!strcmp(a, "--json")) { o->json = 1; continue; }
        static const char *const valued[] = {"--sim", "--bodies", "--train", "--valid", "--test",
                                             "--length", "--sample-freq", "--seed", "--tag",
                                             "--out", "--threads"};
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof *valued; k++)
            known |= !strcmp(a, valued[k]);
        if (!known)
            return fail("unknown option '%s'%s (see --help)", a, "");
        if (i + 1 >= argc)
            return fail("option %s needs a value%s", a, "");
        const char *v = argv[++i];
        long x;
        if (!strcmp(a, "--sim")) {
            o->kind = sim_kind_parse(v);
            if (o->kind < 0)
                return fail("unknown --sim '%s'%s: expected charged, static or dynamic", v, "");
        } else if (!strcmp(a, "--tag")) {
            if (strchr(v, '/'))
                return fail("--tag '%s' must not contain '/'%s", v, "");
            o->tag = v;
        } else if (!strcmp(a, "--out")) {
            if (!*v)
                return fail("--out needs a directory%s%s", "", "");
            o->out = v;
        } else if (!strcmp(a, "--seed")) {
            if (sim_parse_long(v, 0, 4294967295L, &x) != SIM_OK)
                return fail("--seed '%s' is not an integer in 0 .. 4294967295%s", v, "");
            o->seed = (uint32_t)x;
        } else if (!strcmp(a, "--bodies")) {
            if (sim_parse_long(v, 2, 10000, &x) != SIM_OK)
                return fail("--bodies '%s' must be an integer from 2 to 10000%s", v, "");
            o->bodies = (int)x;
        } else if (!strcmp(a, "--threads")) {
            if (sim_parse_long(v, 1, 1024, &x) != SIM_OK)
                return fail("--threads '%s' must be an integer from 1 to 1024%s", v, "");
            o->threads = (int)x;
        } else if (!strcmp(a, "--length") || !strcmp(a, "--sample-freq")) {
            if (sim_parse_long(v, 1, INT_MAX, &x) != SIM_OK)
                return fail("%s '%s' must be a positive integer", a, v);
            if (!strcmp(a, "--length"))
                o->length = (int)x;
            else
                o->sample_freq = (int)x;
        } else {
            if (sim_parse_long(v, 0, 100000000L, &x) != SIM_OK)
                return fail("%s '%s' must be a non-negative integer (trajectories)", a, v);
            if (!strcmp(a, "--train"))
                o->train = x;
            else if (!strcmp(a, "--valid"))
                o->valid = x;
            else
                o->test = x;
        }
    }
    if (o->length % o->sample_freq != 0) {
        char a[32], b[32];
        snprintf(a, sizeof a, "%d", o->length);
        snprintf(b, sizeof b, "%d", o->sample_freq);
        return fail("--length %s is not a multiple of --sample-freq %s", a, b);
    }
    if (sim_frame_count(o->length, o->sample_freq) < 1)
        return fail("--length must be at least twice --sample-freq: no frame would be saved%s%s", "", "");
    if (o->train + o->valid + o->test == 0)
        return fail("nothing to generate: --train, --valid and --test are all 0%s%s", "", "");
    if (!o->reference && o->train + o->valid + o->test > SIM_SEED_RANGE)
        return fail("more than 1000000 trajectories need --reference-seeds: distinct seeds are "
                    "drawn from 0 .. 999999%s%s", "", "");
    return 0;
}

/* Create dir and its parents if missing; 0 or -1 with errno. */
static int make_dirs(const char *dir)
{
    char buf[4096];
    if (strlen(dir) >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(buf, dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(buf, &st))
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct progress {
    int tty;
    const char *split;
    double start, last;
};

/* Progress line on a terminal, at most ten updates a second. */
static void show_progress(void *ctx, long done, long total)
{
    struct progress *p = ctx;
    double t = now();
    if (!p->tty || (t - p->last < 0.1 && done < total))
        return;
    p->last = t;
    fprintf(stderr, "\r\033[Knbody-gen: %s %ld/%ld trajectories, %.1f s", p->split, done, total,
            t - p->start);
    fflush(stderr);
}

/* Temporaries written so far, removed if the run fails or is interrupted. */
static char temp[3][4][4200];
static volatile sig_atomic_t written;

static void on_signal(int sig)
{
    for (int k = 0; k < written; k++)
        unlink(temp[k / 4][k % 4]);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Print s as a JSON string literal. */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static const char *const splits[3] = {"valid", "test", "train"};
static const char *const quantities[4] = {"loc", "vel", "edges", "charges"};

int main(int argc, char **argv)
{
    struct options o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    long counts[3] = {o.valid, o.test, o.train};
    long total = o.valid + o.test + o.train;
    int n = o.bodies, frames = sim_frame_count(o.length, o.sample_freq);

    if (make_dirs(o.out) || access(o.out, W_OK))
        return fail("cannot write to output directory '%s': %s", o.out, strerror(errno));
    static char final[3][4][4096];
    for (int s = 0; s < 3; s++)
        for (int qn = 0; qn < 4; qn++) {
            if (sim_dataset_path(final[s][qn], sizeof final[s][qn], o.out, quantities[qn], splits[s],
                                 o.kind, n, o.tag) != SIM_OK)
                return fail("output path in '%s' is too long%s", o.out, "");
            if (!o.force && access(final[s][qn], F_OK) == 0)
                return fail("%s exists; use --force to overwrite the dataset%s", final[s][qn], "");
            if (snprintf(temp[s][qn], sizeof temp[s][qn], "%s.partial", final[s][qn]) >= (int)sizeof temp[s][qn])
                return fail("output path in '%s' is too long%s", o.out, "");
            unlink(temp[s][qn]); /* left by a run killed with SIGKILL, if any */
        }

    uint32_t *seeds = malloc(sizeof *seeds * (size_t)total);
    if (!seeds)
        return fail("out of memory%s%s", "", "");
    if (sim_seeds(o.seed, (int)total, o.reference, seeds) != SIM_OK) {
        free(seeds);
        return fail("cannot derive %s per-trajectory seeds%s", "the", "");
    }
    int threads = o.threads ? o.threads : omp_get_max_threads();
    struct progress prog = {.tty = isatty(2), .start = now()};
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    char err[8400] = ""; /* room for two paths; >= SIM_ERRLEN */
    long offset = 0;
    rc = 0;
    for (int s = 0; s < 3 && !rc; s++) {
        long c = counts[s];
        size_t traj = (size_t)frames * 3 * n;
        double *loc = malloc(sizeof(double) * (c ? c : 1) * traj);
        double *vel = malloc(sizeof(double) * (c ? c : 1) * traj);
        double *edges = malloc(sizeof(double) * (c ? c : 1) * n * n);
        double *charges = malloc(sizeof(double) * (c ? c : 1) * n);
        prog.split = splits[s];
        if (!loc || !vel || !edges || !charges) {
            snprintf(err, sizeof err, "out of memory for %ld trajectories of %d bodies", c, n);
            rc = 1;
        } else if (sim_generate(o.kind, n, o.length, o.sample_freq, c, seeds + offset, threads, loc,
                                vel, edges, charges, show_progress, &prog) != SIM_OK) {
            snprintf(err, sizeof err, "simulation failed");
            rc = 1;
        }
        int64_t shape_lv[4] = {c, frames, 3, n}, shape_e[3] = {c, n, n}, shape_c[3] = {c, n, 1};
        const double *data[4] = {loc, vel, edges, charges};
        const int64_t *shapes[4] = {shape_lv, shape_lv, shape_e, shape_c};
        const int ndims[4] = {4, 4, 3, 3};
        for (int qn = 0; qn < 4 && !rc; qn++) {
            /* Signals wait until the file is complete and counted, so that the handler
             * removes it: sim_npy_write's own temporary is never left behind. */
            sigset_t block, old;
            sigemptyset(&block);
            sigaddset(&block, SIGINT);
            sigaddset(&block, SIGTERM);
            sigaddset(&block, SIGHUP);
            sigprocmask(SIG_BLOCK, &block, &old);
            if (sim_npy_write(temp[s][qn], SIM_NPY_F8, ndims[qn], shapes[qn], data[qn], err) != SIM_OK)
                rc = 1;
            else
                written++;
            sigprocmask(SIG_SETMASK, &old, NULL);
        }
        offset += c;
        free(loc);
        free(vel);
        free(edges);
        free(charges);
    }
    free(seeds);
    if (prog.tty)
        fprintf(stderr, "\r\033[K");
    if (!rc) {
        /* All twelve written: only now do they take their final names. */
        for (int k = 0; k < 12 && !rc; k++) {
            if (rename(temp[k / 4][k % 4], final[k / 4][k % 4])) {
                snprintf(err, sizeof err, "cannot rename %s: %s", temp[k / 4][k % 4], strerror(errno));
                rc = 1;
            }
        }
    }
    if (rc) {
        for (int k = 0; k < written; k++)
            unlink(temp[k / 4][k % 4]);
        fprintf(stderr, "nbody-gen: %s\n", err);
        return 1;
    }
    double secs = now() - prog.start;
    if (o.json) {
        printf("{\"sim\": \"%s\", \"bodies\": %d, \"train\": %ld, \"valid\": %ld, \"test\": %ld, "
               "\"frames\": %d, \"length\": %d, \"sample_freq\": %d, \"seed\": %u, "
               "\"reference_seeds\": %s, \"threads\": %d, \"seconds\": %.3f, "
               "\"trajectories_per_second\": %.1f, \"out\": ",
               sim_kind_name(o.kind), n, o.train, o.valid, o.test, frames, o.length, o.sample_freq,
               (unsigned)o.seed, o.reference ? "true" : "false", threads, secs, total / secs);
        json_string(stdout, o.out);
        printf("}\n");
    } else {
        fprintf(stderr, "nbody-gen: %ld trajectories (%s, %d bodies, %d frames) in %.2f s, %.0f/s, "
                        "%d threads -> %s/*_%s%d_initvel1%s.npy\n",
                total, sim_kind_name(o.kind), n, frames, secs, total / secs, threads, o.out,
                sim_kind_name(o.kind), n, o.tag);
    }
    return 0;
}
