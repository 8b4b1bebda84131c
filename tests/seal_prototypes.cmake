# hotswap-seal compiles only while detail/modules/libcrypto.hpp declares each libcrypto function
# as OpenSSL's headers do, with this compiler: a copy of the headers with one prototype changed
# must not compile, and the copy unchanged must (so it fails for that reason and no other).
#   cmake -DCXX=... -DFLAGS="..." -DSOURCE_DIR=... -DWORK_DIR=... -P seal_prototypes.cmake
separate_arguments(flags UNIX_COMMAND "${FLAGS}")
file(REMOVE_RECURSE "${WORK_DIR}")
file(COPY "${SOURCE_DIR}/include" DESTINATION "${WORK_DIR}")
set(header "${WORK_DIR}/include/hotswap/detail/modules/libcrypto.hpp")
set(compile "${CXX}" "-I${WORK_DIR}/include" ${flags} -fsyntax-only "${SOURCE_DIR}/programs/hotswap_seal.cpp")

execute_process(COMMAND ${compile} RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE output)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "hotswap_seal.cpp does not compile against the unchanged headers:\n${output}")
endif()

file(READ "${header}" text)
string(REPLACE "const void* d, std::size_t cnt" "const void* d, unsigned int cnt" changed "${text}")
if(changed STREQUAL text)
  message(FATAL_ERROR "EVP_DigestUpdate's prototype is not in ${header} as this test expects")
endif()
file(WRITE "${header}" "${changed}")
execute_process(COMMAND ${compile} RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE output)
if(status EQUAL 0)
  message(FATAL_ERROR "hotswap_seal.cpp compiled with EVP_DigestUpdate declared otherwise than OpenSSL")
endif()
string(FIND "${output}" "EVP_DigestUpdate" at)
if(at EQUAL -1)
  message(FATAL_ERROR "the error does not name EVP_DigestUpdate:\n${output}")
endif()
