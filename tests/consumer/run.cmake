# Builds the consumer project against hotswap through MODE (add_subdirectory or find_package,
# from a fresh install into WORK_DIR) and runs it.
file(REMOVE_RECURSE "${WORK_DIR}")
set(configure_args -G "${GENERATOR}" -DCMAKE_CXX_COMPILER=${CXX})
macro(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE output)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "failed: ${ARGN}\n${output}")
  endif()
endmacro()

if(MODE STREQUAL "add_subdirectory")
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/build" ${configure_args}
      -DHOTSWAP_SOURCE_DIR=${SOURCE_DIR})
else()
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/hotswap" ${configure_args} -DHOTSWAP_BUILD_TESTS=OFF
      -DHOTSWAP_BUILD_EXAMPLES=OFF -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix)
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/hotswap")  # hotswap-seal
  run(${CMAKE_COMMAND} --install "${WORK_DIR}/hotswap")
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/build" ${configure_args}
      -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
endif()
run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run("${WORK_DIR}/build/consumer")
if(NOT output STREQUAL "%Point{x: 7, label: nil}\npoint vsn 2: x = 7\n")
  message(FATAL_ERROR "the consumer printed: ${output}")
endif()
