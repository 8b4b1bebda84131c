# Builds the consumer project against hotswap through MODE (add_subdirectory or find_package,
# from a fresh install into WORK_DIR) and runs it. find_package installs hotswap with the
# README's commands as shown (its "Installing" section: the packages, checked against
# tools/install-deps; configure, build and install, run into a prefix of their own; then the
# consumer built with pkg-config as shown, run too).
cmake_minimum_required(VERSION 3.21)  # IN_LIST, list(POP_FRONT)
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
  # The README's "Installing" section, its ```sh blocks a list of lines each.
  file(READ "${SOURCE_DIR}/README.md" readme)
  string(FIND "${readme}" "\n## Installing\n" begin)
  string(SUBSTRING "${readme}" ${begin} -1 section)
  string(FIND "${section}" "\n## Using it from CMake" end)
  string(SUBSTRING "${section}" 0 ${end} section)
  string(REGEX MATCHALL "```sh\n[^`]*```" blocks "${section}")
  list(LENGTH blocks count)
  if(NOT count EQUAL 3)
    message(FATAL_ERROR "the README's Installing section has ${count} sh blocks, not 3 (packages, install, pkg-config)")
  endif()
  foreach(index RANGE 2)
    list(GET blocks ${index} block)
    string(REGEX REPLACE "^```sh\n|\n```$" "" block "${block}")
    string(REPLACE "\n" ";" block_${index} "${block}")
  endforeach()

  # The packages it shows are those tools/install-deps installs (which CI runs).
  file(STRINGS "${SOURCE_DIR}/tools/install-deps" deps REGEX "^packages=")
  string(REGEX MATCH "\"([^\"]*)\"" deps "${deps}")
  separate_arguments(deps UNIX_COMMAND "${CMAKE_MATCH_1}")
  separate_arguments(shown UNIX_COMMAND "${block_0}")
  list(POP_FRONT shown sudo apt_get install)
  if(NOT "${sudo} ${apt_get} ${install}" STREQUAL "sudo apt-get install" OR NOT shown)
    message(FATAL_ERROR "the README's packages are not one apt-get install line: ${block_0}")
  endif()
  foreach(package IN LISTS shown)
    if(NOT "${package}" IN_LIST deps)
      message(FATAL_ERROR "the README shows ${package}, which tools/install-deps does not install")
    endif()
  endforeach()

  # The three commands, as shown, from the repository: the build directory is one of this test's,
  # the prefix its own (the README says how), and no sudo.
  list(LENGTH block_1 count)
  if(NOT count EQUAL 3)
    message(FATAL_ERROR "the README's install is ${count} lines, not 3: ${block_1}")
  endif()
  foreach(line IN LISTS block_1)
    separate_arguments(command UNIX_COMMAND "${line}")
    list(REMOVE_ITEM command sudo)
    list(TRANSFORM command REPLACE "^build/install$" "${WORK_DIR}/hotswap")
    list(TRANSFORM command REPLACE "^cmake$" "${CMAKE_COMMAND}")
    if("-S" IN_LIST command)
      list(APPEND command -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix)
    endif()
    execute_process(COMMAND ${command} WORKING_DIRECTORY "${SOURCE_DIR}" RESULT_VARIABLE status
                    OUTPUT_VARIABLE output ERROR_VARIABLE output)
    if(NOT status EQUAL 0)
      message(FATAL_ERROR "the README's `${line}` failed:\n${output}")
    endif()
  endforeach()
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/build" ${configure_args}
      -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
endif()
run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run("${WORK_DIR}/build/consumer")
set(expected "%Point{x: 7, label: nil}\npoint vsn 2: x = 7\n")
if(NOT output STREQUAL expected)
  message(FATAL_ERROR "the consumer printed: ${output}")
endif()

if(MODE STREQUAL "find_package")
  # The README's pkg-config line, as shown, on the consumer's main.cpp (and the module CMake built).
  file(GLOB_RECURSE pc_files "${WORK_DIR}/prefix/*/pkgconfig/hotswap.pc")
  if(NOT pc_files)
    message(FATAL_ERROR "no pkgconfig/hotswap.pc installed in ${WORK_DIR}/prefix")
  endif()
  get_filename_component(pc_dir "${pc_files}" DIRECTORY)
  list(LENGTH block_2 count)
  if(NOT count EQUAL 1 OR NOT block_2 MATCHES "pkg-config --cflags")
    message(FATAL_ERROR "the README's pkg-config block is not one line that runs pkg-config --cflags: ${block_2}")
  endif()
  # With the compiler that built the module (a module and its program are built by one: the ABI
  # check says so), where the README says g++.
  string(REGEX REPLACE "^g\\+\\+ " "${CXX} " block_2 "${block_2}")
  run(${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${pc_dir} sh -c
      "cd '${SOURCE_DIR}/tests/consumer' && ${block_2} '-DPOINT_MODULE=\"${WORK_DIR}/build/point_module.so\"' -o '${WORK_DIR}/consumer_pkg_config'")
  run("${WORK_DIR}/consumer_pkg_config")
  if(NOT output STREQUAL expected)
    message(FATAL_ERROR "the consumer built with pkg-config printed: ${output}")
  endif()
endif()
