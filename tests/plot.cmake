# tests/plot.cmake: the plot library alone (PNG, font, charts), linked without SDL or viz.
add_cmocka_test(test_plot plot)
