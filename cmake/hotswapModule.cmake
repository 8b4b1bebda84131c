# hotswap_add_module(<target> <source>...)
#
# A module for hotswap's code server: a shared library that uses the runtime of the program
# loading it (HOTSWAP_MODULE_BUILD), exports nothing but its descriptor (hidden visibility, no
# GNU unique symbols, so that it can be unmapped once purged), and whose static initializers
# the code server runs itself (hotswap_module.ld), catching what they throw.
function(hotswap_add_module target)
  set(script ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/hotswap_module.ld)
  add_library(${target} MODULE ${ARGN})
  target_link_libraries(${target} PRIVATE hotswap::hotswap)
  target_compile_definitions(${target} PRIVATE HOTSWAP_MODULE_BUILD)
  target_compile_options(${target} PRIVATE $<$<CXX_COMPILER_ID:GNU>:-fno-gnu-unique>)
  target_link_options(${target} PRIVATE "LINKER:-T,${script}")
  set_target_properties(${target} PROPERTIES PREFIX "" CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON
                                             LINK_DEPENDS ${script})
endfunction()
