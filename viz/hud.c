/* hud.c: the words on screen (headings, setting, time, error, help) composed from the
 * application state; pure, so the renderer only places strings. */
#include "viz.h"

#include <stdio.h>
#include <string.h>

/* Paper name of each setting (SPEC §1). */
static const char *const setting_desc[3] = {"ES", "G+ES", "L+ES"};

static const char *const help_text[] = {
    "Controls",
    "",
    "drag        rotate (both views)",
    "wheel       zoom",
    "Space       pause / run",
    "Right       one learned step (pauses)",
    "R           new random system",
    "1 / 2 / 3   charged / static / dynamic",
    "+ / -       faster / slower",
    "T           trails on / off",
    "H           this help",
    "F5          reload shaders",
    "Esc         quit",
    "",
    "Left: the simulator (ground truth).",
    "Right: the learned integrator from the",
    "same start, one model call per learned",
    "step (100 simulation steps), drawn",
    "interpolated in between.",
    "Plot: position MSE between the two.",
};

void viz_hud_compose(struct viz_hud *h, const struct viz_app *a, const char *model_name)
{
    memset(h, 0, sizeof *h);
    int kind = a->kind >= 0 && a->kind < 3 ? a->kind : 0;
    snprintf(h->title[0], VIZ_HUD_LEN, "GROUND TRUTH");
    snprintf(h->sub[0], VIZ_HUD_LEN, "simulator, kick-drift, dt %g", SIM_DT);
    snprintf(h->title[1], VIZ_HUD_LEN, "LEARNED");
    snprintf(h->sub[1], VIZ_HUD_LEN, "%s, 1 call = %d steps", model_name ? model_name : "model",
             a->stepper.horizon);
    snprintf(h->info[0], VIZ_HUD_LEN, "%s (%s)  |  %d bodies  |  seed %u", sim_kind_name(kind),
             setting_desc[kind], a->n, (unsigned)a->seed);
    snprintf(h->info[1], VIZ_HUD_LEN, "t %.3f  step %ld  |  %d steps/s%s", a->t * SIM_DT, a->step,
             a->speed, a->paused ? "  |  PAUSED" : "");
    if (kind == SIM_CHARGED)
        snprintf(h->info[2], VIZ_HUD_LEN, "force: Coulomb between every pair, no field");
    else if (kind == SIM_STATIC)
        snprintf(h->info[2], VIZ_HUD_LEN, "field: %g along +z (green arrows)", SIM_GRAVITY);
    else if (kind == SIM_DYNAMIC)
        snprintf(h->info[2], VIZ_HUD_LEN, "field: B = (%g, %g, %g) (violet arrows)", SIM_BFIELD, SIM_BFIELD,
                 SIM_BFIELD);
    h->field = kind == SIM_STATIC ? 1 : kind == SIM_DYNAMIC ? 2 : 0;
    if (a->learned_ok)
        snprintf(h->error, VIZ_HUD_LEN, "position MSE %.3e  (t %.1f)", a->mse, a->mse_step * SIM_DT);
    else
        snprintf(h->error, VIZ_HUD_LEN, "learned side stopped  (last MSE %.3e)", a->mse);
    snprintf(h->status, VIZ_HUD_LEN, "%.*s", VIZ_HUD_LEN - 1, a->status);
    int lines = (int)(sizeof help_text / sizeof help_text[0]);
    for (int k = 0; k < lines && k < VIZ_HUD_LINES; k++)
        snprintf(h->help[k], VIZ_HUD_LEN, "%s", help_text[k]);
    h->help_lines = lines < VIZ_HUD_LINES ? lines : VIZ_HUD_LINES;
}
