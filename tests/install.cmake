# tests/install.cmake: cmake --install into a temporary prefix, then a program outside the tree
# (tests/consumer) built against it with pkg-config and with find_package, and run.
add_test(NAME install_consumer
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/consumer/run.sh ${CMAKE_BINARY_DIR}
                 ${CMAKE_SOURCE_DIR}/assets/models/step-charged5.ckpt)
