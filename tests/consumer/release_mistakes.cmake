# hotswap_add_release refuses, when the consumer project is configured, a module that is no
# target and the program's own target, each with a message that says what to do (and no
# generator-expression error at generate time).
#
#     cmake -DSOURCE_DIR=... -DWORK_DIR=... -DCXX=... -DGENERATOR=... -P release_mistakes.cmake
set(expected_no_target "hotswap_add_release\\(points\\): point_modul is no target: MODULES lists the targets made by hotswap_add_module, each made before the release")
set(expected_program "hotswap_add_release\\(points\\): consumer is no module \\(an EXECUTABLE\\): MODULES lists the targets made by hotswap_add_module, not the program that loads them")
foreach(mistake IN ITEMS no_target program)
  file(REMOVE_RECURSE "${WORK_DIR}/${mistake}")
  execute_process(COMMAND ${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/${mistake}" -G "${GENERATOR}"
                          -DCMAKE_CXX_COMPILER=${CXX} -DHOTSWAP_SOURCE_DIR=${SOURCE_DIR} -DRELEASE_MISTAKE=${mistake}
                  RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE output)
  string(REGEX REPLACE "[ \n]+" " " flat "${output}")  # CMake wraps a message's lines
  if(status EQUAL 0)
    message(FATAL_ERROR "${mistake}: the consumer was configured:\n${output}")
  elseif(NOT flat MATCHES "${expected_${mistake}}")
    message(FATAL_ERROR "${mistake}: configuring failed without saying what to do:\n${output}")
  elseif(flat MATCHES "generator expression|Generate step")
    message(FATAL_ERROR "${mistake}: refused past the configure step:\n${output}")
  endif()
endforeach()
