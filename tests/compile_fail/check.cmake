# One compile-fail test: SOURCE must fail to compile with every "// expect: " text in the
# compiler's output, as exactly one error in fewer than 25 lines (one mistake, one error: nothing
# after the library's own), and compile once its mistake is fixed (-DHOTSWAP_FIXED), so that it
# fails for the reason it names and no other.
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
string(REGEX MATCHALL "error:" errors "${output}")
list(LENGTH errors error_count)
string(REGEX MATCHALL "\n" newlines "${output}")
list(LENGTH newlines line_count)
if(NOT error_count EQUAL 1 OR line_count GREATER_EQUAL 25)
  message(FATAL_ERROR "${SOURCE} gave ${error_count} errors in ${line_count} lines; "
                      "one mistake must be one error, in fewer than 25 lines:\n${output}")
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
