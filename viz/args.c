/* args.c: the command line of nbody-view and where its assets (shaders, models) are
 * found: --assets, next to the executable, or the source tree the build came from. */
#include "viz.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef VIZ_ASSETS_DIR
#define VIZ_ASSETS_DIR "assets"
#endif

static const char usage_text[] =
    "usage: nbody-view [options]\n"
    "Ground truth (left) beside learned models started from the same state, at the same time.\n"
    "\n"
    "  --sim KIND          charged | static | dynamic (default: the model's setting, else charged)\n"
    "  --model FILE        a learned model, up to 3 times: a step model (integrator) or a frame-30 ->\n"
    "                      frame-40 position model (default: the shipped integrators of the setting,\n"
    "                      <assets>/models/step-KIND5.ckpt and egnn-step-KIND5.ckpt where present)\n"
    "  --baseline          add the constant-velocity panel x + v t\n"
    "  --data DIR          replay a dataset (nbody-gen's folder): the truth plays a saved trajectory\n"
    "                      and the models start from its frame --start\n"
    "  --split NAME        train | valid | test (default test)\n"
    "  --index K           trajectory of the split (default 0); N / P step through them\n"
    "  --start F           frame the models start from (default 0)\n"
    "  --loop T            a new system (or the next trajectory) every T time units\n"
    "  --overlay           the truth as faint ghosts in the learned panels, a line to each (key G)\n"
    "  --energy            plot the energy of every panel instead of the error (key E)\n"
    "  --no-follow         the camera stays put instead of following the bodies (key F)\n"
    "  --bodies N          bodies, 2..500 (default: as many as the model was trained on)\n"
    "  --seed S            initial state seed, 0..4294967295 (default 7)\n"
    "  --assets DIR        shaders and models (default: found next to the executable or the source tree)\n"
    "  --size WxH          window size in window pixels (default 1280x720)\n"
    "  --speed S           simulation steps per second, 10..20000 (default 500)\n"
    "  --msaa N            multisampling: 0, 2, 4 or 8 samples (default: 4 for --screenshot and\n"
    "                      --record; otherwise 4 on a GPU, 0 on a software renderer such as llvmpipe)\n"
    "  --no-ui             scene only: no text, plot, timeline or axes\n"
    "  --no-trails         start with trails off\n"
    "  --show-help         start with the help panel open\n"
    "  --screenshot FILE   render after --steps steps, write FILE (PNG) and exit; no window is shown\n"
    "  --record DIR        write every frame as DIR/frame_NNNNNN.png (with --steps: headless, until N steps)\n"
    "  --steps N           simulation steps before the screenshot, or the length of a recording\n"
    "  --bench-frames N    render N frames as fast as possible, print frame-time statistics and\n"
    "                      the cost of one learned step, then exit\n"
    "  --help              this text\n"
    "\n"
    "Keys: drag rotate, wheel zoom (both stop following until F), F follow, G truth overlay,\n"
    "E error / energy plot, Space pause, Right one step, Left one step back, drag on the timeline\n"
    "to scrub, R new system, N / P next / previous trajectory, 1/2/3 charged/static/dynamic,\n"
    "+/- speed, T trails, H help, F5 reload shaders, Esc quit.\n"
    "Headless: xvfb-run -a nbody-view --screenshot out.png --steps 2000\n";

const char *viz_usage(void)
{
    return usage_text;
}

int viz_options_parse(struct viz_options *o, int argc, char **argv, char err[VIZ_ERRLEN])
{
    memset(o, 0, sizeof *o);
    o->kind = -1;
    o->seed = VIZ_SEED_DEFAULT;
    o->steps = -1;
    o->width = 1280;
    o->height = 720;
    o->speed = VIZ_SPEED_DEFAULT;
    o->msaa = VIZ_MSAA_AUTO;
    o->ui = 1;
    o->trails = 1;
    o->follow = 1;
    o->split = "test";
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        char name[64];
        const char *val = NULL;
        const char *eq = strchr(arg, '=');
        if (strncmp(arg, "--", 2) == 0 && eq && (size_t)(eq - arg) < sizeof name) {
            memcpy(name, arg, (size_t)(eq - arg));
            name[eq - arg] = '\0';
            val = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", arg);
        }
        /* Flags without a value. */
        if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
            o->help = 1;
            continue;
        }
        if (!strcmp(name, "--no-ui")) {
            o->ui = 0;
            continue;
        }
        if (!strcmp(name, "--no-trails")) {
            o->trails = 0;
            continue;
        }
        if (!strcmp(name, "--show-help")) {
            o->show_help = 1;
            continue;
        }
        if (!strcmp(name, "--baseline") || !strcmp(name, "--overlay") || !strcmp(name, "--energy") ||
            !strcmp(name, "--no-follow")) {
            if (val) {
                snprintf(err, VIZ_ERRLEN, "option %s takes no value", name);
                return VIZ_EARG;
            }
            *(!strcmp(name, "--baseline") ? &o->baseline : !strcmp(name, "--overlay") ? &o->overlay
              : !strcmp(name, "--energy") ? &o->energy : &o->follow) = strcmp(name, "--no-follow") != 0;
            continue;
        }
        static const char *const valued[] = {"--sim", "--model", "--bodies", "--seed", "--assets",
                                             "--size", "--speed", "--msaa", "--screenshot", "--record",
                                             "--steps", "--bench-frames", "--data", "--split", "--index",
                                             "--start", "--loop"};
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
            known |= !strcmp(name, valued[k]);
        if (!known) {
            snprintf(err, VIZ_ERRLEN, "unknown option '%s' (see --help)", arg);
            return VIZ_EARG;
        }
        if (!val) {
            if (i + 1 >= argc) {
                snprintf(err, VIZ_ERRLEN, "option %s needs a value", name);
                return VIZ_EARG;
            }
            val = argv[++i];
        }
        long v = 0;
        if (!strcmp(name, "--sim")) {
            o->kind = sim_kind_parse(val);
            if (o->kind < 0) {
                snprintf(err, VIZ_ERRLEN, "--sim '%s': expected charged, static or dynamic", val);
                return VIZ_EARG;
            }
        } else if (!strcmp(name, "--model")) {
            if (o->models == VIZ_MAX_MODELS) {
                snprintf(err, VIZ_ERRLEN, "--model '%s': at most %d models (and --baseline)", val, VIZ_MAX_MODELS);
                return VIZ_EARG;
            }
            o->model[o->models++] = val;
        } else if (!strcmp(name, "--data")) {
            o->data = val;
        } else if (!strcmp(name, "--split")) {
            if (strcmp(val, "train") && strcmp(val, "valid") && strcmp(val, "test")) {
                snprintf(err, VIZ_ERRLEN, "--split '%s': expected train, valid or test", val);
                return VIZ_EARG;
            }
            o->split = val;
        } else if (!strcmp(name, "--index")) {
            if (sim_parse_long(val, 0, 100000000L, &v) != SIM_OK) {
                snprintf(err, VIZ_ERRLEN, "--index '%s': expected an integer from 0 to 100000000", val);
                return VIZ_EARG;
            }
            o->index = v;
        } else if (!strcmp(name, "--start")) {
            if (sim_parse_long(val, 0, 100000, &v) != SIM_OK) {
                snprintf(err, VIZ_ERRLEN, "--start '%s': expected a frame number from 0", val);
                return VIZ_EARG;
            }
            o->start = v;
        } else if (!strcmp(name, "--loop")) {
            double d = 0.0;
            if (sim_parse_double(val, &d) != SIM_OK || !(d >= 0.1 && d <= 1e6)) {
                snprintf(err, VIZ_ERRLEN, "--loop '%s': expected time units from 0.1 to 1e6", val);
                return VIZ_EARG;
            }
            o->loop = d;
        } else if (!strcmp(name, "--assets")) {
            o->assets = val;
        } else if (!strcmp(name, "--screenshot")) {
            o->screenshot = val;
        } else if (!strcmp(name, "--record")) {
            o->record = val;
        } else if (!strcmp(name, "--bodies")) {
            if (sim_parse_long(val, 2, 500, &v) != SIM_OK) {
                snprintf(err, VIZ_ERRLEN, "--bodies '%s': expected an integer from 2 to 500", val);
                return VIZ_EARG;
            }
            o->bodies = (int)v;
        } else if (!strcmp(name, "--seed")) {
            if (sim_parse_long(val, 0, 4294967295L, &v) != SIM_OK) {
                snprintf(err, VIZ_ERRLEN, "--seed '%s': expected an integer from 0 to 4294967295", val);
                return VIZ_EARG;
            }
            o->seed = (uint32_t)v;
        } else if (!strcmp(name, "--steps")) {
            if (sim_parse_long(val, 0, 1000000000L, &v) != SIM_OK) {
                snprintf(err, VIZ_ERRLEN, "--steps '%s': expected an integer from 0 to 1000000000", val);
                return VIZ_EARG;
            }
            o->steps = v;
        } else if (!strcmp(name, "--bench-frames")) {
            if (sim_parse_long(val, 1, 10000000L, &v) != SIM_OK) {
                snprintf(err, VIZ_ERRLEN, "--bench-frames '%s': expected an integer from 1 to 10000000", val);
                return VIZ_EARG;
            }
            o->bench_frames = v;
        } else if (!strcmp(name, "--speed")) {
            if (sim_parse_long(val, VIZ_SPEED_MIN, VIZ_SPEED_MAX, &v) != SIM_OK) {
                snprintf(err, VIZ_ERRLEN, "--speed '%s': expected an integer from %d to %d", val,
                         VIZ_SPEED_MIN, VIZ_SPEED_MAX);
                return VIZ_EARG;
            }
            o->speed = (int)v;
        } else if (!strcmp(name, "--msaa")) {
            if (sim_parse_long(val, 0, 8, &v) != SIM_OK || (v != 0 && v != 2 && v != 4 && v != 8)) {
                snprintf(err, VIZ_ERRLEN, "--msaa '%s': expected 0, 2, 4 or 8", val);
                return VIZ_EARG;
            }
            o->msaa = (int)v;
        } else if (!strcmp(name, "--size")) {
            char wbuf[16];
            const char *x = strchr(val, 'x');
            long w = 0, h = 0;
            if (!x || (size_t)(x - val) >= sizeof wbuf) {
                snprintf(err, VIZ_ERRLEN, "--size '%s': expected WIDTHxHEIGHT, e.g. 1280x720", val);
                return VIZ_EARG;
            }
            memcpy(wbuf, val, (size_t)(x - val));
            wbuf[x - val] = '\0';
            if (sim_parse_long(wbuf, 64, 8192, &w) != SIM_OK ||
                sim_parse_long(x + 1, 64, 8192, &h) != SIM_OK) {
                snprintf(err, VIZ_ERRLEN, "--size '%s': width and height must be 64 to 8192", val);
                return VIZ_EARG;
            }
            o->width = (int)w;
            o->height = (int)h;
        }
    }
    int modes = (o->screenshot != NULL) + (o->record != NULL) + (o->bench_frames > 0);
    if (modes > 1) {
        snprintf(err, VIZ_ERRLEN, "choose one of --screenshot, --record and --bench-frames");
        return VIZ_EARG;
    }
    if (o->steps >= 0 && !o->screenshot && !o->record) {
        snprintf(err, VIZ_ERRLEN, "--steps goes with --screenshot or --record");
        return VIZ_EARG;
    }
    if (!o->data && (o->index || o->start || strcmp(o->split, "test"))) {
        snprintf(err, VIZ_ERRLEN, "--split, --index and --start go with --data");
        return VIZ_EARG;
    }
    if (o->data && (o->kind >= 0 || o->bodies)) {
        snprintf(err, VIZ_ERRLEN, "--sim and --bodies come from the dataset with --data");
        return VIZ_EARG;
    }
    if (o->screenshot && !*o->screenshot) {
        snprintf(err, VIZ_ERRLEN, "--screenshot needs a file name");
        return VIZ_EARG;
    }
    return VIZ_OK;
}

/* 1 if dir holds the viewer's shaders. */
static int has_shaders(const char *dir)
{
    char path[PATH_MAX];
    struct stat st;
    if (snprintf(path, sizeof path, "%s/shaders/sphere.vert", dir) >= (int)sizeof path)
        return 0;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int viz_find_assets(const char *given, char *out, size_t len, char err[VIZ_ERRLEN])
{
    if (given) {
        if (!has_shaders(given)) {
            snprintf(err, VIZ_ERRLEN, "--assets '%s' has no shaders/sphere.vert", given);
            return VIZ_EIO;
        }
        snprintf(out, len, "%s", given);
        return VIZ_OK;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        static const char *const rel[] = {"/../assets", "/../../assets", "/assets",
                                          "/../share/nbody-clofnet/assets"};
        for (size_t k = 0; k < sizeof rel / sizeof rel[0]; k++) {
            char cand[PATH_MAX];
            if (snprintf(cand, sizeof cand, "%s%s", exe, rel[k]) >= (int)sizeof cand)
                continue;
            if (has_shaders(cand)) {
                snprintf(out, len, "%s", cand);
                return VIZ_OK;
            }
        }
    }
    if (has_shaders(VIZ_ASSETS_DIR)) {
        snprintf(out, len, "%s", VIZ_ASSETS_DIR);
        return VIZ_OK;
    }
    snprintf(err, VIZ_ERRLEN,
             "cannot find the assets folder (shaders/, models/) next to the executable or at %s; "
             "pass --assets DIR",
             VIZ_ASSETS_DIR);
    return VIZ_EIO;
}

int viz_default_model(char *out, size_t len, const char *assets, int kind)
{
    const char *name = sim_kind_name(kind);
    if (!name)
        return VIZ_EARG;
    if (snprintf(out, len, "%s/models/step-%s5.ckpt", assets, name) >= (int)len)
        return VIZ_EARG;
    return VIZ_OK;
}

int viz_shipped_models(const char *assets, int kind, char paths[][1024], int max)
{
    static const char *const pattern[2] = {"%s/models/step-%s5.ckpt", "%s/models/egnn-step-%s5.ckpt"};
    const char *name = sim_kind_name(kind);
    int found = 0;
    if (!name)
        return 0;
    for (int k = 0; k < 2 && found < max; k++) {
        struct stat st;
        if (snprintf(paths[found], 1024, pattern[k], assets, name) >= 1024)
            continue;
        if (stat(paths[found], &st) == 0 && S_ISREG(st.st_mode))
            found++;
    }
    return found;
}
