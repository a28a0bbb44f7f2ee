/* nbody_import.c: nbody-import, a state_dict of the reference PyTorch ClofNet_vel or EGNN_vel
 * saved with np.savez as a checkpoint that nbody-eval and nbody-view use. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clofnet.h"
#include "sim.h"

/* Print the usage. */
static void usage(FILE *f)
{
    fprintf(f,
            "usage: nbody-import --npz IN.npz --arch clofnet|egnn --out CKPT [--sim S] [--bodies N]\n"
            "Turn the state_dict of a reference PyTorch ClofNet_vel (--arch clofnet) or EGNN_vel\n"
            "(--arch egnn) into a checkpoint. In Python:\n"
            "  np.savez('IN.npz', **{k: v.cpu().numpy() for k, v in model.state_dict().items()})\n"
            "Stored or deflated (np.savez_compressed) archives; width and depth are read from\n"
            "the shapes; every key must be there with its shape, float32, and no other.\n"
            "\n"
            "  --npz IN        the state_dict archive\n"
            "  --arch A        clofnet or egnn (required: the keys tell them apart, this checks)\n"
            "  --out CKPT      checkpoint to write (replaced atomically)\n"
            "  --sim S         setting the model was trained on: charged, static, dynamic [charged]\n"
            "  --bodies N      bodies per system it was trained on [5]\n"
            "  --help          this text\n");
}

/* Parse options, read the archive, write the checkpoint. */
int main(int argc, char **argv)
{
    const char *npz = NULL, *out = NULL, *arch_s = NULL, *sim = "charged";
    long bodies = 5;
    static const struct option lo[] = {{"npz", required_argument, 0, 'i'},
                                       {"arch", required_argument, 0, 'a'},
                                       {"out", required_argument, 0, 'o'},
                                       {"sim", required_argument, 0, 's'},
                                       {"bodies", required_argument, 0, 'b'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'i': npz = optarg; break;
        case 'a': arch_s = optarg; break;
        case 'o': out = optarg; break;
        case 's': sim = optarg; break;
        case 'b':
            if (sim_parse_long(optarg, 2, 100000, &bodies) != SIM_OK) {
                fprintf(stderr, "nbody-import: --bodies '%s' must be an integer in 2..100000\n",
                        optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nbody-import: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!npz || !out || !arch_s) {
        fprintf(stderr, "nbody-import: --npz IN.npz, --arch clofnet|egnn and --out CKPT are "
                        "required (see --help)\n");
        return 2;
    }
    int arch = cn_arch_parse(arch_s);
    if (arch < 0) {
        fprintf(stderr, "nbody-import: --arch '%s' must be clofnet or egnn\n", arch_s);
        return 2;
    }
    int kind = sim_kind_parse(sim);
    if (kind < 0) {
        fprintf(stderr, "nbody-import: --sim '%s' must be charged, static or dynamic\n", sim);
        return 2;
    }
    char err[CN_ERRLEN];
    struct cn_state s;
    if (cn_npz_import(npz, arch, &s, err) != CN_OK) {
        fprintf(stderr, "nbody-import: %s\n", err);
        return 1;
    }
    /* a position model: frame 30 -> 40, 100 simulation steps per frame */
    struct cn_meta meta = {.sim_kind = kind, .n_bodies = (int)bodies,
                           .horizon_steps = 100 * (CN_FRAME_OUT - CN_FRAME_IN)};
    int st = cn_ckpt_save(out, &s, &meta, 0, NULL, 0, err);
    if (st != CN_OK) {
        fprintf(stderr, "nbody-import: %s\n", err);
        cn_state_free(&s);
        return 1;
    }
    fprintf(stderr, "nbody-import: %s (%s, hidden %d, %d layers, %ld parameters) -> %s\n", npz,
            cn_arch_name(arch), s.cfg.hidden, s.cfg.layers, s.n_params, out);
    cn_state_free(&s);
    return 0;
}
