/* viz.h: the nbody-view viewer: orbit camera, layout and input mapping (pure functions),
 * the ground-truth/learned application state, the OpenGL renderer and the SDL layer (PNG files,
 * the font and charts are plot/'s, plot.h). */
#ifndef VIZ_VIZ_H
#define VIZ_VIZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sim.h"

/* ---------------------------------------------------------------- errors */

/* Status codes returned by every fallible function of this library. VIZ_EARG .. VIZ_EFORMAT
 * have the values of SIM_EARG .. SIM_EFORMAT, so the statuses of sim and plot pass through. */
enum viz_status {
    VIZ_OK = 0,
    VIZ_EARG = 1,       /* invalid argument or command line */
    VIZ_ENOMEM = 2,     /* allocation failed */
    VIZ_EIO = 3,        /* open, read, write or rename failed */
    VIZ_EFORMAT = 4,    /* a file is not what it must be */
    VIZ_EMODEL = 5,     /* the model could not be loaded or is not a step model */
    VIZ_EGL = 6,        /* OpenGL context, shader or framebuffer failure */
    VIZ_ENODISPLAY = 7, /* no window system to open a window on */
};

/* Size of the message buffers the functions below fill on error. */
#define VIZ_ERRLEN 1024

/* Short name of a status code. */
const char *viz_strerror(int status);

/* --------------------------------------------------------------- colours */

/* Base colours of the bodies, linear 0..1 RGB; lighting scales them (ambient 0.25
 * to full, plus a white highlight). Chosen far apart in hue so that a pixel can be
 * told apart by its channels alone: +1 is warm orange, -1 is blue. */
#define VIZ_RGB_POSITIVE {0.98f, 0.42f, 0.14f}
#define VIZ_RGB_NEGATIVE {0.20f, 0.52f, 1.00f}
/* Field arrows: green for the uniform field of the static setting, violet for B. */
#define VIZ_RGB_GRAVITY {0.45f, 0.90f, 0.40f}
#define VIZ_RGB_BFIELD {0.78f, 0.55f, 1.00f}

/* ------------------------------------------------------------------ math */

/* A 4x4 matrix in column-major order, as OpenGL takes it: m[col * 4 + row]. */
struct viz_mat4 {
    float m[16];
};

void viz_mat4_identity(struct viz_mat4 *out);
/* out = a * b (out may alias neither). */
void viz_mat4_mul(struct viz_mat4 *out, const struct viz_mat4 *a, const struct viz_mat4 *b);
/* OpenGL perspective projection: eye-space z in [-znear, -zfar] to NDC z in [-1, 1]. */
void viz_mat4_perspective(struct viz_mat4 *out, float fovy, float aspect, float znear, float zfar);
/* OpenGL orthographic projection of the box [l, r] x [b, t] x [-n, -f]. */
void viz_mat4_ortho(struct viz_mat4 *out, float l, float r, float b, float t, float n, float f);
/* View matrix of an eye at `eye` looking at `target`, with `up` projecting to screen up. */
void viz_mat4_look_at(struct viz_mat4 *out, const float eye[3], const float target[3], const float up[3]);
/* out = m * (p, w). */
void viz_mat4_apply(const struct viz_mat4 *m, const float p[3], float w, float out[4]);

/* A rectangle of pixels, origin at the bottom left as in glViewport. */
struct viz_rect {
    int x, y, w, h;
};

/* ---------------------------------------------------------------- camera */

/* The orbit camera both viewports share. World +z is up. */
struct viz_camera {
    float target[3]; /* Point orbited and looked at, world units. */
    float yaw;       /* Rotation of the eye about +z, radians; 0 puts the eye on -y. */
    float pitch;     /* Elevation of the eye above the target's xy plane, radians, within +-VIZ_PITCH_MAX. */
    float distance;  /* Eye to target, world units, within [VIZ_DIST_MIN, VIZ_DIST_MAX]. */
    float fovy;      /* Vertical field of view, radians. Default: VIZ_FOVY. */
};

#define VIZ_FOVY 0.7854f          /* 45 degrees. */
#define VIZ_PITCH_MAX 1.50f       /* Just under 90 degrees: the up vector +z must never be parallel to the view. */
#define VIZ_DIST_MIN 0.5f         /* Closest zoom, world units. */
#define VIZ_DIST_MAX 5000.0f      /* Farthest zoom, world units (bodies that fly apart are followed far out). */
#define VIZ_ROTATE_PER_PX 0.006f  /* Radians of yaw or pitch per window pixel of drag. */
#define VIZ_ZOOM_PER_NOTCH 0.88f  /* Distance factor per wheel notch towards the target. */
#define VIZ_ZNEAR_FRAC 0.01f      /* Near plane as a fraction of the distance. */
#define VIZ_ZFAR_FRAC 20.0f       /* Far plane as a multiple of the distance (plus a floor of 50). */
#define VIZ_FOLLOW_TAU 0.35f      /* Seconds the target takes to cover 63% of the way to the centroid. */

/* Sphere radius of the bodies of an n-body system, world units: bodies spread with std
 * (n / 5)^(1/3) (SPEC §1) and the spheres grow the same way. */
float viz_body_radius(int n);
#define VIZ_FRAME_MARGIN 0.9f    /* World units of room around the bodies when framing a system. */
#define VIZ_MIN_BODY_PX 0.004f   /* Drawn radius at least this fraction of the eye distance (~3 pixels
                                    at 720 lines), so that bodies far out stay visible. */

/* A camera at the default angles (yaw 0.6, pitch 0.45) looking at the origin from distance 8. */
void viz_camera_init(struct viz_camera *c);
/* Drag by (dx, dy) window pixels: right turns the scene right, down tilts the eye up. */
void viz_camera_rotate(struct viz_camera *c, float dx, float dy);
/* Wheel: positive notches move the eye closer, by VIZ_ZOOM_PER_NOTCH each, clamped. */
void viz_camera_zoom(struct viz_camera *c, float notches);
/* Eye position in world coordinates. */
void viz_camera_eye(const struct viz_camera *c, float eye[3]);
/* View and projection matrices for a viewport of the given aspect (width / height). */
void viz_camera_matrices(const struct viz_camera *c, float aspect, struct viz_mat4 *view,
                         struct viz_mat4 *proj);
/* Aim at the centroid of n bodies (axis-major [3][n], like struct sim_system) and
 * choose the distance at which a sphere around all of them, grown by `margin`
 * world units, fits the smaller field of view of a viewport of the given aspect. */
void viz_camera_fit(struct viz_camera *c, int n, const double *x, float margin, float aspect);
/* Move the target towards p by the fraction 1 - exp(-dt / VIZ_FOLLOW_TAU) of the way. */
void viz_camera_follow(struct viz_camera *c, const float p[3], float dt);

/* Following (key F): the target eases to the truth's centroid and the distance keeps a sphere
 * around the target holding every drawn body (of every panel) inside the view. It grows at
 * once when a body would leave the view and shrinks, slowly, only once it is more than
 * VIZ_FIT_SLACK times what is needed, to VIZ_FIT_AIM times it: a system that breathes does
 * not make the camera pump. */
#define VIZ_FIT_SLACK 1.8f   /* Zoom in only when this many times farther than needed. */
#define VIZ_FIT_AIM 1.25f    /* ... and then towards this many times the distance needed. */
#define VIZ_ZOOM_TAU 0.8f    /* Seconds a zoom-in takes to cover 63% of the way. */
/* Distance at which a sphere of `radius` world units about the target fits the smaller
 * field of view of a viewport of the given aspect. */
float viz_camera_fit_distance(const struct viz_camera *c, float radius, float aspect);
/* One frame of following: pts [count][3] every body drawn, centroid the truth's, margin
 * world units around each body (its radius), dt seconds of wall time. */
void viz_camera_track(struct viz_camera *c, const float centroid[3], int count, const float *pts,
                      float margin, float aspect, float dt);
/* Aim at the centroid of pts [count][3] (the first `centroid_count` of them, the truth) and
 * stand where all of them fit: the camera a system starts with and screenshots use. */
void viz_camera_frame(struct viz_camera *c, int centroid_count, int count, const float *pts,
                      float margin, float aspect);
/* Window position (pixels from the bottom left of the framebuffer) of world point p under
 * view-projection vp in viewport r; returns 0 if p is behind the eye, 1 otherwise. */
int viz_project(const struct viz_mat4 *vp, const struct viz_rect *r, const float p[3], float out[2]);

/* ---------------------------------------------------------------- layout */

/* Most learned panels (models and the constant-velocity baseline) beside the truth. */
#define VIZ_MAX_MODELS 3
#define VIZ_MAX_LEARNED (VIZ_MAX_MODELS + 1)
#define VIZ_MAX_PANELS (1 + VIZ_MAX_LEARNED)

/* Where everything goes in a framebuffer. */
struct viz_layout {
    int fb_w, fb_h;          /* Framebuffer (drawable) size, pixels. */
    float dpi_scale;         /* Framebuffer pixels per window pixel (2 on a typical HiDPI screen). */
    int text_scale;          /* Font pixels are drawn as text_scale x text_scale squares. */
    int panels;              /* Viewports side by side, 1..VIZ_MAX_PANELS. */
    struct viz_rect view[VIZ_MAX_PANELS]; /* Panel 0 the truth, then the learned panels. */
    struct viz_rect plot;    /* Error or energy plot, bottom right above the timeline. */
    struct viz_rect timeline; /* Time bar under the panels, the whole width (h 0 with no UI). */
    int gap;                 /* Pixels of divider between the viewports. */
};

/* Split a framebuffer of fb_w x fb_h pixels shown in a window of win_w x win_h into
 * `panels` equal viewports with dividers above a timeline strip (timeline 0: none, the
 * panels take the whole height); the text scale follows the DPI scale. */
void viz_layout_compute(struct viz_layout *l, int win_w, int win_h, int fb_w, int fb_h, int panels,
                        int timeline);

/* ----------------------------------------------------------------- input */

/* The keys the viewer reacts to, independent of the window system's codes. */
enum viz_key {
    VIZ_KEY_ESCAPE,
    VIZ_KEY_SPACE,
    VIZ_KEY_RIGHT,
    VIZ_KEY_R,
    VIZ_KEY_1,
    VIZ_KEY_2,
    VIZ_KEY_3,
    VIZ_KEY_PLUS,  /* '+', '=' (unshifted plus) and keypad plus */
    VIZ_KEY_MINUS, /* '-' and keypad minus */
    VIZ_KEY_T,
    VIZ_KEY_H,
    VIZ_KEY_F5,    /* reload shaders */
    VIZ_KEY_F,     /* camera following on / off */
    VIZ_KEY_G,     /* truth overlaid on the learned panels */
    VIZ_KEY_E,     /* plot: error / energy */
    VIZ_KEY_N,     /* next dataset trajectory */
    VIZ_KEY_P,     /* previous dataset trajectory */
    VIZ_KEY_LEFT,  /* one snapshot back (pauses) */
    VIZ_KEY_COUNT
};

/* One frame of input, filled by the platform layer (or by a test). */
struct viz_input {
    unsigned char down[VIZ_KEY_COUNT]; /* Key held at the end of this frame. */
    unsigned char prev[VIZ_KEY_COUNT]; /* Key held at the end of the previous frame. */
    unsigned char tap[VIZ_KEY_COUNT];  /* Key went down during this frame (catches press and release within one frame). */
    int button;                        /* Left mouse button held now. */
    int button_prev;                   /* Left mouse button held in the previous frame. */
    float mouse_dx, mouse_dy;          /* Mouse motion this frame, window pixels, +y down. */
    float mouse_x, mouse_y;            /* Mouse position, window pixels from the top left. */
    float wheel;                       /* Wheel notches this frame, positive away from the user. */
    int quit;                          /* The window was closed. */
    int win_w, win_h;                  /* Window size, window pixels. */
    int fb_w, fb_h;                    /* Drawable size, framebuffer pixels. */
};

/* What the input of one frame asks for. */
struct viz_actions {
    int quit;
    int toggle_pause;
    int single_step;    /* advance by one learned step (only when paused) */
    int new_system;     /* new random initial state */
    int set_kind;       /* enum sim_kind to switch to, or -1 */
    int speed;          /* +1 faster, -1 slower, 0 unchanged */
    int toggle_trails;
    int toggle_help;
    int reload_shaders;
    int toggle_follow;
    int toggle_overlay;
    int toggle_energy;
    int trajectory;     /* +1 next, -1 previous dataset trajectory, 0 none */
    int step_back;      /* one snapshot back (pauses) */
    float rotate_dx, rotate_dy; /* camera drag, window pixels */
    float zoom;                 /* wheel notches */
};

/* Start a frame: the current key states become the previous ones, per-frame fields reset. */
void viz_input_begin_frame(struct viz_input *in);
/* 1 if the key went down this frame. */
int viz_input_pressed(const struct viz_input *in, int key);
/* Map the input of one frame to actions. Rotation only while the left button is held. */
void viz_input_map(const struct viz_input *in, struct viz_actions *out);

/* Simulation speeds, steps per second, in a 1-2-5 sequence. */
#define VIZ_SPEED_MIN 10
#define VIZ_SPEED_MAX 20000
#define VIZ_SPEED_DEFAULT 500
/* The next speed in the 1-2-5 sequence up (dir > 0) or down (dir < 0), clamped to
 * [VIZ_SPEED_MIN, VIZ_SPEED_MAX]; a speed off the sequence goes to its neighbour. */
int viz_speed_step(int speed, int dir);

/* ---------------------------------------------------------- learned step */

/* A learned integrator as the application sees it: advance n bodies by `horizon`
 * simulation steps in place (x, v axis-major [3][n], v half a kick behind x). */
struct viz_stepper {
    int (*step)(void *ctx, int n, const double *q, double *x, double *v, char err[VIZ_ERRLEN]);
    void *ctx;
    int horizon; /* Simulation steps per call, > 0. */
};

struct cn_model;

/* A loaded model (model/clofnet.h), through the model library's public API. */
struct viz_model {
    struct cn_model *model;
    int arch;          /* enum cn_arch: 0 ClofNet, 1 EGNN */
    int position;      /* 1: a frame-30 -> frame-40 position model (the paper's task), 0: a step model */
    int sim_kind;      /* Setting the model was trained on (enum sim_kind). */
    int n_bodies;      /* Bodies it was trained on. */
    int horizon_steps; /* Simulation steps per model call (1000 for a position model). */
    long n_params;
    char path[512];
};

/* Load a checkpoint: a learned integrator (task STEP) or a position model (task POSITION). */
int viz_model_open(struct viz_model *vm, const char *path, char err[VIZ_ERRLEN]);
void viz_model_close(struct viz_model *vm);
/* A stepper calling cn_integrator_step on the model. */
void viz_model_stepper(struct viz_model *vm, struct viz_stepper *out);
/* "ClofNet" or "EGNN". */
const char *viz_model_arch_name(const struct viz_model *vm);

/* The constant-velocity baseline x + v t as a stepper of VIZ_BASELINE_HORIZON steps. */
#define VIZ_BASELINE_HORIZON 100
void viz_baseline_stepper(struct viz_stepper *out);

/* ----------------------------------------------------------- dataset replay */

/* One split of a dataset (cn_data_load: the sidecar and the shapes checked), for replay. */
struct viz_dataset {
    char dir[512];
    char split[8];   /* "train", "valid" or "test" */
    int kind;        /* enum sim_kind */
    int n;           /* bodies */
    int count;       /* trajectories */
    int frames;      /* frames per trajectory (49): frame k is simulation step VIZ_FRAME_STEPS (k + 1) */
    float *loc, *vel; /* [count][frames][n][3] */
    float *q;        /* [count][n] */
};
#define VIZ_FRAME_STEPS 100 /* Simulation steps between dataset frames (sample_freq). */

/* Load split `split` of the dataset in dir; VIZ_EIO / VIZ_EFORMAT with a message naming the
 * folder and what is wrong. */
int viz_dataset_load(struct viz_dataset *d, const char *dir, const char *split, char err[VIZ_ERRLEN]);
void viz_dataset_free(struct viz_dataset *d);

/* ----------------------------------------------------------- application */

#define VIZ_TRAIL_LEN 100   /* Trail points kept per body. */
#define VIZ_TRAIL_EVERY 15  /* Simulation steps between trail points (trails span 1500 steps). */
#define VIZ_HISTORY_MAX 65536 /* Plot points kept per curve; when full, every other point is dropped. */
#define VIZ_DIVERGED 1e6    /* A learned coordinate beyond this (or not finite) stops its panel. */
#define VIZ_ENERGY_EVERY 100 /* Simulation steps between energy samples of the truth. */
#define VIZ_SNAP_EVERY 100  /* Simulation steps between snapshots of the history ring. */
#define VIZ_SNAP_MAX 8192   /* Most snapshots the ring keeps ... */
#define VIZ_SNAP_BYTES (64u << 20) /* ... and at most this many bytes of them (many bodies). */
/* The standard datasets hold frames up to step 4900 (49 frames of 100 steps, SPEC §2): the
 * models never saw a state beyond t = 4.9. */
#define VIZ_HORIZON_STEPS 4900
/* The position task's frames (SPEC §3): input frame 30 (step 3100), target frame 40 (step 4100). */
#define VIZ_POS_FRAME_IN 30
#define VIZ_POS_FRAME_OUT 40

/* Past positions of every body of one panel, a ring of VIZ_TRAIL_LEN points. */
struct viz_trail {
    int count;  /* Points stored, <= VIZ_TRAIL_LEN. */
    int head;   /* Slot of the newest point. */
    float *pts; /* [VIZ_TRAIL_LEN][n][3] */
};

/* A curve of the plot: (time, value) points in increasing time. */
struct viz_series {
    int count;
    double *t; /* simulation time, units of SIM_DT * steps */
    double *y;
};

/* One learned panel: a model (or the baseline) started from the truth's state. */
struct viz_learned {
    struct viz_stepper stepper;
    int position;     /* 1: position model: predicts frame 40 once, at frame 30; its bodies are the truth's */
    char name[64];    /* title, e.g. "ClofNet step-charged5.ckpt" */
    double *x0, *v0;  /* state at step base [3][n] */
    double *x1, *v1;  /* state at step base + horizon [3][n] */
    long base;        /* step of (x0, v0) */
    int ok;           /* 0 once the model failed or diverged: the panel stays frozen */
    double mse;       /* position MSE against the truth at the last learned step (position model:
                         at frame 40, NaN before) */
    long mse_step;    /* step at which mse was measured */
    int predicted;    /* position model: 1 once pred holds the prediction made at frame 30 */
    double *pred;     /* position model: predicted frame-40 positions [3][n] */
    struct viz_series err;    /* mse over time */
    struct viz_series energy; /* total energy of the panel's state over time */
    struct viz_trail trail;
};

/* The history ring: the whole state every VIZ_SNAP_EVERY steps, to scrub and rewind. */
struct viz_ring {
    int cap, count, head; /* head: slot of the newest snapshot */
    size_t doubles;       /* doubles per snapshot */
    long *step;           /* [cap] */
    double *data;         /* [cap][doubles] */
};

/* The truth and every learned panel at the same simulation time. All hold states in the
 * dataset convention: positions after a drift, velocities half a kick behind (sim.h sim_run).
 * The live truth advances one kick-drift step at a time, which reproduces the reference frames
 * exactly; a replayed truth plays a dataset trajectory (cubic Hermite between its frames) and
 * runs on with the simulator from its last frame. Learned panels jump `horizon` steps per model
 * call and are drawn interpolated in between. */
struct viz_app {
    int kind;                /* enum sim_kind */
    int n;                   /* bodies */
    uint32_t seed;           /* seed of the initial state (live) */
    int learned;             /* learned panels, 0..VIZ_MAX_LEARNED */
    struct viz_learned panel[VIZ_MAX_LEARNED];
    struct sim_system truth; /* the exact truth at `step` (replay: at the last frame reached); q[n]
                                are the charges of every panel */
    const struct viz_dataset *data; /* replay source, NULL live */
    int traj;                /* replayed trajectory */
    int start_frame;         /* replay started at this frame */
    long start_step;         /* step of the initial state (replay: VIZ_FRAME_STEPS (start_frame + 1)) */
    long horizon_step;       /* last step the models' data covers (VIZ_HORIZON_STEPS, or the dataset's last frame) */
    double *fx0, *fv0, *fx1, *fv1; /* replay: the frames around `step` [3][n] */
    long step;               /* simulation step of the truth */
    double t;                /* displayed time in simulation steps, step <= t < step + 1 */
    struct viz_series energy; /* the truth's total energy */
    struct viz_trail trail;  /* the truth's trail */
    struct viz_ring ring;
    float *scratch;          /* [n][3], for sampling trails */
    int paused;
    int trails;              /* draw trails */
    int help;                /* show the help panel */
    int overlay;             /* draw the truth as ghosts in the learned panels */
    int plot_energy;         /* plot energy instead of the error */
    int speed;               /* simulation steps per second of wall time */
    char status[256];        /* last message for the screen ("" if none) */
};

/* Allocate the state for `n` bodies of setting `kind` from seed `seed`, with `count` learned
 * panels (st[k], position[k]: 1 for a position model; names[k] may be NULL). */
int viz_app_init(struct viz_app *a, int kind, int n, uint32_t seed, const struct viz_stepper *st,
                 const int *position, const char *const *names, int count, char err[VIZ_ERRLEN]);
void viz_app_free(struct viz_app *a);
/* Restart live from a new seed and setting; n and the panels stay. */
int viz_app_reset(struct viz_app *a, int kind, uint32_t seed, char err[VIZ_ERRLEN]);
/* Replace the panels (as viz_app_init) and restart live from seed in setting kind. */
int viz_app_set_panels(struct viz_app *a, int kind, uint32_t seed, const struct viz_stepper *st,
                       const int *position, const char *const *names, int count, char err[VIZ_ERRLEN]);
/* Restart on trajectory `traj` of d from frame `frame` (0 .. frames - 2); d must have the
 * app's n bodies and outlive the replay. */
int viz_app_replay(struct viz_app *a, const struct viz_dataset *d, int traj, int frame, char err[VIZ_ERRLEN]);
/* Advance every panel by exactly `steps` simulation steps (the learned ones in model calls). */
void viz_app_advance(struct viz_app *a, long steps);
/* Apply one frame: pause, single step, step back, speed, toggles; then advance by wall_dt
 * seconds times the speed unless paused. At most max_steps simulation steps are taken
 * (the displayed time falls behind rather than the frame rate). */
void viz_app_update(struct viz_app *a, const struct viz_actions *act, double wall_dt, long max_steps);
/* Positions to draw, [n][3] floats: panel 0 the truth at time t, panel p >= 1 learned panel
 * p - 1 interpolated at time t (a position model's panel: the truth). */
void viz_app_positions(const struct viz_app *a, int panel, float *out);
/* The truth's positions at time t, [3][n] doubles (interpolated in replay). */
void viz_app_truth_at(const struct viz_app *a, double t, double *out);
/* Centroid of the truth as drawn, for the camera to follow. */
void viz_app_centroid(const struct viz_app *a, float out[3]);
/* Displayed time in simulation time units. */
double viz_app_time(const struct viz_app *a);
/* Total energy (kinetic + potential, sim.h) of a state [3][n]. */
double viz_energy(int kind, int n, const double *x, const double *v, const double *q);
/* Range of steps the history ring can go back to: [*first, *last]; 0 if it is empty. */
int viz_app_ring_range(const struct viz_app *a, long *first, long *last);
/* Go back (or forward, within the ring) to the newest snapshot at or before `step`: the state
 * of every panel as it was then; the curves keep their points. VIZ_EARG if the ring has none. */
int viz_app_seek(struct viz_app *a, long step);
/* Mean squared difference of two [3][n] position arrays over all 3 n coordinates. */
double viz_position_mse(int n, const double *a, const double *b);
/* Cubic Hermite interpolation between (x0, v0) and (x1, v1), `span` time units apart,
 * at fraction s in [0, 1]; x0, v0, x1, v1 are [3][n], out [n][3] floats. */
void viz_hermite(int n, const double *x0, const double *v0, const double *x1, const double *v1,
                 double span, double s, float *out);
/* Point `age` (0 = newest) of body i of a trail, or NULL beyond the stored points. */
const float *viz_trail_point(const struct viz_trail *tr, int n, int age, int i);

/* ------------------------------------------------------------- options */

/* Command line of nbody-view. */
struct viz_options {
    int kind;           /* --sim: enum sim_kind, -1 if not given */
    const char *model[VIZ_MAX_MODELS]; /* --model FILE, repeated; none: the shipped models of the setting */
    int models;         /* how many --model */
    int baseline;       /* --baseline: add the constant-velocity panel */
    int bodies;         /* --bodies N, 0 if not given (then the model's) */
    uint32_t seed;      /* --seed S. Default: VIZ_SEED_DEFAULT. */
    const char *assets; /* --assets DIR, NULL to search */
    const char *data;   /* --data DIR: replay a dataset */
    const char *split;  /* --split train|valid|test. Default: test. */
    long index;         /* --index K, trajectory of the split. Default 0. */
    long start;         /* --start F, frame the models start from. Default 0. */
    double loop;        /* --loop T: a new system every T time units, 0 never */
    int overlay;        /* --overlay: truth ghosts in the learned panels */
    int energy;         /* --energy: start with the energy plot */
    int follow;         /* 0 with --no-follow */
    const char *screenshot; /* --screenshot FILE.png */
    const char *record; /* --record DIR */
    long steps;         /* --steps N, -1 if not given */
    int width, height;  /* --size WxH, window pixels. Default: 1280 x 720. */
    int speed;          /* --speed S, simulation steps per second. Default: VIZ_SPEED_DEFAULT. */
    int msaa;           /* --msaa N samples (0, 2, 4 or 8). Default: VIZ_MSAA_AUTO (4 for
                           --screenshot and --record, else 4 on a GPU and 0 in software). */
    int ui;             /* 0 with --no-ui: scene only, no text, plot or gizmo */
    int trails;         /* 0 with --no-trails */
    int show_help;      /* --show-help: start with the help panel open */
    long bench_frames;  /* --bench-frames N, 0 if not given */
    int help;           /* --help */
};

#define VIZ_SEED_DEFAULT 7 /* A 5-body charged system with both charges and a close encounter early on. */

/* Parse argv into o; on a bad flag or value returns VIZ_EARG with a message. */
int viz_options_parse(struct viz_options *o, int argc, char **argv, char err[VIZ_ERRLEN]);
/* The --help text. */
const char *viz_usage(void);
/* The assets folder: `given` if not NULL (it must hold shaders/), else the first of
 * <exe dir>/../assets, <exe dir>/../../assets, <exe dir>/assets, the compile-time
 * VIZ_ASSETS_DIR that holds shaders/. */
int viz_find_assets(const char *given, char *out, size_t len, char err[VIZ_ERRLEN]);
/* Path of the shipped ClofNet step model of a setting: "<assets>/models/step-<kind>5.ckpt". */
int viz_default_model(char *out, size_t len, const char *assets, int kind);
/* The shipped integrators of a setting that exist, in panel order: ClofNet
 * "<assets>/models/step-<kind>5.ckpt", then EGNN "<assets>/models/egnn-step-<kind>5.ckpt".
 * Returns how many were found (0..2); paths[k] receive them. */
int viz_shipped_models(const char *assets, int kind, char paths[][1024], int max);

/* --------------------------------------------------------------- HUD */

#define VIZ_HUD_LINES 32
#define VIZ_HUD_LEN 128

/* Text of the overlay, composed from the state (pure; the renderer only draws it). */
struct viz_hud {
    int panels;                    /* 1 + learned panels */
    char title[VIZ_MAX_PANELS][VIZ_HUD_LEN]; /* panel headings */
    char sub[VIZ_MAX_PANELS][VIZ_HUD_LEN];   /* second line under each heading */
    char error[VIZ_MAX_PANELS][VIZ_HUD_LEN]; /* current error of each learned panel ("" for the truth) */
    char info[3][VIZ_HUD_LEN];     /* setting, time and speed lines, top left */
    char status[VIZ_HUD_LEN];      /* message line at the bottom ("" if none) */
    char timeline[VIZ_HUD_LEN];    /* label on the timeline */
    int beyond;                    /* 1 when t is past the models' data horizon */
    char help[VIZ_HUD_LINES][VIZ_HUD_LEN]; /* help panel lines */
    int help_lines;
    int field;                     /* 0 none, 1 uniform field along +z, 2 magnetic field B */
    int follow;                    /* camera following on */
};

/* Fill the HUD for the state; follow: the camera is following. */
void viz_hud_compose(struct viz_hud *h, const struct viz_app *a, int follow);
/* The plot legend's name of panel k (0: truth): the first word of the panel's title, or the
 * model file's stem when two learned panels share that word. */
void viz_legend_name(const struct viz_app *a, int k, char *out, size_t len);
/* Time span the timeline shows, simulation time units: from the start to the latest of the
 * displayed time, the newest snapshot and 1.1 times the data horizon. */
void viz_timeline_span(const struct viz_app *a, double *t0, double *t1);
/* Pixel columns (framebuffer, from the left) the timeline's bar spans. */
void viz_timeline_bar(const struct viz_layout *l, float *x0, float *x1);
/* The simulation step under framebuffer column x of the timeline (clamped to its span). */
long viz_timeline_step(const struct viz_app *a, const struct viz_layout *l, float x);

/* ------------------------------------------------------------ renderer */

struct viz_renderer;
/* Returns the address of an OpenGL function (SDL_GL_GetProcAddress). */
typedef void *(*viz_getproc_fn)(const char *name);

/* What one frame shows. */
struct viz_frame {
    const struct viz_app *app;
    const struct viz_camera *cam;
    const struct viz_layout *layout;
    const struct viz_hud *hud; /* NULL: scene only */
    float body_radius;         /* Sphere radius, world units. */
    float floor_below;         /* The floor grid lies this far below the camera target, world units. */
    float grid_scale;          /* World units per floor grid cell (1, growing as the camera backs off). */
};

/* Multisampling chosen by the renderer: 4 samples on a GPU, none on a software rasteriser. */
#define VIZ_MSAA_AUTO (-1)

/* Load OpenGL 3.3 core functions, compile the shaders in shader_dir, build meshes
 * and the font texture; msaa samples (0 for none, or VIZ_MSAA_AUTO). direct: frames go
 * straight into the window's back buffer (visible windows; it needs a depth buffer);
 * otherwise into a framebuffer of the renderer's own (hidden windows have no defined pixels). */
int viz_render_create(struct viz_renderer **out, viz_getproc_fn getproc, const char *shader_dir,
                      int msaa, int direct, char err[VIZ_ERRLEN]);
void viz_render_destroy(struct viz_renderer *r);
/* Recompile the shaders; on failure the message holds the info log and the previous
 * programs stay in use. */
int viz_render_reload(struct viz_renderer *r, char err[VIZ_ERRLEN]);
/* Draw a frame (the layout's size) into the window's back buffer or the own framebuffer. */
int viz_render_frame(struct viz_renderer *r, const struct viz_frame *f, char err[VIZ_ERRLEN]);
/* Read the last frame as RGBA, top row first, into rgba[fb_w * fb_h * 4]. */
void viz_render_read(struct viz_renderer *r, unsigned char *rgba);
/* Wait until the GPU has finished (for timing). */
void viz_render_finish(struct viz_renderer *r);
/* Samples per pixel in use (0: no multisampling). */
int viz_render_samples(const struct viz_renderer *r);
/* "renderer, version" strings of the context. */
void viz_render_describe(struct viz_renderer *r, char *out, size_t len);

/* --------------------------------------------------------- platform */

struct viz_platform;

/* Open a window with an OpenGL 3.3 core context (hidden windows for headless output);
 * VIZ_ENODISPLAY if there is no display to open it on. */
int viz_platform_open(struct viz_platform **out, const char *title, int w, int h, int hidden,
                      char err[VIZ_ERRLEN]);
void viz_platform_close(struct viz_platform *p);
/* The GL function loader of the context. */
viz_getproc_fn viz_platform_getproc(struct viz_platform *p);
/* Start a frame and gather this frame's events into in. */
void viz_platform_poll(struct viz_platform *p, struct viz_input *in);
/* Show the frame; vsync on or off. */
void viz_platform_swap(struct viz_platform *p);
void viz_platform_vsync(struct viz_platform *p, int on);
/* Seconds from an arbitrary origin, monotonic. */
double viz_platform_time(struct viz_platform *p);
void viz_platform_sleep(double seconds);

/* --------------------------------------------------------- the viewer */

/* Run nbody-view with parsed options: interactive, --screenshot, --record or
 * --bench-frames. Results (benchmark numbers) go to `out`, warnings and progress to
 * `log`. Returns VIZ_OK or a status with a message for the user in err. */
int viz_run(const struct viz_options *o, FILE *out, FILE *log, char err[VIZ_ERRLEN]);

#endif
