# tests/reliability.cmake: bad inputs and interruptions of the model programs (issue 12):
# checkpoints, datasets, training states, messages, signals (the library and the programs).
if(TARGET model)
  add_cmocka_test(test_reliability model plot)
  target_include_directories(test_reliability PRIVATE ${CMAKE_SOURCE_DIR}/model)
  target_compile_definitions(test_reliability PRIVATE ASSETS_DIR="${CMAKE_SOURCE_DIR}/assets")
  add_dependencies(test_reliability nbody-gen nbody-train nbody-eval)
  set_tests_properties(test_reliability PROPERTIES TIMEOUT 900)
endif()
