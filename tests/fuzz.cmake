# tests/fuzz.cmake: the libFuzzer harnesses of tests/fuzz/ (the .npy, checkpoint, resume-record
# and dataset-sidecar readers), built when clang with libFuzzer is there, as a project of their
# own (tests/fuzz/CMakeLists.txt: gcc's sanitizer runtime cannot link with libFuzzer). Each
# harness gets a ctest entry that runs it FUZZ_SECONDS on its seed corpus and fails on any
# crash; without clang one entry says so and is skipped. Long runs: tests/fuzz/README.md.
option(FUZZ "Build and run the libFuzzer harnesses of tests/fuzz/ when clang is available" ON)
set(FUZZ_SECONDS 30 CACHE STRING "Seconds each fuzzing harness runs under ctest")
set(FUZZ_DIR ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
set(FUZZ_CC "")
set(FUZZ_WHY "FUZZ is OFF")
if(FUZZ)
  set(FUZZ_WHY "no clang found")
  if(CMAKE_C_COMPILER_ID MATCHES "Clang")
    set(FUZZ_CC ${CMAKE_C_COMPILER})
  else()
    find_program(FUZZ_CLANG NAMES clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14)
    if(FUZZ_CLANG)
      set(FUZZ_CC ${FUZZ_CLANG})
    endif()
  endif()
  if(FUZZ_CC)
    # libFuzzer, the sanitizers and OpenMP must all link (libclang-rt-*-dev, libomp-*-dev)
    set(probe ${CMAKE_BINARY_DIR}/fuzz-probe.c)
    file(WRITE ${probe} "#include <stddef.h>\n#include <stdint.h>\n"
         "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n")
    execute_process(COMMAND ${FUZZ_CC} -fsanitize=fuzzer,address,undefined -fopenmp ${probe}
                            -o ${CMAKE_BINARY_DIR}/fuzz-probe
                    RESULT_VARIABLE probe_rc OUTPUT_QUIET ERROR_QUIET)
    if(NOT probe_rc EQUAL 0)
      set(FUZZ_WHY "${FUZZ_CC} cannot link libFuzzer, the sanitizers and OpenMP")
      set(FUZZ_CC "")
    endif()
  endif()
endif()

if(FUZZ_CC)
  include(ExternalProject)
  ExternalProject_Add(fuzz_harnesses
    SOURCE_DIR ${FUZZ_DIR}
    BINARY_DIR ${CMAKE_BINARY_DIR}/fuzz
    CMAKE_ARGS -DCMAKE_C_COMPILER=${FUZZ_CC} -DCMAKE_BUILD_TYPE= -DPROJECT_ROOT=${CMAKE_SOURCE_DIR}
    INSTALL_COMMAND ""
    BUILD_ALWAYS ON)
  math(EXPR fuzz_timeout "${FUZZ_SECONDS} * 3 + 120")
  foreach(h npy manifest ckpt record)
    set(dict "")
    if(EXISTS ${FUZZ_DIR}/${h}.dict)
      set(dict ${FUZZ_DIR}/${h}.dict)
    endif()
    add_test(NAME fuzz_${h}
             COMMAND sh ${FUZZ_DIR}/run.sh ${CMAKE_BINARY_DIR}/fuzz/fuzz_${h}
                     ${FUZZ_DIR}/corpus/${h} ${FUZZ_SECONDS} ${dict})
    set_tests_properties(fuzz_${h} PROPERTIES TIMEOUT ${fuzz_timeout} LABELS fuzz)
  endforeach()
else()
  message(STATUS "tests/fuzz: ${FUZZ_WHY}: the fuzzing harnesses are not built "
                 "(apt-get install clang libclang-rt-14-dev libomp-14-dev)")
  add_test(NAME fuzz_skipped
           COMMAND sh -c "echo 'tests/fuzz: ${FUZZ_WHY}: fuzzing skipped (apt-get install clang libclang-rt-14-dev libomp-14-dev)'; exit 77")
  set_tests_properties(fuzz_skipped PROPERTIES SKIP_RETURN_CODE 77 LABELS fuzz)
endif()
