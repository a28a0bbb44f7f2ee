# tests/deps.cmake: libraries depend downward only. nbody-eval and the model library must not
# need SDL2 or the viewer (issue 7): checked on the link graph at configure time, and on the
# built files with ldd and nm by ctest. The same check run on nbody-view must fail.

# Every library reachable from target through its link interface, into out_var.
function(collect_link_deps target out_var)
  set(seen ${${out_var}})
  foreach(prop LINK_LIBRARIES INTERFACE_LINK_LIBRARIES)
    get_target_property(libs ${target} ${prop})
    if(NOT libs)
      continue()
    endif()
    foreach(lib ${libs})
      string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" lib "${lib}")
      if(lib IN_LIST seen)
        continue()
      endif()
      list(APPEND seen ${lib})
      if(TARGET ${lib})
        collect_link_deps(${lib} seen)
      endif()
    endforeach()
  endforeach()
  set(${out_var} ${seen} PARENT_SCOPE)
endfunction()

foreach(t model plot nbody-eval)
  if(NOT TARGET ${t})
    continue()
  endif()
  set(deps "")
  collect_link_deps(${t} deps)
  foreach(d ${deps})
    if(d STREQUAL "viz" OR d MATCHES "SDL")
      message(FATAL_ERROR "${t} links ${d} (through: ${deps}): model, plot and nbody-eval "
                          "must build without the viewer and SDL2")
    endif()
  endforeach()
endforeach()

add_test(NAME deps_eval_no_sdl
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/check_no_sdl.sh $<TARGET_FILE:nbody-eval>
                 $<TARGET_FILE:model> $<TARGET_FILE:plot>)
# The check itself can fail: the viewer links SDL2 and defines viz_ symbols.
if(TARGET nbody-view)
  add_test(NAME deps_check_detects_sdl
           COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/check_no_sdl.sh $<TARGET_FILE:nbody-view>)
  set_tests_properties(deps_check_detects_sdl PROPERTIES WILL_FAIL TRUE)
endif()
