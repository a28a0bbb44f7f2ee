/* egnn_torch_golden.h: output positions of the reference PyTorch EGNN_vel (mouthful/ClofNet
 * newtonian/egnn.py with models/gcl.py E_GCL_vel; in_node_nf 1, in_edge_nf 2, hidden 64, 4
 * layers, recurrent, norm_diff True, as its README trains it), run in float64 with torch 1.13 on
 * the weights and inputs test_egnn_matches_pytorch makes (cn_param_init seed 123 moved by
 * 0.1 N(0, 1) from seed 223; 2 graphs of 5 bodies from seed 124; edges i -> j grouped by
 * receiver as cn_ws_create lists them; edge attributes [q_i q_j, |x_i - x_j|^2] and |v_i|
 * computed in float64 too). The script
 * that ran the reference is not part of this repository: these 30 numbers are its output. */
static const double egnn_torch_golden[30] = {
    -0.34513149174209362, 2.9981456234593642, -3.8549136548806979,
    2.9846831215211762, 0.39039241495083865, -0.88501762817645002,
    0.4761919310510444, -1.81167681514726, 2.4792352562310453,
    -0.72542304212422493, -0.40387710911679742, -1.918180906016332,
    1.5754733089970463, -0.40568600360197699, -1.6391038084798013,
    0.17789589876452983, -2.6702563569229243, 0.4140650032627316,
    -0.073594570456771119, -2.2966512551812301, 2.088090656335079,
    4.2357618131302068, -0.26105949826805541, 1.4060841558322186,
    -2.8164127149276297, 2.5546566031752214, 1.9655091408958349,
    -0.28325067990750763, -0.049193981482063442, -1.2820330060983003,
};
