# A module's hotswap code registers no exit handler (no __cxa_atexit, no thread-local destructor):
#   cmake -DNM=... -DMODULE=... -P no_exit_handlers.cmake
execute_process(COMMAND "${NM}" -D --undefined-only "${MODULE}" OUTPUT_VARIABLE symbols RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${NM} could not read ${MODULE}")
endif()
foreach(symbol IN ITEMS __cxa_atexit __cxa_thread_atexit_impl atexit)
  string(REGEX MATCH "[ \t]${symbol}(@|\n)" found "${symbols}")
  if(found)
    message(FATAL_ERROR "${MODULE} refers to ${symbol}: some code in it registers a destructor at exit, which "
                        "glibc keeps a record of after every unload")
  endif()
endforeach()
