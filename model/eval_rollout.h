/* eval_rollout.h: the --rollout mode of nbody-eval (program code, not part of the library:
 * it prints, and links the plot library for its chart, not the viewer). */
#ifndef EVAL_ROLLOUT_H
#define EVAL_ROLLOUT_H

struct eval_rollout_opts {
    const char *model, *data, *split;
    const char *prefix; /* writes {prefix}.csv and {prefix}.png */
    int start, steps, threads, json;
    long max_traj;      /* trajectories rolled out, <= 0: all */
    int project_energy; /* 1: cn_project_energy after every learned step */
};

/* Run, print and write the files; returns the process exit status. */
int eval_rollout(const struct eval_rollout_opts *o);

#endif
