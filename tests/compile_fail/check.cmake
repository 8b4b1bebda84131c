# One compile-fail test: SOURCE must fail to compile with every "// expect: " text in the
# compiler's output, and compile once its mistake is fixed (-DHOTSWAP_FIXED), so that it fails
# for the reason it names and no other.
#   cmake -DCXX=... -DFLAGS="..." -DSOURCE=... -P check.cmake
separate_arguments(flags UNIX_COMMAND "${FLAGS}")
file(STRINGS "${SOURCE}" expectations REGEX "^// expect: ")
if(NOT expectations)
  message(FATAL_ERROR "${SOURCE} states no expected error text")
endif()

execute_process(COMMAND "${CXX}" ${flags} -fsyntax-only "${SOURCE}"
                RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE output)
if(status EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must not")
endif()
foreach(expectation IN LISTS expectations)
  string(REGEX REPLACE "^// expect: " "" text "${expectation}")
  string(FIND "${output}" "${text}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the error for ${SOURCE} does not say: ${text}\n--- the compiler said:\n${output}")
  endif()
endforeach()

execute_process(COMMAND "${CXX}" ${flags} -DHOTSWAP_FIXED -fsyntax-only "${SOURCE}"
                RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE output)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${SOURCE} with its mistake fixed does not compile:\n${output}")
endif()
