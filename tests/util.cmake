# tests/util.cmake: the sim library's shared helpers: atomic file writes (sim_atomic), command-line
# numbers, quantiles and the [3][n] <-> [n][3] layout conversion.
add_cmocka_test(test_atomic sim)
add_cmocka_test(test_util sim)
