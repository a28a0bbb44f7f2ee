/* input.c: turns one frame of key and mouse state into viewer actions, and the
 * speed ladder; pure functions, the window system only fills struct viz_input. */
#include "viz.h"

#include <string.h>

void viz_input_begin_frame(struct viz_input *in)
{
    memcpy(in->prev, in->down, sizeof in->prev);
    memset(in->tap, 0, sizeof in->tap);
    in->button_prev = in->button;
    in->mouse_dx = in->mouse_dy = 0.0f;
    in->wheel = 0.0f;
}

int viz_input_pressed(const struct viz_input *in, int key)
{
    if (key < 0 || key >= VIZ_KEY_COUNT)
        return 0;
    return in->tap[key] || (in->down[key] && !in->prev[key]);
}

void viz_input_map(const struct viz_input *in, struct viz_actions *out)
{
    memset(out, 0, sizeof *out);
    out->quit = in->quit || viz_input_pressed(in, VIZ_KEY_ESCAPE);
    out->toggle_pause = viz_input_pressed(in, VIZ_KEY_SPACE);
    out->single_step = viz_input_pressed(in, VIZ_KEY_RIGHT);
    out->new_system = viz_input_pressed(in, VIZ_KEY_R);
    out->set_kind = -1;
    if (viz_input_pressed(in, VIZ_KEY_1))
        out->set_kind = 0;
    else if (viz_input_pressed(in, VIZ_KEY_2))
        out->set_kind = 1;
    else if (viz_input_pressed(in, VIZ_KEY_3))
        out->set_kind = 2;
    out->speed = viz_input_pressed(in, VIZ_KEY_PLUS) - viz_input_pressed(in, VIZ_KEY_MINUS);
    out->toggle_trails = viz_input_pressed(in, VIZ_KEY_T);
    out->toggle_help = viz_input_pressed(in, VIZ_KEY_H);
    out->reload_shaders = viz_input_pressed(in, VIZ_KEY_F5);
    out->toggle_follow = viz_input_pressed(in, VIZ_KEY_F);
    out->toggle_overlay = viz_input_pressed(in, VIZ_KEY_G);
    out->toggle_energy = viz_input_pressed(in, VIZ_KEY_E);
    out->trajectory = viz_input_pressed(in, VIZ_KEY_N) - viz_input_pressed(in, VIZ_KEY_P);
    out->step_back = viz_input_pressed(in, VIZ_KEY_LEFT);
    /* A drag needs the button held in both frames: the motion of the frame in which
     * it went down happened before the press. */
    if (in->button && in->button_prev) {
        out->rotate_dx = in->mouse_dx;
        out->rotate_dy = in->mouse_dy;
    }
    out->zoom = in->wheel;
}

static const int speed_ladder[] = {10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000};
#define SPEED_RUNGS ((int)(sizeof speed_ladder / sizeof speed_ladder[0]))

int viz_speed_step(int speed, int dir)
{
    if (dir > 0) {
        for (int k = 0; k < SPEED_RUNGS; k++)
            if (speed_ladder[k] > speed)
                return speed_ladder[k];
        return VIZ_SPEED_MAX;
    }
    if (dir < 0) {
        for (int k = SPEED_RUNGS - 1; k >= 0; k--)
            if (speed_ladder[k] < speed)
                return speed_ladder[k];
        return VIZ_SPEED_MIN;
    }
    return speed < VIZ_SPEED_MIN ? VIZ_SPEED_MIN : speed > VIZ_SPEED_MAX ? VIZ_SPEED_MAX : speed;
}
