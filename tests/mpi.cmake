# tests/mpi.cmake: nbody-gen and nbody-train under mpirun (test_mpi.c starts it), registered
# only where CMake found MPI and mpiexec; where MPI is absent, the single-process build must
# refuse to run as several ranks of a job instead of writing the same files R times.
if(MPI_C_FOUND AND MPIEXEC_EXECUTABLE AND TARGET model)
  add_cmocka_test(test_mpi model)
  target_compile_definitions(test_mpi PRIVATE MPIEXEC="${MPIEXEC_EXECUTABLE}")
  add_dependencies(test_mpi nbody-gen nbody-train)
  # sanitizer builds: OpenMPI's own allocations past MPI_Finalize are not ours (mpi-lsan.supp);
  # the slow unwinder follows their stacks through OpenMPI, built without frame pointers
  set_tests_properties(test_mpi PROPERTIES TIMEOUT 900 ENVIRONMENT
    "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/mpi-lsan.supp:print_suppressions=0:fast_unwind_on_malloc=0;ASAN_OPTIONS=fast_unwind_on_malloc=0;OMPI_MCA_mca_base_component_disable_dlclose=1")
elseif(TARGET nbody-gen)
  message(STATUS "MPI absent: test_mpi is not registered")
  add_test(NAME mpi_absent_refuses_ranks
           COMMAND env OMPI_COMM_WORLD_SIZE=2 $<TARGET_FILE:nbody-gen> --out mpi_absent_never)
  set_tests_properties(mpi_absent_refuses_ranks PROPERTIES
                       PASS_REGULAR_EXPRESSION "built without MPI"
                       FAIL_REGULAR_EXPRESSION "trajectories \\(")
endif()
# sim_mpi exports only its own prefix, as every library does (tests/symbols.cmake).
if(TARGET sim_mpi)
  add_test(NAME symbols_sim_mpi
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/check_symbols.sh $<TARGET_FILE:sim_mpi> sim_mpi_)
endif()
