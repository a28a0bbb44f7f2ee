# cmake/install.cmake: what cmake --install puts under the prefix: the static libraries sim,
# plot, model (as libnbody-*.a), their public headers in include/nbody (sim.h, plot.h,
# clofnet.h; no internal header), pkg-config files, a CMake package config and the programs.
set_target_properties(sim PROPERTIES OUTPUT_NAME nbody-sim PUBLIC_HEADER ${CMAKE_SOURCE_DIR}/sim/sim.h)
set_target_properties(plot PROPERTIES OUTPUT_NAME nbody-plot PUBLIC_HEADER ${CMAKE_SOURCE_DIR}/plot/plot.h)
set_target_properties(model PROPERTIES OUTPUT_NAME nbody-model PUBLIC_HEADER ${CMAKE_SOURCE_DIR}/model/clofnet.h)
foreach(lib sim plot model)
  target_include_directories(${lib} INTERFACE $<INSTALL_INTERFACE:include/nbody>)
endforeach()
install(TARGETS sim plot model EXPORT nbody-clofnetTargets
        ARCHIVE DESTINATION lib
        PUBLIC_HEADER DESTINATION include/nbody)
install(TARGETS nbody-gen nbody-train nbody-eval nbody-export nbody-import
        RUNTIME DESTINATION bin)
install(EXPORT nbody-clofnetTargets NAMESPACE nbody:: DESTINATION lib/cmake/nbody-clofnet)
include(CMakePackageConfigHelpers)
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/nbody-clofnetConfig.cmake.in
  ${CMAKE_BINARY_DIR}/nbody-clofnetConfig.cmake INSTALL_DESTINATION lib/cmake/nbody-clofnet)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/nbody-clofnetConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/nbody-clofnetConfig.cmake
              ${CMAKE_BINARY_DIR}/nbody-clofnetConfigVersion.cmake
        DESTINATION lib/cmake/nbody-clofnet)
foreach(pc nbody-sim nbody-plot nbody-model)
  configure_file(${CMAKE_SOURCE_DIR}/cmake/${pc}.pc.in ${CMAKE_BINARY_DIR}/${pc}.pc @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/${pc}.pc DESTINATION lib/pkgconfig)
endforeach()
