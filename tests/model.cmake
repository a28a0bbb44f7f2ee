# tests/model.cmake: model/ (ClofNet): gradient checks, equivariance, training, checkpoints,
# datasets and the programs nbody-train / nbody-eval (run as child processes).
add_cmocka_test(test_model model)
add_dependencies(test_model nbody-train nbody-eval)
# Rollouts of the shipped learned integrators (assets/models/step-*.ckpt).
add_cmocka_test(test_rollout model)
target_compile_definitions(test_rollout PRIVATE ASSETS_DIR="${CMAKE_SOURCE_DIR}/assets")
add_dependencies(test_rollout nbody-eval nbody-gen)
