# tests/reliability.cmake: bad inputs and interruptions of the model programs (issue 12):
# checkpoints, datasets, training states, messages, signals (the library and the programs).
if(TARGET model)
  add_cmocka_test(test_reliability model plot)
  target_include_directories(test_reliability PRIVATE ${CMAKE_SOURCE_DIR}/model)
  target_compile_definitions(test_reliability PRIVATE ASSETS_DIR="${CMAKE_SOURCE_DIR}/assets")
  add_dependencies(test_reliability nbody-gen nbody-train nbody-eval)
  set_tests_properties(test_reliability PROPERTIES TIMEOUT 900)
endif()
# The bad-input matrix: every program on every bad input ends clean (tests/bad_inputs.sh).
if(TARGET nbody-eval)
  add_test(NAME bad_input_matrix
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/bad_inputs.sh ${CMAKE_BINARY_DIR}
                   ${CMAKE_SOURCE_DIR}/assets)
  set_tests_properties(bad_input_matrix PROPERTIES TIMEOUT 600)
endif()
