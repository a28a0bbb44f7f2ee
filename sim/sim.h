/* sim.h: charged-particle N-body simulator of the ClofNet/EGNN benchmark, a random
 * stream bit-compatible with NumPy's legacy RandomState, and .npy file I/O. */
#ifndef SIM_SIM_H
#define SIM_SIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---------------------------------------------------------------- errors */

/* Status codes returned by every fallible function of this library. */
enum sim_status {
    SIM_OK = 0,
    SIM_EARG = 1,    /* invalid argument */
    SIM_ENOMEM = 2,  /* allocation failed */
    SIM_EIO = 3,     /* open, read, write or rename failed */
    SIM_EFORMAT = 4, /* a file is not what it must be */
    SIM_EEXIST = 5,  /* refusing to overwrite */
};

/* Size of the message buffers the functions below fill on error. */
#define SIM_ERRLEN 512

/* Short name of a status code. */
const char *sim_strerror(int status);

/* --------------------------------------------------------------- physics */

/* The three force settings of the benchmark (SPEC §1). */
enum sim_kind {
    SIM_CHARGED = 0, /* ES: Coulomb only */
    SIM_STATIC = 1,  /* G+ES: Coulomb + uniform field SIM_GRAVITY along +z */
    SIM_DYNAMIC = 2, /* L+ES: Coulomb + q (v x B), B = (SIM_BFIELD, SIM_BFIELD, SIM_BFIELD) */
};

#define SIM_DT 0.001         /* Time step. */
#define SIM_SOFTENING 1e-6   /* Added to squared distances. */
#define SIM_MAX_F 100.0      /* Every force component clamped to [-SIM_MAX_F, SIM_MAX_F] (0.1 / dt). */
#define SIM_GRAVITY 0.098    /* Static setting: uniform acceleration along +z, not charge-weighted. */
#define SIM_BFIELD 0.5       /* Dynamic setting: each component of the magnetic field B. */
#define SIM_BOX 5.0          /* Half-size of the box initial positions are reflected into. */
#define SIM_VEL_NORM 0.5     /* Norm of every initial velocity. */
#define SIM_LOC_STD_5 1.0    /* Std of initial positions for 5 bodies; scales as (n/5)^(1/3). */
#define SIM_SEED_RANGE 1000000 /* Per-trajectory seeds are drawn from [0, SIM_SEED_RANGE). */

/* Parse "charged" / "static" / "dynamic"; returns -1 if unknown. */
int sim_kind_parse(const char *name);
/* Name of a kind ("charged", ...), or NULL if out of range. */
const char *sim_kind_name(int kind);

/* A system of n unit-mass bodies. Arrays are axis-major, [3][n], as in the
 * reference generator and the dataset files: x[c * n + i] is coordinate c of body i. */
struct sim_system {
    int kind;  /* enum sim_kind */
    int n;     /* Number of bodies, >= 2. */
    double *x; /* Positions [3][n]. */
    double *v; /* Velocities [3][n]. */
    double *q; /* Charges [n], -1 or +1. */
    double *f; /* Scratch: force of the last evaluation [3][n]. */
    double *work; /* Scratch of sim_forces: SIM_FORCES_WORK(n) doubles. */
    int unsoftened; /* 1: squared distances without SIM_SOFTENING, as the EGNN generator
                     * computes them (the egnn stream); 0 (default, also when zeroed): with it. */
};

/* Allocate a zeroed system of n bodies; returns SIM_OK, SIM_EARG or SIM_ENOMEM. */
int sim_system_init(struct sim_system *s, int kind, int n);
void sim_system_free(struct sim_system *s);

/* Doubles of scratch sim_forces needs for n bodies. */
#define SIM_FORCES_WORK(n) ((size_t)(n) * (size_t)(n) + (size_t)(n))

/* Force on every body, f [3][n], exactly as the reference computes it: pairwise
 * Coulomb with squared distance |x_i|^2 + |x_j|^2 - 2 x_i.x_j + SIM_SOFTENING,
 * plus the setting's field, then every component clamped to +-SIM_MAX_F.
 * The dynamic setting's q (v x B) term uses the velocity v passed in, which in
 * the reference scheme is the velocity half a kick behind x (see sim_run).
 * work: SIM_FORCES_WORK(n) doubles of scratch, so the step loop never allocates. */
void sim_forces(int kind, int n, const double *x, const double *v, const double *q, double *f,
                double *work);
/* sim_forces with the softening added to every squared distance given: SIM_SOFTENING (what
 * sim_forces uses) or 0, the EGNN generator's. */
void sim_forces_softened(int kind, int n, double softening, const double *x, const double *v,
                         const double *q, double *f, double *work);

/* Energy diagnostics: kinetic energy 0.5 sum |v|^2, Coulomb potential
 * sum_{i<j} q_i q_j / sqrt(d_ij^2 + SIM_SOFTENING), and for the static setting
 * -SIM_GRAVITY sum z_i. The v x B force does no work and adds no term. */
double sim_kinetic_energy(int n, const double *v);
double sim_potential_energy(int kind, int n, const double *x, const double *q);
/* Total momentum (unit masses) into p[3]. */
void sim_momentum(int n, const double *v, double p[3]);

/* Number of frames saved for a trajectory of `length` steps sampled every
 * `sample_freq` steps: length / sample_freq - 1 (49 for 5000 / 100). */
int sim_frame_count(int length, int sample_freq);

/* One kick: v += SIM_DT * F(x, v). Leaves the force in s->f. */
void sim_kick(struct sim_system *s);
/* One drift: x += SIM_DT * v. */
void sim_drift(struct sim_system *s);

/* Run the reference scheme from the state in s:
 *   kick; for i = 1 .. length-1: drift; if i % sample_freq == 0 save (x, v); kick.
 * Frame k (k = 0 .. sim_frame_count-1) holds the state after the drift of step
 * sample_freq * (k + 1); its velocity is half a kick behind its position.
 * loc and vel receive [frames][3][n] (either may be NULL). On return s holds
 * the final state. length must be a positive multiple of sample_freq. */
int sim_run(struct sim_system *s, int length, int sample_freq, double *loc, double *vel);

/* Advance a running system by `steps` drift-kick pairs, the loop body of sim_run:
 * after a kick has been applied, drift then kick. Used by the viewer and rollouts
 * to continue the reference scheme one dataset frame (sample_freq steps) at a time. */
void sim_advance(struct sim_system *s, int steps);

/* ------------------------------------------------------ random stream */

/* NumPy's legacy RandomState: MT19937 plus the cached second Gaussian of its
 * polar Box-Muller. Same seed, same numbers, bit for bit. */
struct sim_rng {
    uint32_t mt[624];
    int pos;
    int has_gauss;
    double gauss;
};

/* RandomState.seed(seed) for an integer seed in [0, 2^32). */
void sim_rng_seed(struct sim_rng *r, uint32_t seed);
/* Next raw 32-bit output of MT19937. */
uint32_t sim_rng_u32(struct sim_rng *r);
/* random_sample(): a double in [0, 1) from two 32-bit outputs (53 bits). */
double sim_rng_random_sample(struct sim_rng *r);
/* randn(): standard normal, legacy polar method; returns the cached value when there is one. */
double sim_rng_randn(struct sim_rng *r);
/* The legacy bounded draw behind randint(0, max + 1) and choice(range(max + 1)):
 * masked rejection sampling on 32-bit outputs (64-bit when max >= 2^32). */
uint64_t sim_rng_bounded(struct sim_rng *r, uint64_t max);
/* choice(k, size=count, p=p): cdf = cumsum(p) / sum(p), one random_sample per
 * draw, index = searchsorted(cdf, u, side='right'). out[count]. */
void sim_rng_choice_p(struct sim_rng *r, const double *p, int k, int count, int *out);

/* Initial state of a trajectory from its own seed, as the reference draws it:
 * seed(s); choice([-1, 0, 1], size=(n, 1), p=[1/2, 0, 1/2]) for q; randn(3, n) *
 * loc_std for x; randn(3, n) rescaled per body to norm SIM_VEL_NORM for v; then
 * positions beyond +-SIM_BOX reflected once. */
void sim_initial_state(struct sim_system *s, uint32_t seed);
/* The same draws (charges, positions, velocities, reflection) from r as it stands, without
 * seeding it: the serial ClofNet script and the EGNN generator draw from one shared stream. */
void sim_initial_state_rng(struct sim_system *s, struct sim_rng *r);
/* count randn() draws, thrown away: what the EGNN generator's zero-variance observation noise
 * does to the stream (the cached second Gaussian included). */
void sim_rng_skip_randn(struct sim_rng *r, size_t count);

/* Per-trajectory seeds from a global seed.
 * reference: seed(global), then one choice(range(SIM_SEED_RANGE)) per trajectory;
 *   may repeat seeds, as the reference does.
 * distinct (reference = 0): the same stream with repeated seeds skipped, so the
 *   first seeds agree with the reference and no trajectory appears twice.
 *   count must be <= SIM_SEED_RANGE. */
int sim_seeds(uint32_t global_seed, int count, int reference, uint32_t *seeds);

/* ------------------------------------------------ published seed streams */

/* The ways published datasets drew their random numbers (SPEC §1, "The three published seed
 * streams"), plus this project's default. Same stream, global seed and counts: same initial
 * states, bit for bit, as the generator named. */
enum sim_stream {
    SIM_STREAM_DISTINCT = 0,       /* default: clofnet's seeds with repeats skipped (no
                                    * trajectory twice; at most SIM_SEED_RANGE trajectories) */
    SIM_STREAM_CLOFNET = 1,        /* mouthful/ClofNet generate_dataset.py as published (worker
                                    * pool): every seed drawn first from the untouched global
                                    * stream, order valid, test, train; repeats possible */
    SIM_STREAM_CLOFNET_SERIAL = 2, /* the same script with multiprocess=False: the trajectory
                                    * reseeds the one global stream, so each next seed is drawn
                                    * from the state the previous trajectory's draws left */
    SIM_STREAM_EGNN = 3,           /* vgsatorras/egnn generate_dataset.py (charged only): seed
                                    * once, order train, valid, test; per trajectory charges,
                                    * positions, velocities, then 2 x frames x 3 x n noise draws;
                                    * its physics has no softening */
};
#define SIM_STREAM_COUNT 4

/* The splits, in the index order of the counts and states below. */
enum sim_split { SIM_SPLIT_TRAIN = 0, SIM_SPLIT_VALID = 1, SIM_SPLIT_TEST = 2 };

/* "distinct", "clofnet", "clofnet-serial", "egnn" -> enum sim_stream; -1 if unknown. */
int sim_stream_parse(const char *name);
/* Name of a stream, or NULL if out of range. */
const char *sim_stream_name(int stream);
/* 1 if the stream's generator has the setting kind (egnn: charged only). */
int sim_stream_has_kind(int stream, int kind);
/* Softening of the stream's physics: SIM_SOFTENING, or 0 for egnn. */
double sim_stream_softening(int stream);
/* The order in which the stream's generator makes the splits: three enum sim_split. */
const int *sim_stream_order(int stream);

/* Doubles of one trajectory's initial state: q [n], then x [3][n], then v [3][n]. */
#define SIM_STATE_DOUBLES(n) (7 * (size_t)(n))

/* Initial states of a dataset of n bodies as the stream draws them from global_seed:
 * counts[3] trajectories per split (enum sim_split), states[s] receiving counts[s] x
 * SIM_STATE_DOUBLES(n) for split s. frames (saved frames per trajectory) sizes the egnn
 * stream's noise draws. A serial pass, cheap next to the simulation. SIM_OK, SIM_EARG (bad
 * stream, n < 2, negative count, frames < 1 for egnn, distinct beyond SIM_SEED_RANGE), or
 * SIM_ENOMEM. */
int sim_stream_states(int stream, uint32_t global_seed, int n, int frames, const long counts[3],
                      double *const states[3]);

/* ------------------------------------------------------------ .npy I/O */

enum sim_npy_dtype { SIM_NPY_F8 = 0, SIM_NPY_F4 = 1 };
#define SIM_NPY_MAXDIM 8

/* An array read from a .npy file. Data is always converted to double. */
struct sim_npy {
    int dtype;                       /* enum sim_npy_dtype of the file */
    int ndim;
    int64_t shape[SIM_NPY_MAXDIM];
    size_t count;                    /* product of shape */
    double *data;                    /* count values, C order */
};

/* Read a .npy file (format 1.0 or 2.0, '<f8' or '<f4', C order). Anything else
 * (bad magic, malformed header, big-endian, Fortran order, other dtypes,
 * truncated data) returns SIM_EFORMAT with a message saying what was found. */
int sim_npy_read(const char *path, struct sim_npy *out, char err[SIM_ERRLEN]);
void sim_npy_free(struct sim_npy *a);
/* Write data (count = product of shape, given as doubles) as a .npy file of the
 * given dtype, format 1.0 (2.0 if the header needs it). Written through sim_atomic,
 * so the path never holds a partial file. */
int sim_npy_write(const char *path, int dtype, int ndim, const int64_t *shape,
                  const double *data, char err[SIM_ERRLEN]);
/* sim_npy_read of a .npy image held in memory (len bytes at buf, e.g. one entry of a .npz),
 * with every check sim_npy_read makes; name stands for the file in messages. */
int sim_npy_parse(const void *buf, size_t len, const char *name, struct sim_npy *out,
                  char err[SIM_ERRLEN]);
/* The header numpy.save writes for an array (magic, version, dict padded to 64 bytes) into
 * buf: its length, or 0 when it needs more than cap bytes or the arguments are invalid. */
size_t sim_npy_header(char *buf, size_t cap, int dtype, int ndim, const int64_t *shape);

/* ------------------------------------------------------ atomic files */

/* A file being written under a temporary name beside its final path, so that the path
 * never holds a partial file. The temporary is "{path}.tmp.{pid}.{counter}" (counter unique
 * across the threads of a process), created with O_CREAT|O_EXCL and mode 0666, so the
 * umask applies as it does for fopen and the umask is never touched. Every writer of the
 * project (.npy, PNG, checkpoints, resume records, CSV) goes through it. */
struct sim_atomic {
    FILE *f;         /* the open temporary: write through it (or sim_atomic_write) */
    char tmp[4200];  /* temporary name, "" when none exists */
    char path[4096]; /* final name */
    int error;       /* errno of the first failed sim_atomic_write, 0 if none */
};

/* Create the temporary of path. SIM_EARG (no or too long path) or SIM_EIO with a message
 * naming path and the system's reason; nothing is left behind on failure. */
int sim_atomic_open(struct sim_atomic *a, const char *path, char err[SIM_ERRLEN]);
/* fwrite len bytes; 0, or -1 with the failure's errno kept for sim_atomic_commit. */
int sim_atomic_write(struct sim_atomic *a, const void *data, size_t len);
/* fflush, fsync (EINVAL/EROFS tolerated), fclose, rename onto the final path, replacing
 * any file there. Any failure (including an earlier write error on a->f, whose reason is
 * errno as that failure left it) removes the temporary and returns SIM_EIO with
 * "path: what failed: reason". a->f is closed either way. */
int sim_atomic_commit(struct sim_atomic *a, char err[SIM_ERRLEN]);
/* Close and remove the temporary, leaving the final path as it was. Harmless twice, and
 * after a failed open or any commit. */
void sim_atomic_abort(struct sim_atomic *a);
/* 1 if the directory entry `name` is a temporary sim_atomic_open made for a file whose name
 * (without directory) is `base`, "{base}.tmp.{digits}.{digits}": what a process killed with
 * SIGKILL leaves behind, for the program's next run to remove. */
int sim_atomic_is_temp(const char *name, const char *base);

/* ------------------------------------------------------------ signals */

/* SIGINT, SIGTERM and SIGHUP in a program with threads (OpenMP, BLAS), handled in one place.
 * sim_signals_start, called first thing in main before any thread exists, blocks the three in
 * the calling thread (so in every thread made after it) and starts one thread that receives
 * them (a thread made earlier, e.g. by a library constructor, only forwards them to it). For
 * each arrival that thread calls fn(sig, user), never while another thread is between
 * sim_signals_hold and sim_signals_release: the program holds those around its file system
 * work, so fn sees its files whole. fn may end the process with sim_signals_exit(sig) or
 * return (after setting a flag the program polls). Once per process: SIM_OK, SIM_EARG (no
 * fn, or called twice) or SIM_EIO (no pipe or thread; the default actions stay). */
typedef void (*sim_signal_fn)(int sig, void *user);
int sim_signals_start(sim_signal_fn fn, void *user);
/* Enter / leave a section that fn never interrupts. Sections do not nest. */
void sim_signals_hold(void);
void sim_signals_release(void);
/* End the process as the default action of sig does (the parent sees it killed by sig). */
_Noreturn void sim_signals_exit(int sig);

/* ------------------------------------------------------- small helpers */

/* Write s to f as a JSON string literal: quotes and backslashes escaped, control characters as
 * \u00XX. */
void sim_json_string(FILE *f, const char *s);

/* Command-line numbers, shared by every program. The whole string must be the number: no
 * leading or trailing space, no junk, not empty. Both are independent of LC_NUMERIC: the
 * programs never call setlocale, and sim_parse_double checks the text is a plain decimal
 * number (digits, one '.', an exponent) before strtod sees it, so a locale whose decimal
 * point is ',' can only make it refuse, never misread. */
/* A decimal integer (optional sign) in [lo, hi]: SIM_OK, else SIM_EARG and *out unchanged. */
int sim_parse_long(const char *s, long lo, long hi, long *out);
/* A finite decimal number ("1", "-2.5", ".5", "3e-4"): SIM_OK, else SIM_EARG (NaN, Inf, hex,
 * empty, junk, or out of the range of double: overflow and underflow) and *out unchanged. */
int sim_parse_double(const char *s, double *out);

/* The p-quantile (0 <= p <= 1) of n >= 1 values sorted ascending, by linear interpolation
 * between the two nearest ranks at position p (n - 1): numpy.quantile's default method.
 * Written (1 - t) a + t b, so the median of an even count is exactly (a + b) / 2 as
 * numpy.median gives it. NaN if n < 1 or p is outside [0, 1]. */
double sim_quantile(const double *sorted, long n, double p);

/* The layouts of one state of n bodies: the files' and struct sim_system's axis-major
 * doubles, axis[c * n + i], and the network's node-major floats, node[3 * i + c]. */
void sim_axis_to_node(int n, const double *axis, float *node);
void sim_node_to_axis(int n, const float *node, double *axis);

/* --------------------------------------------------------- datasets */

/* Name of one dataset file: "{dir}/{quantity}_{split}_{sim}{n}_initvel1{tag}.npy". */
int sim_dataset_path(char *buf, size_t len, const char *dir, const char *quantity,
                     const char *split, int kind, int n, const char *tag);

/* ------------------------------------------------------------- SHA-256 */

/* SHA-256 (FIPS 180-4), fed in pieces: init, update..., final. */
struct sim_sha256 {
    uint32_t h[8];
    uint64_t len;           /* bytes fed so far */
    unsigned char buf[64];  /* a partial block */
    size_t fill;            /* bytes in buf */
    int accel;              /* 1: the CPU's SHA instructions are used */
};
void sim_sha256_init(struct sim_sha256 *c);
void sim_sha256_update(struct sim_sha256 *c, const void *data, size_t len);
void sim_sha256_final(struct sim_sha256 *c, unsigned char out[32]);
/* A digest as 64 lower-case hex digits and a NUL, as sha256sum prints it. */
void sim_sha256_hex(const unsigned char d[32], char hex[65]);

/* sim_npy_read / sim_npy_write that also give the SHA-256 of every byte of the file (the
 * bytes read or written, so nothing is read twice); sha256 may be NULL. */
int sim_npy_read_hashed(const char *path, struct sim_npy *out, unsigned char sha256[32],
                        char err[SIM_ERRLEN]);
int sim_npy_write_hashed(const char *path, int dtype, int ndim, const int64_t *shape,
                         const double *data, unsigned char sha256[32], char err[SIM_ERRLEN]);
/* The header of a .npy file (dtype, ndim, shape, count; data stays NULL) with the file's size
 * checked against it, as sim_npy_read checks it, without reading the data. */
int sim_npy_read_header(const char *path, struct sim_npy *out, char err[SIM_ERRLEN]);
/* SHA-256 and size of a whole file; SIM_OK or SIM_EIO with the path in err. */
int sim_file_sha256(const char *path, unsigned char sha256[32], int64_t *bytes,
                    char err[SIM_ERRLEN]);

/* ------------------------------------------------- dataset provenance */

/* The sidecar nbody-gen writes into a dataset's folder with the twelve files, in the same
 * publish: a JSON object (one key a line) with "format": "nbody-dataset 1", "generator",
 * "generator_version" (SIM_GENERATOR_VERSION), "run_id" (unique per run), "sim", "bodies",
 * "tag", "stream" (sim_stream_name), "seed" (the global seed), "reference_seeds" (true for
 * the clofnet stream, as before streams had names), "length", "sample_freq", "frames",
 * "counts" {train, valid, test}, "physics" {dt, softening (the stream's), max_f, gravity,
 * bfield}, and "files": [{"name", "bytes", "sha256"} x 12]. Readers check each file
 * against it, so a folder holding files of two runs is refused; the published PyTorch
 * loaders never open it, and a folder without one (the reference generator's) still loads. */
#define SIM_MANIFEST_NAME "dataset.json"
#define SIM_MANIFEST_FORMAT "nbody-dataset 1"
#define SIM_MANIFEST_MAX_BYTES 65536 /* larger files are refused unparsed */
#define SIM_MANIFEST_MAX_FILES 12
/* Version of what nbody-gen writes: raised whenever the same flags could give other bytes.
 * 2: named streams (--stream) and the egnn stream's unsoftened physics. */
#define SIM_GENERATOR_VERSION 2

struct sim_manifest_file {
    char name[256];           /* file name, no directory */
    int64_t bytes;            /* its size */
    unsigned char sha256[32]; /* its SHA-256 */
};

struct sim_manifest {
    char run_id[64];
    char generator[64];
    char sim[16];             /* "charged", "static", "dynamic" */
    char tag[128];
    int64_t bodies, seed, length, sample_freq, frames, counts[3]; /* counts: train, valid, test */
    int reference_seeds;
    char stream[24];          /* sim_stream_name; "" in a sidecar written before streams */
    int64_t generator_version; /* 0 in a sidecar written before it was recorded */
    double softening;         /* physics.softening; written as sim_stream_softening(stream) */
    int nfiles;
    struct sim_manifest_file file[SIM_MANIFEST_MAX_FILES];
};

/* Parse a sidecar's text (len bytes, not NUL-terminated): SIM_OK, or SIM_EFORMAT with the
 * problem in err (prefixed with what, a path for messages). Unknown keys are skipped; the
 * format, run id and files are required; every string and number is bounds-checked. */
int sim_manifest_parse(const char *text, size_t len, const char *what, struct sim_manifest *m,
                       char err[SIM_ERRLEN]);
/* Read dir/dataset.json: SIM_OK with *present 1, SIM_OK with *present 0 (no sidecar), or
 * SIM_EFORMAT / SIM_EIO naming the file. */
int sim_manifest_read(const char *dir, struct sim_manifest *m, int *present,
                      char err[SIM_ERRLEN]);
/* Write m as dir/dataset.json through sim_atomic. */
int sim_manifest_write(const char *dir, const struct sim_manifest *m, char err[SIM_ERRLEN]);
/* The entry of m for file name, or NULL. */
const struct sim_manifest_file *sim_manifest_find(const struct sim_manifest *m,
                                                  const char *name);

/* ------------------------------------------------ publishing a folder */

/* A folder that appears whole or not at all. Its content is built in a private temporary
 * folder beside it, "{parent}/.{base}.tmp.{pid}.{counter}", and published with one rename:
 * renameat2(RENAME_EXCHANGE) swaps it with an existing folder (whose old content, now under
 * the temporary name, is then removed), so the path holds the old folder or the new one at
 * every instant. Where the file system cannot exchange, the old folder is moved aside to
 * "{parent}/.{base}.old.tmp.{pid}.{counter}" first; a run killed between the two renames
 * leaves the path empty, and the next sim_folder_lock puts the old folder back. Writers of
 * one path exclude each other with flock on "{parent}/.{base}.lock", which holds the pid of
 * its owner, so the second one fails at once naming the first. Each step that touches the
 * file system holds the signal section (sim_signals_hold), so a signal function sees the
 * folder either not made or whole; the stage callback runs between steps, outside it. */
struct sim_folder {
    char path[4096];   /* the folder, after following a symbolic link to it */
    char parent[4096]; /* the folder it is in */
    char base[256];    /* its name */
    char tmp[4400];    /* the private temporary folder, "" while none exists */
    char aside[4400];  /* the old folder moved aside (no-exchange path), "" otherwise */
    char lock[4400];   /* the lock file */
    int lock_fd;       /* -1 when not locked */
    int existed;       /* the path held a folder at sim_folder_lock */
    int no_exchange;   /* tests: publish as a file system without RENAME_EXCHANGE would */
    /* called with "mkdir", "fsync", "swap" (new folder in place, old one not yet removed),
     * "aside" (no-exchange path: old folder moved aside, new one not yet in place), "done" */
    void (*stage)(void *user, const char *stage);
    void *user;
};

/* Resolve path (its parent created if missing), take the lock, and clean what earlier runs
 * left: their temporary folders (whatever ended them) and an old folder left aside (put back
 * if the path is empty). SIM_OK; SIM_EEXIST if another process holds the lock, with its pid
 * in the message; SIM_EARG (a path that names no folder of its own, like "." or "/") or
 * SIM_EIO. */
int sim_folder_lock(struct sim_folder *f, const char *path, char err[SIM_ERRLEN]);
/* Make the private temporary folder (f->tmp) to fill. */
int sim_folder_begin(struct sim_folder *f, char err[SIM_ERRLEN]);
/* fsync the temporary folder's files and itself, put it in place of the path (replacing any
 * folder there), remove the old content, fsync the parent. */
int sim_folder_publish(struct sim_folder *f, char err[SIM_ERRLEN]);
/* Remove the temporary folder (if any) and release the lock: the path is as it was. Does not
 * hold the signal section (a signal function calls it; anyone else holds it around). */
void sim_folder_abort(struct sim_folder *f);
/* Release the lock (removing the lock file). Harmless twice. */
void sim_folder_unlock(struct sim_folder *f);
/* Remove a folder and everything under it, never following symbolic links; 0 or -1. */
int sim_remove_tree(const char *path);

/* One trajectory from its seed: sim_initial_state(seed), then sim_run.
 * loc, vel receive [frames][3][n]; edges [n][n] = q q^T (diagonal 1, as the
 * reference writes it); charges [n]. */
int sim_trajectory(int kind, int n, int length, int sample_freq, uint32_t seed,
                   double *loc, double *vel, double *edges, double *charges);

/* Called now and then from one thread while sim_generate runs. */
typedef void (*sim_progress_fn)(void *ctx, long done, long total);

/* count trajectories, trajectory t from seeds[t], into consecutive slots of
 * loc/vel [count][frames][3][n], edges [count][n][n], charges [count][n].
 * Parallel over trajectories with OpenMP on `threads` threads (0: the OpenMP
 * default); each trajectory is computed by one thread from its own seed, so
 * the output is byte-identical for any thread count. */
int sim_generate(int kind, int n, int length, int sample_freq, long count,
                 const uint32_t *seeds, int threads, double *loc, double *vel,
                 double *edges, double *charges, sim_progress_fn progress, void *ctx);
/* sim_generate from initial states (count x SIM_STATE_DOUBLES(n), as sim_stream_states makes
 * them) instead of seeds; unsoftened as in struct sim_system. Same parallelism, same
 * byte-identical output for any thread count. */
int sim_generate_states(int kind, int n, int length, int sample_freq, int unsoftened,
                        long count, const double *states, int threads, double *loc,
                        double *vel, double *edges, double *charges, sim_progress_fn progress,
                        void *ctx);

#endif
