/* nbody_export.c: nbody-export, a checkpoint's network as a NumPy .npz holding the reference
 * PyTorch module's state_dict (ClofNet_vel or EGNN_vel), for load_state_dict(strict=True). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "clofnet.h"

/* Print the usage. */
static void usage(FILE *f)
{
    fprintf(f,
            "usage: nbody-export --model CKPT --npz OUT.npz [--compress]\n"
            "Write the network of a checkpoint as the state_dict() of the reference PyTorch\n"
            "module (ClofNet_vel for clofnet, EGNN_vel for egnn; mouthful/ClofNet), float32,\n"
            "array names and shapes exactly as PyTorch holds them. In Python:\n"
            "  sd = {k: torch.from_numpy(v) for k, v in np.load('OUT.npz').items()}\n"
            "  model.load_state_dict(sd, strict=True)\n"
            "Position models only (the reference has no learned integrator).\n"
            "\n"
            "  --model CKPT   checkpoint written by nbody-train or nbody-import\n"
            "  --npz OUT      the .npz to write (replaced atomically)\n"
            "  --compress     deflate the entries, as np.savez_compressed [stored, as np.savez]\n"
            "  --help         this text\n");
}

/* Parse options, load the checkpoint, write the archive. */
int main(int argc, char **argv)
{
    const char *model = NULL, *npz = NULL;
    int compress = 0;
    static const struct option lo[] = {{"model", required_argument, 0, 'm'},
                                       {"npz", required_argument, 0, 'o'},
                                       {"compress", no_argument, 0, 'z'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'o': npz = optarg; break;
        case 'z': compress = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nbody-export: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!model || !npz) {
        fprintf(stderr, "nbody-export: --model CKPT and --npz OUT.npz are required (see --help)\n");
        return 2;
    }
    char err[CN_ERRLEN];
    struct cn_state s;
    struct cn_meta meta;
    if (cn_ckpt_load(model, NULL, &s, &meta, NULL, NULL, NULL, err) != CN_OK) {
        fprintf(stderr, "nbody-export: %s\n", err);
        return 1;
    }
    int st = cn_npz_export(npz, &s, compress, err);
    if (st != CN_OK) {
        fprintf(stderr, "nbody-export: %s: %s\n", model, err);
        cn_state_free(&s);
        return 1;
    }
    fprintf(stderr, "nbody-export: %s (%s, hidden %d, %d layers, %ld parameters) -> %s\n", model,
            cn_arch_name(s.cfg.arch), s.cfg.hidden, s.cfg.layers, s.n_params, npz);
    if (s.cfg.reflect_avg)
        fprintf(stderr, "nbody-export: note: %s is reflection-averaged; the exported weights are "
                "f's, so average f(x) and R f(R x) (R: x -> -x) in PyTorch to get its "
                "predictions\n", model);
    cn_state_free(&s);
    return 0;
}
