# Each library exports only its own prefix (checked with nm on the built archive).
foreach(pair "sim:sim_" "plot:plot_" "model:cn_" "viz:viz_")
  string(REPLACE ":" ";" parts ${pair})
  list(GET parts 0 lib)
  list(GET parts 1 prefix)
  if(TARGET ${lib})
    add_test(NAME symbols_${lib}
             COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/check_symbols.sh $<TARGET_FILE:${lib}> ${prefix})
  endif()
endforeach()
