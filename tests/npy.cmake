# npy.cmake: the .npy reader/writer, status names and dataset file names of the sim library.
add_cmocka_test(test_npy sim)
