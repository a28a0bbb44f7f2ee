/* nbody_gen.c: the dataset generator program. Writes the 12 .npy files of a
 * charged-particle benchmark (loc, vel, edges, charges x train, valid, test). */
#include "sim.h"
#include "sim_mpi.h"

#include <dirent.h>
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
    "  --out DIR           the dataset's folder (default: ./TAG): made whole or not at\n"
    "                      all, and with --force replaced whole; new, empty or holding\n"
    "                      only this dataset (the twelve files and dataset.json)\n"
    "  --stream NAME       how the initial states are drawn from the seed, to\n"
    "                      regenerate a published dataset exactly:\n"
    "                        distinct: (default) the clofnet seeds with repeats\n"
    "                          skipped, so no trajectory appears twice\n"
    "                        clofnet: mouthful/ClofNet's script as published (worker\n"
    "                          pool; repeats possible)\n"
    "                        clofnet-serial: the same script run without its pool\n"
    "                        egnn: vgsatorras/egnn's generator (charged only; the\n"
    "                          ES(5) dataset of EGNN, SEGNN, CGENN with --train 10000)\n"
    "  --reference-seeds   the same as --stream clofnet\n"
    "  --threads K         worker threads (default: all cores); output is identical\n"
    "                      (under mpirun: per rank; each rank computes a contiguous share\n"
    "                      of every split and rank 0 writes the files, the same bytes)\n"
    "  --force             replace an existing dataset\n"
    "  --json              print a one-line JSON summary on stdout\n"
    "  --help              this text\n";

struct options {
    int kind, bodies, length, sample_freq, threads, stream, force, json;
    int reference_flag, stream_given; /* --reference-seeds, --stream given */
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

static const char *const splits[3] = {"valid", "test", "train"};
static const char *const quantities[4] = {"loc", "vel", "edges", "charges"};

/* a * b into *out; 0, or -1 if the product does not fit in size_t. */
static int mul_size(size_t a, size_t b, size_t *out)
{
    return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}

/* The arrays of one split of c trajectories, in bytes: loc and vel (each), edges, charges. */
struct split_bytes {
    size_t lv, edges, charges;
};

/* Sizes of a split's arrays (at least one trajectory's worth); 0, or -1 on size_t overflow. */
static int split_bytes(long c, int frames, int n, struct split_bytes *b)
{
    size_t count = c > 0 ? (size_t)c : 1, lv, e, q;
    if (mul_size((size_t)frames, 3 * (size_t)n, &lv) || mul_size(lv, count, &lv) ||
        mul_size(lv, sizeof(double), &lv) || mul_size((size_t)n, (size_t)n, &e) ||
        mul_size(e, count, &e) || mul_size(e, sizeof(double), &e) ||
        mul_size((size_t)n, count, &q) || mul_size(q, sizeof(double), &q))
        return -1;
    *b = (struct split_bytes){lv, e, q};
    return 0;
}

/* Bytes as a short human-readable size. */
static void human_bytes(double bytes, char *buf, size_t len)
{
    static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int u = 0;
    while (bytes >= 1024 && u < 6)
        bytes /= 1024, u++;
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
}

/* Refuse, before anything is allocated or created, a run whose arrays cannot be held: every
 * product checked against SIZE_MAX, and the whole (the largest split's loc, vel, edges and
 * charges, the seeds and each thread's force scratch) against the machine's memory.
 * Returns 0, or 2 after printing one line naming the size. */
static int check_sizes(const struct options *o, int frames, int threads)
{
    const long counts[3] = {o->valid, o->test, o->train};
    int big = 0;
    for (int s = 1; s < 3; s++)
        if (counts[s] > counts[big])
            big = s;
    const int n = o->bodies;
    struct split_bytes b;
    size_t need = 0, scratch, seeds, states;
    int bad = split_bytes(counts[big], frames, n, &b) ||
              mul_size(SIM_FORCES_WORK(n) + 12 * (size_t)n, sizeof(double), &scratch) ||
              mul_size(scratch, (size_t)threads, &scratch) ||
              mul_size((size_t)(o->train + o->valid + o->test), sizeof(uint32_t), &seeds) ||
              mul_size((size_t)(o->train + o->valid + o->test), SIM_STATE_DOUBLES(n), &states) ||
              mul_size(states, sizeof(double), &states) ||
              __builtin_add_overflow(seeds, states, &seeds) ||
              __builtin_add_overflow(b.lv, b.lv, &need) ||
              __builtin_add_overflow(need, b.edges, &need) ||
              __builtin_add_overflow(need, b.charges, &need) ||
              __builtin_add_overflow(need, scratch, &need) ||
              __builtin_add_overflow(need, seeds, &need);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    double ram = pages > 0 && page > 0 ? (double)pages * (double)page : 0;
    if (!bad && (ram == 0 || (double)need <= ram))
        return 0;
    /* the same sum in double, which cannot overflow, for the message */
    double bytes = 2.0 * counts[big] * frames * 3.0 * n * sizeof(double) +
                   (double)counts[big] * n * (n + 1.0) * sizeof(double) +
                   (double)threads * ((double)n * n + 14.0 * n) * sizeof(double) +
                   (double)(o->train + o->valid + o->test) *
                       (sizeof(uint32_t) + 7.0 * n * sizeof(double));
    char want[32], have[32];
    human_bytes(bytes, want, sizeof want);
    human_bytes(ram, have, sizeof have);
    fprintf(stderr, "nbody-gen: %ld %s trajectories of %d bodies and %d frames (and %d threads' "
            "scratch and every initial state) need %.3g bytes (%s) of memory at once, more "
            "than %s%s; use fewer trajectories, bodies, frames or threads\n", counts[big],
            splits[big], n, frames, threads, bytes, want, bad ? "a size_t can count" : "this machine's ",
            bad ? "" : have);
    return 2;
}

/* Fill o from argv; returns 0, or an exit status after printing the problem. */
static int parse_args(int argc, char **argv, struct options *o)
{
    *o = (struct options){.kind = SIM_CHARGED, .bodies = 5, .length = 5000, .sample_freq = 100,
                          .train = 3000, .valid = 2000, .test = 2000, .seed = 43,
                          .tag = "small", .out = NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            exit(0);
        }
        if (!strcmp(a, "--reference-seeds")) { o->reference_flag = 1; continue; }
        if (!strcmp(a, "--force")) { o->force = 1; continue; }
        if (!strcmp(a, "--json")) { o->json = 1; continue; }
        static const char *const valued[] = {"--sim", "--bodies", "--train", "--valid", "--test",
                                             "--length", "--sample-freq", "--seed", "--tag",
                                             "--out", "--threads", "--stream"};
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
        } else if (!strcmp(a, "--stream")) {
            o->stream = sim_stream_parse(v);
            o->stream_given = 1;
            if (o->stream < 0)
                return fail("unknown --stream '%s'%s: expected distinct, clofnet, clofnet-serial "
                            "or egnn", v, "");
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
    if (o->reference_flag) {
        if (o->stream_given && o->stream != SIM_STREAM_CLOFNET)
            return fail("--reference-seeds means --stream clofnet, not --stream %s%s",
                        sim_stream_name(o->stream), "");
        o->stream = SIM_STREAM_CLOFNET;
    }
    if (!sim_stream_has_kind(o->stream, o->kind))
        return fail("--stream %s has no --sim %s: the EGNN generator makes the charged setting "
                    "only", sim_stream_name(o->stream), sim_kind_name(o->kind));
    if (!o->out)
        o->out = o->tag; /* the ClofNet loaders expect a dataset under a folder of its tag */
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
    int rc = check_sizes(o, sim_frame_count(o->length, o->sample_freq),
                         o->threads ? o->threads : omp_get_max_threads());
    if (rc)
        return rc;
    if (o->stream == SIM_STREAM_DISTINCT && o->train + o->valid + o->test > SIM_SEED_RANGE)
        return fail("more than 1000000 trajectories need another --stream (clofnet, "
                    "clofnet-serial or egnn): distinct seeds are drawn from 0 .. 999999%s%s", "",
                    "");
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

/* The dataset's folder: built privately, published whole (sim_folder). */
static struct sim_folder folder = {.lock_fd = -1};

/* SIGINT, SIGTERM, SIGHUP (on the signal thread, never while a file or the folder is being
 * changed): remove the private folder and the lock, then die of the signal. */
static void on_signal(int sig, void *user)
{
    (void)user;
    sim_folder_abort(&folder);
    sim_signals_exit(sig);
}

/* Test hook: NBODY_GEN_FAULT=STAGE[:ACTION] ends the run at STAGE ("lock", "mkdir",
 * "write-K" after the K-th of the twelve files, "manifest", "fsync", "aside", "swap",
 * "done") as ACTION says: "kill" (the default: SIGKILL, which nothing can clean up after),
 * "term" (SIGTERM to itself, handled as any SIGTERM is) or "stop" (SIGSTOP: held there until
 * a SIGCONT, so a test can act meanwhile). Only ever called outside a signal section. */
static void fault(void *user, const char *stage)
{
    (void)user;
    const char *want = getenv("NBODY_GEN_FAULT");
    if (!want)
        return;
    size_t len = strlen(stage);
    if (strncmp(want, stage, len) != 0 || (want[len] != '\0' && want[len] != ':'))
        return;
    const char *action = want[len] == ':' ? want + len + 1 : "kill";
    if (!strcmp(action, "term")) {
        kill(getpid(), SIGTERM);
        for (;;)
            pause(); /* the signal thread ends the process */
    }
    raise(!strcmp(action, "stop") ? SIGSTOP : SIGKILL);
}

/* A run id unique across runs and machines: UTC time, pid and 64 random bits. */
static void make_run_id(char *buf, size_t len)
{
    uint64_t r = 0;
    FILE *u = fopen("/dev/urandom", "rb");
    if (!u || fread(&r, sizeof r, 1, u) != 1) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
    }
    if (u)
        fclose(u);
    time_t t = time(NULL);
    struct tm tm;
    char when[32] = "unknown";
    if (gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(buf, len, "%s-%ld-%016llx", when, (long)getpid(), (unsigned long long)r);
}

/* What an existing folder at --out holds: this dataset's files, what an earlier nbody-gen
 * left while writing in place (*.partial, temporaries), and the first name of anything else. */
struct existing {
    int dataset;
    char first_dataset[300], foreign[300];
};

/* 1 if name is one of the twelve files or the sidecar, or a temporary an earlier version of
 * nbody-gen wrote beside one of them ("{file}.partial", "{file}[.partial].tmp.P.N"). */
static int is_ours(const char *name, char names[13][256], int *is_final)
{
    *is_final = 0;
    for (int k = 0; k < 13; k++) {
        size_t l = strlen(names[k]);
        if (strncmp(name, names[k], l) != 0)
            continue;
        const char *rest = name + l;
        if (!*rest) {
            *is_final = 1;
            return 1;
        }
        char partial[300];
        snprintf(partial, sizeof partial, "%s.partial", names[k]);
        if (!strcmp(rest, ".partial") || sim_atomic_is_temp(name, names[k]) ||
            sim_atomic_is_temp(name, partial))
            return 1;
    }
    return 0;
}

/* Look at what the folder holds. */
static void survey(const char *dir, char names[13][256], struct existing *x)
{
    memset(x, 0, sizeof *x);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        int final;
        if (!is_ours(e->d_name, names, &final)) {
            if (!x->foreign[0])
                snprintf(x->foreign, sizeof x->foreign, "%s", e->d_name);
        } else if (final && !x->dataset++) {
            snprintf(x->first_dataset, sizeof x->first_dataset, "%s", e->d_name);
        }
    }
    closedir(d);
}



/* This process's place in an MPI job: rank 0 of 1 without mpirun. */
static struct sim_mpi mpi;

static int run(int argc, char **argv);

/* Join the MPI job if started by mpirun, run, leave the job with one verdict. */
int main(int argc, char **argv)
{
    /* first, before OpenMP makes its threads: every thread then has the signals blocked */
    if (sim_signals_start(on_signal, NULL) != SIM_OK)
        return fail("cannot set up the signal handling thread%s%s", "", "");
    char merr[SIM_ERRLEN];
    if (sim_mpi_init(&mpi, &argc, &argv, merr) != SIM_OK)
        return fail("%s%s", merr, "");
    return sim_mpi_finish(&mpi, run(argc, argv));
}

/* Generate: every rank its share of each split, rank 0 the files. */
static int run(int argc, char **argv)
{
    struct options o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    /* the ranks of a job make one dataset: the same options, but --threads and --json */
    char canon[8400] = "";
    snprintf(canon, sizeof canon, "%d %d %d %d %d %d %ld %ld %ld %u %s/%s", o.kind, o.bodies,
             o.length, o.sample_freq, o.stream, o.force, o.train, o.valid, o.test,
             (unsigned)o.seed, o.tag, o.out);
    if ((rc = sim_mpi_agree(&mpi, 0)))
        return rc;
    if (sim_mpi_differs(&mpi, canon, sizeof canon)) {
        fprintf(stderr, "nbody-gen: rank %d was given other options than rank 0 (only --threads "
                "and --json may differ between ranks)\n", mpi.rank);
        rc = 2;
    }
    if ((rc = sim_mpi_agree(&mpi, rc)))
        return rc;
    long counts[3] = {o.valid, o.test, o.train};
    long total = o.valid + o.test + o.train;
    int n = o.bodies, frames = sim_frame_count(o.length, o.sample_freq);
    int threads = o.threads ? o.threads : omp_get_max_threads();

    /* the twelve names, the sidecar thirteenth */
    static char names[13][256];
    for (int k = 0; k < 12; k++)
        if (sim_dataset_path(names[k], sizeof names[k], NULL, quantities[k % 4], splits[k / 4],
                             o.kind, n, o.tag) != SIM_OK)
            return fail("--tag '%s' is too long%s", o.tag, "");
    snprintf(names[12], sizeof names[12], "%s", SIM_MANIFEST_NAME);

    char err[8400] = ""; /* room for two paths; >= SIM_ERRLEN */
    folder.stage = fault;
    folder.no_exchange = getenv("NBODY_GEN_NO_EXCHANGE") != NULL; /* test hook */
    int st = mpi.rank == 0 ? sim_folder_lock(&folder, o.out, err) : SIM_OK; /* rank 0 writes */
    if (st != SIM_OK) {
        if (st == SIM_EIO)
            return fail("cannot write to output directory: %s%s", err, "");
        return fail("%s%s", err, st == SIM_EEXIST ? "" : " (--out)");
    }
    fault(NULL, "lock");
    if (folder.existed) {
        struct existing x;
        survey(folder.path, names, &x);
        const char *why = NULL;
        char what[4400] = "";
        if (x.foreign[0]) {
            snprintf(what, sizeof what, "%s/%s", folder.path, x.foreign);
            why = "%s is not part of this dataset: nbody-gen publishes a dataset as a whole "
                  "folder (replaced as one); give --out a new or empty folder%s";
        } else if (x.dataset && !o.force) {
            snprintf(what, sizeof what, "%s/%s", folder.path, x.first_dataset);
            why = "%s exists; use --force to overwrite the dataset%s";
        }
        if (why) {
            sim_folder_unlock(&folder);
            return fail(why, what, "");
        }
    }
    if ((rc = sim_mpi_agree(&mpi, 0))) {
        sim_folder_unlock(&folder);
        return rc;
    }

    struct sim_manifest man;
    memset(&man, 0, sizeof man);
    make_run_id(man.run_id, sizeof man.run_id);
    snprintf(man.generator, sizeof man.generator, "nbody-gen");
    snprintf(man.sim, sizeof man.sim, "%s", sim_kind_name(o.kind));
    snprintf(man.tag, sizeof man.tag, "%s", o.tag);
    man.bodies = n;
    man.seed = o.seed;
    man.reference_seeds = o.stream == SIM_STREAM_CLOFNET;
    snprintf(man.stream, sizeof man.stream, "%s", sim_stream_name(o.stream));
    man.generator_version = SIM_GENERATOR_VERSION;
    man.softening = sim_stream_softening(o.stream);
    man.length = o.length;
    man.sample_freq = o.sample_freq;
    man.frames = frames;
    man.counts[0] = o.train;
    man.counts[1] = o.valid;
    man.counts[2] = o.test;

    /* every initial state first, in one serial pass over the stream; laid out in the order
     * of counts[] (valid, test, train), so trajectory offset + t of the loop below is slot
     * offset + t */
    const size_t sd = SIM_STATE_DOUBLES(n);
    double *states = malloc(sizeof *states * sd * (size_t)(total > 0 ? total : 1));
    if (!states) {
        sim_folder_unlock(&folder);
        return fail("out of memory%s%s", "", "");
    }
    const long by_split[3] = {o.train, o.valid, o.test};
    double *const slots[3] = {states + sd * (size_t)(o.valid + o.test), states,
                              states + sd * (size_t)o.valid};
    if (sim_stream_states(o.stream, o.seed, n, frames, by_split, slots) != SIM_OK) {
        free(states);
        sim_folder_unlock(&folder);
        return fail("cannot draw the initial states of --stream %s%s", sim_stream_name(o.stream),
                    "");
    }
    const int unsoftened = sim_stream_softening(o.stream) == 0.0;
    rc = mpi.rank == 0 && sim_folder_begin(&folder, err) != SIM_OK;
    struct progress prog = {.tty = isatty(2), .start = now()};
    long offset = 0;
    for (int s = 0; s < 3 && !rc; s++) {
        long c = counts[s], lo, hi; /* this rank computes [lo, hi); rank 0 holds all c */
        sim_mpi_range(c, mpi.rank, mpi.size, &lo, &hi);
        struct split_bytes b;
        split_bytes(mpi.rank == 0 ? c : hi - lo, frames, n, &b); /* check_sizes passed */
        double *loc = malloc(b.lv), *vel = malloc(b.lv);
        double *edges = malloc(b.edges), *charges = malloc(b.charges);
        prog.split = splits[s];
        if (!loc || !vel || !edges || !charges) {
            snprintf(err, sizeof err, "out of memory for %ld trajectories of %d bodies", c, n);
            rc = 1;
        } else if (sim_generate_states(o.kind, n, o.length, o.sample_freq, unsoftened, hi - lo,
                                       states + sd * (size_t)(offset + lo), threads, loc, vel,
                                       edges, charges, show_progress, &prog) != SIM_OK) {
            snprintf(err, sizeof err, "simulation failed");
            rc = 1;
        }
        /* every rank's share onto rank 0, once all of them have theirs */
        if ((rc = sim_mpi_agree(&mpi, rc)) == 0) {
            const size_t units[4] = {(size_t)frames * 3 * n, (size_t)frames * 3 * n,
                                     (size_t)n * n, (size_t)n};
            double *const arrays[4] = {loc, vel, edges, charges};
            for (int qn = 0; qn < 4 && !rc; qn++)
                rc = sim_mpi_gather(&mpi, arrays[qn], arrays[qn], c, units[qn], err) != SIM_OK;
        }
        int64_t shape_lv[4] = {c, frames, 3, n}, shape_e[3] = {c, n, n}, shape_c[3] = {c, n, 1};
        const double *data[4] = {loc, vel, edges, charges};
        const int64_t *shapes[4] = {shape_lv, shape_lv, shape_e, shape_c};
        const int ndims[4] = {4, 4, 3, 3};
        for (int qn = 0; qn < 4 && !rc && mpi.rank == 0; qn++) {
            const int k = 4 * s + qn;
            struct sim_manifest_file *mf = &man.file[man.nfiles];
            char path[4800];
            snprintf(path, sizeof path, "%s/%s", folder.tmp, names[k]);
            snprintf(mf->name, sizeof mf->name, "%s", names[k]);
            /* into the private folder, which the signal function removes whole, never while a
             * file in it is being written */
            sim_signals_hold();
            struct stat sb;
            if (sim_npy_write_hashed(path, SIM_NPY_F8, ndims[qn], shapes[qn], data[qn],
                                     mf->sha256, err) != SIM_OK)
                rc = 1;
            else if (stat(path, &sb) != 0) {
                snprintf(err, sizeof err, "%s: %s", path, strerror(errno));
                rc = 1;
            } else {
                mf->bytes = (int64_t)sb.st_size;
                man.nfiles++;
            }
            sim_signals_release();
            if (!rc) {
                char stage[16];
                snprintf(stage, sizeof stage, "write-%d", man.nfiles);
                fault(NULL, stage);
            }
        }
        offset += c;
        free(loc);
        free(vel);
        free(edges);
        free(charges);
    }
    free(states);
    if (prog.tty)
        fprintf(stderr, "\r\033[K");
    if (!rc && mpi.rank == 0) {
        sim_signals_hold();
        rc = sim_manifest_write(folder.tmp, &man, err) != SIM_OK;
        sim_signals_release();
        if (!rc)
            fault(NULL, "manifest");
    }
    if (!rc && mpi.rank == 0)
        rc = sim_folder_publish(&folder, err) != SIM_OK;
    if (rc) {
        sim_signals_hold();
        sim_folder_abort(&folder);
        sim_signals_release();
        if (sim_mpi_reports(&mpi)) /* not when another rank failed: it says why */
            fprintf(stderr, "nbody-gen: %s\n", err);
        return 1;
    }
    sim_folder_unlock(&folder);
    double secs = now() - prog.start;
    if (o.json) {
        printf("{\"sim\": \"%s\", \"bodies\": %d, \"train\": %ld, \"valid\": %ld, \"test\": %ld, "
               "\"frames\": %d, \"length\": %d, \"sample_freq\": %d, \"seed\": %u, "
               "\"stream\": \"%s\", \"reference_seeds\": %s, \"threads\": %d, \"seconds\": %.3f, "
               "\"trajectories_per_second\": %.1f, \"run_id\": \"%s\", \"out\": ",
               sim_kind_name(o.kind), n, o.train, o.valid, o.test, frames, o.length, o.sample_freq,
               (unsigned)o.seed, sim_stream_name(o.stream),
               o.stream == SIM_STREAM_CLOFNET ? "true" : "false", threads, secs, total / secs,
               man.run_id);
        sim_json_string(stdout, o.out);
        printf("}\n");
    } else {
        fprintf(stderr, "nbody-gen: %ld trajectories (%s, %d bodies, %d frames) in %.2f s, %.0f/s, "
                        "%d threads -> %s/*_%s%d_initvel1%s.npy\n",
                total, sim_kind_name(o.kind), n, frames, secs, total / secs, threads, o.out,
                sim_kind_name(o.kind), n, o.tag);
    }
    return 0;
}
