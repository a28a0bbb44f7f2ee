/* hud.c: the words on screen (headings, setting, time, error, help) composed from the
 * application state; pure, so the renderer only places strings. */
#include "viz.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Paper name of each setting (SPEC §1). */
static const char *const setting_desc[3] = {"ES", "G+ES", "L+ES"};

static const char *const help_text[] = {
    "Controls",
    "",
    "drag        rotate (all panels; stops following)",
    "wheel       zoom (stops following)",
    "F           camera follows the bodies on / off",
    "G           truth overlaid on the learned panels",
    "E           plot: position error / energy",
    "Space       pause / run",
    "Right       one learned step (pauses)",
    "Left        one step back (pauses)",
    "timeline    drag to scrub the recent past",
    "R           new random system",
    "N / P       next / previous dataset trajectory",
    "1 / 2 / 3   charged / static / dynamic",
    "+ / -       faster / slower",
    "T           trails on / off",
    "H           this help",
    "F5          reload shaders",
    "Esc         quit",
    "",
    "Left panel: the truth (simulator or dataset).",
    "Others: learned models from the same start,",
    "one model call per 100 simulation steps,",
    "drawn interpolated in between. A position",
    "model predicts frame 40 at frame 30 (rings).",
    "Red timeline: past the training data (t 4.9).",
};

void viz_hud_compose(struct viz_hud *h, const struct viz_app *a, int follow)
{
    memset(h, 0, sizeof *h);
    int kind = a->kind >= 0 && a->kind < 3 ? a->kind : 0;
    h->panels = 1 + a->learned;
    h->follow = follow;
    snprintf(h->title[0], VIZ_HUD_LEN, "GROUND TRUTH");
    if (a->data)
        snprintf(h->sub[0], VIZ_HUD_LEN, "%s #%d/%d, frame %d", a->data->split, a->traj,
                 a->data->count, a->start_frame);
    else
        snprintf(h->sub[0], VIZ_HUD_LEN, "simulator, kick-drift, dt %g", SIM_DT);
    for (int k = 0; k < a->learned; k++) {
        const struct viz_learned *p = &a->panel[k];
        char *title = h->title[k + 1], *sub = h->sub[k + 1], *e = h->error[k + 1];
        snprintf(title, VIZ_HUD_LEN, "%s", p->name);
        if (p->position) {
            snprintf(sub, VIZ_HUD_LEN, "predicts frame %d at %d", VIZ_POS_FRAME_OUT, VIZ_POS_FRAME_IN);
            double t_in = VIZ_FRAME_STEPS * (VIZ_POS_FRAME_IN + 1) * SIM_DT;
            double t_out = VIZ_FRAME_STEPS * (VIZ_POS_FRAME_OUT + 1) * SIM_DT;
            if (!p->ok)
                snprintf(e, VIZ_HUD_LEN, "prediction failed");
            else if (!p->predicted && a->start_step > VIZ_FRAME_STEPS * (VIZ_POS_FRAME_IN + 1))
                snprintf(e, VIZ_HUD_LEN, "no prediction: start > %d", VIZ_POS_FRAME_IN);
            else if (!p->predicted)
                snprintf(e, VIZ_HUD_LEN, "waiting for frame %d (t %.1f)", VIZ_POS_FRAME_IN, t_in);
            else if (p->mse_step < VIZ_FRAME_STEPS * (VIZ_POS_FRAME_OUT + 1))
                snprintf(e, VIZ_HUD_LEN, "rings: frame %d (t %.1f)", VIZ_POS_FRAME_OUT, t_out);
            else
                snprintf(e, VIZ_HUD_LEN, "frame-%d MSE %.3e", VIZ_POS_FRAME_OUT, p->mse);
        } else {
            snprintf(sub, VIZ_HUD_LEN, "1 call = %d steps", p->stepper.horizon);
            if (p->ok)
                snprintf(e, VIZ_HUD_LEN, "MSE %.3e  (t %.1f)", p->mse, p->mse_step * SIM_DT);
            else
                snprintf(e, VIZ_HUD_LEN, "stopped  (last MSE %.3e)", p->mse);
        }
    }
    if (a->data)
        snprintf(h->info[0], VIZ_HUD_LEN, "%s (%s), %d bodies, replay", sim_kind_name(kind), setting_desc[kind], a->n);
    else
        snprintf(h->info[0], VIZ_HUD_LEN, "%s (%s), %d bodies, seed %u", sim_kind_name(kind), setting_desc[kind],
                 a->n, (unsigned)a->seed);
    h->beyond = a->step > a->horizon_step;
    snprintf(h->info[1], VIZ_HUD_LEN, "t %.3f  step %ld  %d/s%s%s", a->t * SIM_DT, a->step, a->speed,
             a->paused ? "  PAUSED" : "", follow ? "" : "  camera fixed (F)");
    if (kind == SIM_CHARGED)
        snprintf(h->info[2], VIZ_HUD_LEN, "Coulomb forces, no field");
    else if (kind == SIM_STATIC)
        snprintf(h->info[2], VIZ_HUD_LEN, "field g %g along +z (green)", SIM_GRAVITY);
    else if (kind == SIM_DYNAMIC)
        snprintf(h->info[2], VIZ_HUD_LEN, "field B = (%g, %g, %g) (violet)", SIM_BFIELD, SIM_BFIELD,
                 SIM_BFIELD);
    h->field = kind == SIM_STATIC ? 1 : kind == SIM_DYNAMIC ? 2 : 0;
    if (h->beyond)
        snprintf(h->timeline, VIZ_HUD_LEN, "BEYOND THE TRAINING HORIZON: data ends at t %.1f", a->horizon_step * SIM_DT);
    else
        snprintf(h->timeline, VIZ_HUD_LEN, "training data up to t %.1f", a->horizon_step * SIM_DT);
    snprintf(h->status, VIZ_HUD_LEN, "%.*s", VIZ_HUD_LEN - 1, a->status);
    int lines = (int)(sizeof help_text / sizeof help_text[0]);
    for (int k = 0; k < lines && k < VIZ_HUD_LINES; k++)
        snprintf(h->help[k], VIZ_HUD_LEN, "%s", help_text[k]);
    h->help_lines = lines < VIZ_HUD_LINES ? lines : VIZ_HUD_LINES;
}

void viz_timeline_span(const struct viz_app *a, double *t0, double *t1)
{
    *t0 = a->start_step * SIM_DT;
    double end = a->t * SIM_DT, hz = 1.1 * a->horizon_step * SIM_DT;
    long first, last;
    if (viz_app_ring_range(a, &first, &last) && last * SIM_DT > end)
        end = last * SIM_DT;
    if (hz > end)
        end = hz;
    if (end < *t0 + 1.0)
        end = *t0 + 1.0;
    *t1 = end;
}

void viz_timeline_bar(const struct viz_layout *l, float *x0, float *x1)
{
    float m = 8.0f * (float)l->text_scale;
    *x0 = (float)l->timeline.x + m;
    *x1 = (float)(l->timeline.x + l->timeline.w) - m;
    if (*x1 < *x0 + 1.0f)
        *x1 = *x0 + 1.0f;
}

long viz_timeline_step(const struct viz_app *a, const struct viz_layout *l, float x)
{
    double t0, t1;
    float x0, x1;
    viz_timeline_span(a, &t0, &t1);
    viz_timeline_bar(l, &x0, &x1);
    double f = (x - x0) / (x1 - x0);
    f = f < 0.0 ? 0.0 : f > 1.0 ? 1.0 : f;
    return (long)floor((t0 + f * (t1 - t0)) / SIM_DT + 0.5);
}

/* The legend's name of panel k (0 truth, then the learned panels): the first word of its
 * title ("ClofNet"), or, when another learned panel's title starts with the same word, its
 * second word, the model's file without ".ckpt" ("step-charged5"). */
void viz_legend_name(const struct viz_app *a, int k, char *out, size_t len)
{
    if (len == 0)
        return;
    out[0] = '\0';
    const char *name = k == 0 ? "truth" : a->panel[k - 1].name;
    size_t w = strcspn(name, " ");
    int clash = 0;
    for (int j = 0; j < a->learned && k > 0; j++)
        clash |= j != k - 1 && strncmp(a->panel[j].name, name, w) == 0 &&
                 (a->panel[j].name[w] == ' ' || a->panel[j].name[w] == '\0');
    if (clash && name[w] == ' ') {
        name += w + 1;
        w = strcspn(name, " ");
        if (w > 5 && strncmp(name + w - 5, ".ckpt", 5) == 0)
            w -= 5;
    }
    if (w >= len)
        w = len - 1;
    memcpy(out, name, w);
    out[w] = '\0';
}
