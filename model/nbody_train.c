/* nbody_train.c: nbody-train, trains ClofNet on an N-body dataset with the paper's protocol
 * by default (a thin main over cn_train: options, progress lines, signals, exit codes). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "clofnet.h"
#include "sim.h"
#include "sim_mpi.h"

static volatile sig_atomic_t g_interrupt;
/* This process's place in an MPI job (rank 0 of 1 without mpirun), and a bad option seen. */
static struct sim_mpi g_mpi;
static int g_bad_option;

/* Ctrl-C, kill or hang-up (on the signal thread of sim_signals_start): stop at the next batch,
 * keeping the last completed epoch; the files being written are finished, never cut. */
static void on_signal(int sig, void *user)
{
    (void)sig;
    (void)user;
    g_interrupt = 1;
}

/* Print the usage. */
static void usage(FILE *f)
{
    struct cn_train_opts o;
    cn_train_opts_default(&o);
    fprintf(f,
            "usage: nbody-train --data DIR --out CKPT [options]\n"
            "Train ClofNet on the N-body dataset in DIR (the .npy files of nbody-gen or the\n"
            "reference generator). Writes CKPT (model of the best validation MSE), CKPT.state\n"
            "(full state after the last completed epoch, for --resume) and CKPT.csv (history).\n"
            "\n"
            "  --data DIR           dataset directory (exactly one dataset in it)\n"
            "  --out CKPT           output checkpoint\n"
            "  --resume             continue from CKPT.state with its stored options\n"
            "  --arch A             clofnet or egnn (EGNN_vel, the paper's baseline) [clofnet]\n"
            "  --task T             position (frame 30 -> 40) or step (frame k -> k+1) [position]\n"
            "  --epochs N           [%d]\n"
            "  --batch N            graphs per batch, last partial batch dropped [%d]\n"
            "  --max-train N        training trajectories used [%d]\n"
            "  --lr X               AdamW learning rate [%g]\n"
            "  --weight-decay X     AdamW decoupled weight decay [%g]\n"
            "  --gamma X            StepLR factor [%g]\n"
            "  --lr-step N          StepLR period in epochs, 0 = epochs/8 [0]\n"
            "  --val-every N        validate and test every N epochs [%d]\n"
            "  --seed N             initialisation and shuffling seed [%u]\n"
            "  --init CKPT          start from CKPT's weights instead (a fine-tune: the same\n"
            "                       network), with a fresh optimizer and schedule\n"
            "  --threads N          threads splitting each batch, 0 = min(2, cores) [0]; under\n"
            "                       mpirun, per rank: the batch's shares are split over ranks\n"
            "                       and threads, and the result is the same bits\n"
            "  --hidden N           hidden width [%d]\n"
            "  --layers N           message-passing layers [%d]\n"
            "  --pairs-per-epoch N  step task: training pairs drawn per epoch, 0 = all [%ld]\n"
            "  --eval-pairs N       step task: validation/test pairs, 0 = all [%ld]\n"
            "  --stop-after N       stop after N epochs of this run (resume later) [0 = never]\n"
            "  --reflect            mirror half the training samples (z -> -z): data augmentation\n"
            "  --no-field           step task, static/dynamic data: leave the field input out (ablation)\n"
            "  --field-input        position task, static/dynamic data: the lab-frame field as an\n"
            "                       input, as the step models have it (ClofNet; not in the paper)\n"
            "  --cosine             cosine learning-rate decay to --lr-min instead of StepLR\n"
            "  --lr-min X           final learning rate of --cosine [0]\n"
            "  --ema BETA           validate and save a moving average of the weights [0 = off]\n"
            "  --warmup N           raise the learning rate linearly over the first N epochs,\n"
            "                       batch by batch [0]\n"
            "  --one-cycle          one-cycle schedule (PyTorch's OneCycleLR defaults, --lr its\n"
            "                       peak) instead of StepLR or --cosine\n"
            "  --clip X             clip the gradient's global norm to X before each step; the\n"
            "                       history's 'clipped' column is the fraction clipped [0 = off]\n"
            "  --reflect-average    train and save the mirror-averaged model (f(x) + R f(R x))/2:\n"
            "                       exactly E(3)-equivariant; charged setting, twice the cost\n"
            "rollout-aware training of step models (--task step):\n"
            "  --unroll K           chain K learned steps per sample and backpropagate through\n"
            "                       all of them (the loss is their mean) [1]\n"
            "  --pushforward        with --unroll K: only the last step is a loss and gets a\n"
            "                       gradient (the pushforward trick)\n"
            "  --unroll-every E     curriculum: one more chained step every E epochs, up to K\n"
            "  --input-noise SIGMA  Gaussian noise on the input positions and velocities, the\n"
            "                       targets left true (GNS) [0]\n"
            "  --project-momentum   make the total momentum change as the physics says, by\n"
            "                       construction (charged: kept; static: changed by g t;\n"
            "                       dynamic: by the magnetic impulse of the step's motion)\n"
            "  --unroll-first W     the first chained step's weight in the mean over the\n"
            "                       chain (the others weigh 1) [1]\n"
            "  --energy-weight W    add W times a Huber penalty of each step's energy error\n"
            "                       (prediction against target) to the loss [0 = off]\n"
            "  --val-rollout N      validate and select by free rollouts of N validation\n"
            "                       trajectories (position MSE over horizons 1..20 from frames\n"
            "                       0, 10, 20) instead of the one-step loss [0 = off]\n"
            "  --quiet              no per-epoch lines\n"
            "  --help               this text\n",
            o.epochs, o.batch, o.max_train, o.lr, o.weight_decay, o.gamma, o.val_every, o.seed,
            o.hidden, o.layers, o.pairs_per_epoch, o.eval_pairs);
}

/* Parse an integer option in [lo, hi], or print the problem and set g_bad_option (not exit:
 * under mpirun every rank must reach its agreement). */
static long parse_int(const char *name, const char *s, long lo, long hi)
{
    long v;
    if (sim_parse_long(s, lo, hi, &v) != SIM_OK) {
        fprintf(stderr, "nbody-train: --%s '%s' must be an integer in %ld..%ld\n", name, s, lo, hi);
        g_bad_option = 1;
        return lo;
    }
    return v;
}

/* Parse a finite number option, or print the problem and set g_bad_option. */
static double parse_real(const char *name, const char *s)
{
    double v;
    if (sim_parse_double(s, &v) != SIM_OK) {
        fprintf(stderr, "nbody-train: --%s '%s' is not a number\n", name, s);
        g_bad_option = 1;
        return 0;
    }
    return v;
}

/* The trainer's communicator over the MPI job (struct cn_comm): status agreement in the
 * library's terms, CN_EIO for another rank's status 0 (it left without failing). */
static int comm_agree(void *ctx, int status)
{
    int st = sim_mpi_agree(ctx, status);
    return st == 0 ? CN_OK : status ? status : st > 0 && st <= CN_EINTR ? st : CN_EIO;
}

struct progress_ctx {
    int quiet;
};

/* One line per epoch. */
static void progress(void *user, const struct cn_epoch_record *r, int epochs, double best_val,
                     double best_test, int best_epoch)
{
    const struct progress_ctx *p = user;
    if (p->quiet)
        return;
    printf("epoch %4d/%d  train %.6f", r->epoch, epochs, r->train_loss);
    if (!isnan(r->val_rollout))
        printf("  val %.6f  rollout %.6f  test %.6f  (best rollout %.6f test %.6f @%d)",
               r->val_mse, r->val_rollout, r->test_mse, best_val, best_test, best_epoch);
    else if (!isnan(r->val_mse))
        printf("  val %.6f  test %.6f  (best val %.6f test %.6f @%d)", r->val_mse, r->test_mse,
               best_val, best_test, best_epoch);
    if (!isnan(r->clipped))
        printf("  clipped %.0f%%", 100 * r->clipped);
    printf("  lr %.6g  %.2f s\n", r->lr, r->seconds);
    fflush(stdout);
}

static int run(int argc, char **argv);

/* Join the MPI job if started by mpirun, run, leave the job with one verdict. */
int main(int argc, char **argv)
{
    cn_blas_reexec(argv); /* returns only when the BLAS kernels fit the CPU, or on failure */
    cn_fp_policy();       /* before any thread: subnormal floats flushed to zero */
    /* before any thread exists (OpenMP, BLAS, MPI), so that every thread has the signals
     * blocked */
    if (sim_signals_start(on_signal, NULL) != SIM_OK) {
        fprintf(stderr, "nbody-train: cannot set up the signal handling thread\n");
        return 1;
    }
    char merr[SIM_ERRLEN];
    if (sim_mpi_init(&g_mpi, &argc, &argv, merr) != SIM_OK) {
        fprintf(stderr, "nbody-train: %s\n", merr);
        return 2;
    }
    return sim_mpi_finish(&g_mpi, run(argc, argv));
}

/* Parse options, load the dataset, train, report. */
static int run(int argc, char **argv)
{
    struct cn_train_opts o;
    cn_train_opts_default(&o);
    const char *data = NULL, *out = NULL;
    int resume = 0, arch_given = 0;
    struct progress_ctx pc = {0};
    static const struct option lo[] = {
        {"data", required_argument, 0, 'd'},    {"out", required_argument, 0, 'o'},
        {"resume", no_argument, 0, 'R'},        {"task", required_argument, 0, 'T'},
        {"arch", required_argument, 0, 'a'},     {"field-input", no_argument, 0, 'f'},
        {"epochs", required_argument, 0, 'e'},  {"batch", required_argument, 0, 'b'},
        {"max-train", required_argument, 0, 'm'}, {"max-samples", required_argument, 0, 'm'},
        {"lr", required_argument, 0, 'l'},      {"weight-decay", required_argument, 0, 'w'},
        {"gamma", required_argument, 0, 'g'},   {"lr-step", required_argument, 0, 's'},
        {"val-every", required_argument, 0, 'v'}, {"seed", required_argument, 0, 'S'},
        {"threads", required_argument, 0, 'j'}, {"hidden", required_argument, 0, 'H'},
        {"layers", required_argument, 0, 'L'},  {"pairs-per-epoch", required_argument, 0, 'p'},
        {"eval-pairs", required_argument, 0, 'P'}, {"stop-after", required_argument, 0, 'X'},
        {"no-field", no_argument, 0, 'Z'},      {"reflect", no_argument, 0, 'F'},       {"cosine", no_argument, 0, 'C'},
        {"lr-min", required_argument, 0, 'N'},  {"ema", required_argument, 0, 'A'},
        {"unroll", required_argument, 0, 'K'},  {"pushforward", no_argument, 0, 'U'},
        {"input-noise", required_argument, 0, 'I'}, {"project-momentum", no_argument, 0, 'M'},
        {"val-rollout", required_argument, 0, 'V'},  {"unroll-every", required_argument, 0, 'E'},
        {"warmup", required_argument, 0, 'W'},  {"one-cycle", no_argument, 0, 'O'},
        {"clip", required_argument, 0, 'c'},    {"reflect-average", no_argument, 0, 'r'},
        {"energy-weight", required_argument, 0, 'Y'}, {"unroll-first", required_argument, 0, 'J'},
        {"init", required_argument, 0, 'i'},    {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int c;
    while (!g_bad_option && (c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'o': out = optarg; break;
        case 'R': resume = 1; break;
        case 'a':
            arch_given = 1;
            if ((o.arch = cn_arch_parse(optarg)) < 0) {
                fprintf(stderr, "nbody-train: --arch '%s' must be clofnet or egnn\n", optarg);
                return 2;
            }
            break;
        case 'T':
            if (strcmp(optarg, "position") == 0)
                o.task = CN_TASK_POSITION;
            else if (strcmp(optarg, "step") == 0)
                o.task = CN_TASK_STEP;
            else {
                fprintf(stderr, "nbody-train: --task '%s' must be position or step\n", optarg);
                return 2;
            }
            break;
        case 'e': o.epochs = (int)parse_int("epochs", optarg, 1, 1000000); break;
        case 'b': o.batch = (int)parse_int("batch", optarg, 1, 65536); break;
        case 'm': o.max_train = (int)parse_int("max-train", optarg, 1, INT_MAX); break;
        case 'l': o.lr = parse_real("lr", optarg); break;
        case 'w': o.weight_decay = parse_real("weight-decay", optarg); break;
        case 'g': o.gamma = parse_real("gamma", optarg); break;
        case 's': o.lr_step = (int)parse_int("lr-step", optarg, 0, 1000000); break;
        case 'v': o.val_every = (int)parse_int("val-every", optarg, 1, 1000000); break;
        case 'S': o.seed = (uint32_t)parse_int("seed", optarg, 0, 4294967295L); break;
        case 'j': o.threads = (int)parse_int("threads", optarg, 0, 64); break;
        case 'H': o.hidden = (int)parse_int("hidden", optarg, 2, CN_MAX_HIDDEN); break;
        case 'L': o.layers = (int)parse_int("layers", optarg, 1, CN_MAX_LAYERS); break;
        case 'p': o.pairs_per_epoch = parse_int("pairs-per-epoch", optarg, 0, LONG_MAX); break;
        case 'P': o.eval_pairs = parse_int("eval-pairs", optarg, 0, LONG_MAX); break;
        case 'X': o.stop_after = (int)parse_int("stop-after", optarg, 0, 1000000); break;
        case 'F': o.reflect = 1; break;
        case 'Z': o.no_field = 1; break;
        case 'f': o.field_input = 1; break;
        case 'C': o.cosine = 1; break;
        case 'N': o.lr_min = parse_real("lr-min", optarg); break;
        case 'A': o.ema = parse_real("ema", optarg); break;
        case 'K': o.unroll = (int)parse_int("unroll", optarg, 1, CN_MAX_UNROLL); break;
        case 'U': o.pushforward = 1; break;
        case 'E': o.unroll_every = (int)parse_int("unroll-every", optarg, 0, 1000000); break;
        case 'I': o.input_noise = parse_real("input-noise", optarg); break;
        case 'Y': o.energy_weight = parse_real("energy-weight", optarg); break;
        case 'J': o.unroll_first = parse_real("unroll-first", optarg); break;
        case 'M': o.momentum = 1; break;
        case 'V': o.val_rollout = (int)parse_int("val-rollout", optarg, 0, INT_MAX); break;
        case 'W': o.warmup = (int)parse_int("warmup", optarg, 0, 1000000); break;
        case 'O': o.one_cycle = 1; break;
        case 'c': o.clip = parse_real("clip", optarg); break;
        case 'r': o.reflect_avg = 1; break;
        case 'i': o.init = optarg; break;
        case 'q': pc.quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (g_bad_option)
        return 2;
    if (optind < argc) {
        fprintf(stderr, "nbody-train: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!data || !out) {
        fprintf(stderr, "nbody-train: --data DIR and --out CKPT are required (see --help)\n");
        return 2;
    }
    if (o.init && resume) {
        fprintf(stderr, "nbody-train: --init starts a run from a checkpoint; --resume continues "
                "one from its own state (give one of them)\n");
        return 2;
    }
    if (o.hidden % 2) {
        fprintf(stderr, "nbody-train: --hidden %d must be even\n", o.hidden);
        return 2;
    }
    /* the ranks of a job must run one training: the same options but --threads */
    {
        char canon[12288] = "";
        int len = snprintf(canon, sizeof canon, "%s\n%s\n%d", data, out, resume);
        for (int k = 1; k < argc && len < (int)sizeof canon; k++)
            if (strncmp(argv[k], "--threads", 9) != 0 && strncmp(argv[k - 1], "--threads", 10) != 0)
                len += snprintf(canon + len, sizeof canon - (size_t)len, "\n%s", argv[k]);
        if ((c = sim_mpi_agree(&g_mpi, 0)))
            return c;
        int differs = sim_mpi_differs(&g_mpi, canon, sizeof canon);
        if (differs)
            fprintf(stderr, "nbody-train: rank %d was given other options than rank 0 (only "
                    "--threads may differ between ranks)\n", g_mpi.rank);
        if ((c = sim_mpi_agree(&g_mpi, differs ? 2 : 0)))
            return c;
    }
    /* fail before loading data when the output cannot be written (rank 0 writes it) */
    if (g_mpi.rank == 0) {
        char probe[4200];
        snprintf(probe, sizeof probe, "%s.tmp.%ld", out, (long)getpid());
        int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0) {
            fprintf(stderr, "nbody-train: cannot write %s: %s\n", out, strerror(errno));
            return 1;
        }
        close(fd);
        unlink(probe);
    }
    if ((c = sim_mpi_agree(&g_mpi, 0)))
        return c;

    char err[CN_ERRLEN];
    if (resume) {
        /* the data must be loaded as the run being resumed loaded it */
        struct cn_train_opts stored;
        if (cn_train_stored_opts(out, &stored, err)) {
            fprintf(stderr, "nbody-train: %s\n", err);
            return 1;
        }
        if (arch_given && stored.arch != o.arch) {
            fprintf(stderr, "nbody-train: --arch %s given, but %s.state was trained with --arch %s; resume it "
                    "without --arch, or train an %s model under another --out\n",
                    cn_arch_name(o.arch), out, cn_arch_name(stored.arch), cn_arch_name(o.arch));
            return 1;
        }
        int threads = o.threads, stop_after = o.stop_after;
        o = stored;
        o.threads = threads;
        o.stop_after = stop_after;
    }
    struct cn_data d;
    int st = cn_data_load(data, CN_SPLIT_TRAIN | CN_SPLIT_VALID | CN_SPLIT_TEST, o.max_train, &d,
                          err);
    if (st) {
        fprintf(stderr, "nbody-train: %s\n", err);
        return 1;
    }
    if (!pc.quiet) {
        struct cn_config cfg;
        cn_config_default(&cfg, o.task);
        cfg.hidden = o.hidden;
        cfg.layers = o.layers;
        cfg.has_field = (o.task == CN_TASK_STEP || o.field_input) && d.kind != SIM_CHARGED &&
                        !o.no_field && o.arch == CN_ARCH_CLOFNET;
        cfg.arch = o.arch;
        printf("dataset %s/*%s: %s, %d bodies, %d/%d/%d trajectories of %d frames\n", data,
               d.suffix, sim_kind_name(d.kind), d.n, d.train.count, d.valid.count, d.test.count,
               d.train.frames);
        if (resume)
            printf("resuming from %s.state\n", out);
        else
            printf("%s %s task, hidden %d, %d layers: %ld parameters%s%s\n",
                   o.arch == CN_ARCH_EGNN ? "EGNN" : "ClofNet",
                   o.task == CN_TASK_STEP ? "step" : "position", o.hidden, o.layers,
                   cn_param_count(&cfg), o.init ? ", starting from the weights of " : "",
                   o.init ? o.init : "");
        printf("OpenBLAS kernels %s\n", cn_blas_core());
        fflush(stdout);
    }
    if (g_interrupt) {
        cn_data_free(&d);
        fprintf(stderr, "nbody-train: interrupted before the first epoch; nothing written\n");
        return 130;
    }

    struct cn_train_result res;
    const struct cn_comm comm = {g_mpi.rank, g_mpi.size, &g_mpi, comm_agree, sim_mpi_alltoallv,
                                 sim_mpi_allgatherv};
    st = cn_train_dist(&o, &d, out, resume, &g_interrupt, progress, &pc, &res, &comm, err);
    cn_data_free(&d);
    if (st == CN_EINTR) {
        if (sim_mpi_reports(&g_mpi))
            fprintf(stderr, "nbody-train: %s; continue with --resume\n", err);
        return 130;
    }
    if (st) {
        if (sim_mpi_reports(&g_mpi))
            fprintf(stderr, "nbody-train: %s\n", err);
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("parameters %ld; epochs done %d; best validation MSE %.6f at epoch %d; test MSE at "
           "that epoch %.6f; peak RSS %.1f MiB\n", res.n_params, res.epochs_done, res.best_val,
           res.best_epoch, res.best_test, ru.ru_maxrss / 1024.0);
    return 0;
}
