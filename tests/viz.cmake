# tests/viz.cmake: the viewer's tests (built only with SDL2). test_viz: camera, input, options,
# app state and model loading without a window. test_viz_view: nbody-view end to end under its own Xvfb.
if(NOT TARGET viz)
  return()
endif()
set(VIZ_TEST_ASSETS ${CMAKE_SOURCE_DIR}/assets CACHE PATH "assets folder (shaders, models) for test_viz_view")

add_cmocka_test(test_viz viz model)
target_compile_definitions(test_viz PRIVATE ASSETS_DIR="${CMAKE_SOURCE_DIR}/assets")

add_cmocka_test(test_viz_view viz plot)
add_dependencies(test_viz_view nbody-view nbody-gen)
target_compile_definitions(test_viz_view PRIVATE NBODY_VIEW="$<TARGET_FILE:nbody-view>"
                           NBODY_GEN="$<TARGET_FILE:nbody-gen>"
                           ASSETS_DIR="${VIZ_TEST_ASSETS}")
# Leak reports from inside Mesa and SDL (driver caches freed at exit or never) are not ours.
set_tests_properties(test_viz_view PROPERTIES TIMEOUT 600
  ENVIRONMENT "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/viz-lsan.supp:print_suppressions=0")
