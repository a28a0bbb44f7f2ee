# tests/model.cmake: model/ (ClofNet): gradient checks, equivariance, training, checkpoints,
# datasets and the programs nbody-train / nbody-eval (run as child processes).
add_cmocka_test(test_model model)
add_dependencies(test_model nbody-train nbody-eval nbody-gen)
target_compile_definitions(test_model PRIVATE ASSETS_DIR="${CMAKE_SOURCE_DIR}/assets")
# Rollouts of the shipped learned integrators (assets/models/step-*.ckpt).
add_cmocka_test(test_rollout model)
target_compile_definitions(test_rollout PRIVATE ASSETS_DIR="${CMAKE_SOURCE_DIR}/assets")
add_dependencies(test_rollout nbody-eval nbody-gen)
# Each block of model/nn_*.h alone against finite differences (the blocks' double build).
add_cmocka_test(test_blocks model)
target_include_directories(test_blocks PRIVATE ${CMAKE_SOURCE_DIR}/model)
# PyTorch state_dict archives (.npz) both ways, the zip reader's bounds, checkpoints' training-data
# record, nbody-export / nbody-import and nbody-eval's training-data note.
add_cmocka_test(test_npz model)
target_include_directories(test_npz PRIVATE ${CMAKE_SOURCE_DIR}/model)
target_compile_definitions(test_npz PRIVATE ASSETS_DIR="${CMAKE_SOURCE_DIR}/assets")
add_dependencies(test_npz nbody-export nbody-import nbody-eval nbody-train nbody-gen)
# Rollout-aware training of step models: unrolled gradients, pushforward, the centroid law of
# the momentum projection, and the nbody-train flags end to end.
add_cmocka_test(test_unroll model)
add_dependencies(test_unroll nbody-train nbody-eval nbody-gen)
# The recipe options of the accuracy sweep: one-cycle against PyTorch, clipping, warm-up, and
# reflection-averaged training (its gradient, E(3) equivariance, the flags end to end).
add_cmocka_test(test_recipe model)
add_dependencies(test_recipe nbody-train nbody-eval nbody-gen)
# scripts/sweep.sh on a tiny grid: rows, resume of a cut run, --table, refusals.
add_test(NAME sweep_script
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/sweep_script.sh ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR})
target_compile_definitions(test_recipe PRIVATE TEST_DATA_DIR="${CMAKE_CURRENT_SOURCE_DIR}/data")
