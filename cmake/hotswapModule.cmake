# hotswap_add_module(<target> [SIGNING_KEY <private key>] <source>...)
#
# A module for hotswap's code server: a shared library that uses the runtime of the program
# loading it (HOTSWAP_MODULE_BUILD), exports nothing but its descriptor (hidden visibility, no
# GNU unique symbols, so that it can be unmapped once purged), and whose static initializers
# the code server runs itself (hotswap_module.ld), catching what they throw. After the link,
# hotswap-seal seals it (a digest of its bytes: a code server refuses it torn or modified) and,
# given a key (SIGNING_KEY, else HOTSWAP_SIGNING_KEY), signs the seal (a code server given
# trusted keys refuses a module no trusted key signed).
set(HOTSWAP_SIGNING_KEY "" CACHE FILEPATH
    "An Ed25519 private key (PEM; hotswap-seal keygen makes one) that signs every module hotswap_add_module makes")

function(hotswap_add_module target)
  cmake_parse_arguments(PARSE_ARGV 1 module "" "SIGNING_KEY" "")
  set(key "${HOTSWAP_SIGNING_KEY}")
  if(DEFINED module_SIGNING_KEY)
    set(key "${module_SIGNING_KEY}")
  endif()
  set(script ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/hotswap_module.ld)
  add_library(${target} MODULE ${module_UNPARSED_ARGUMENTS})
  target_link_libraries(${target} PRIVATE hotswap::hotswap)
  target_compile_definitions(${target} PRIVATE HOTSWAP_MODULE_BUILD)
  target_compile_options(${target} PRIVATE $<$<CXX_COMPILER_ID:GNU>:-fno-gnu-unique>)
  target_link_options(${target} PRIVATE "LINKER:-T,${script}")
  set(link_depends ${script})
  set(sign)
  if(key)
    get_filename_component(key "${key}" ABSOLUTE)
    set(sign --key ${key})
    list(APPEND link_depends ${key})  # another key: linked and sealed again
  endif()
  set_target_properties(${target} PROPERTIES PREFIX "" CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON
                                             LINK_DEPENDS "${link_depends}")
  add_custom_command(TARGET ${target} POST_BUILD COMMAND hotswap::seal seal $<TARGET_FILE:${target}> ${sign}
                     VERBATIM)
endfunction()
