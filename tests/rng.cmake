# tests/rng.cmake: sim/rng.c against NumPy's legacy RandomState (tests/data/numpy_golden.h).
add_cmocka_test(test_rng sim)
