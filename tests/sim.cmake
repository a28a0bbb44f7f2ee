# Tests of sim/: physics and scheme, and the nbody-gen program end to end.
add_cmocka_test(test_sim sim)
add_cmocka_test(test_gen sim)
add_dependencies(test_gen nbody-gen)
# The published seed streams against their generators (tests/data/streams_golden.h).
add_cmocka_test(test_streams sim)
add_dependencies(test_streams nbody-gen)
