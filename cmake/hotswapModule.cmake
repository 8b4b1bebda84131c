# hotswap_add_module(<target> [PRECOMPILED] [SIGNING_KEY <private key>] <source>...)
#
# A module for hotswap's code server: a shared library that uses the runtime of the program
# loading it (HOTSWAP_MODULE_BUILD), exports nothing but its descriptor (hidden visibility, no
# GNU unique symbols, so that it can be unmapped once purged), and whose static initializers
# the code server runs itself (hotswap_module.ld), catching what they throw. After the link,
# hotswap-seal seals it (a digest of its bytes: a code server refuses it torn or modified) and,
# given a key (SIGNING_KEY, else HOTSWAP_SIGNING_KEY), signs the seal (a code server given
# trusted keys refuses a module no trusted key signed). PRECOMPILED precompiles <hotswap/modules.hpp>
# for the module: its first build takes longer (g++ 12: +2.4 s), each rebuild after an edit less
# (1.5 s -> 0.8 s to compile): for a module edited again and again (the development loop).
set(HOTSWAP_SIGNING_KEY "" CACHE FILEPATH
    "An Ed25519 private key (PEM; hotswap-seal keygen makes one) that signs every module hotswap_add_module makes")

function(hotswap_add_module target)
  cmake_parse_arguments(PARSE_ARGV 1 module "PRECOMPILED" "SIGNING_KEY" "")
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
  if(module_PRECOMPILED)
    target_precompile_headers(${target} PRIVATE <hotswap/modules.hpp>)
  endif()
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

# hotswap_add_release(<name> VERSION <vsn> MODULES <module target>... [DESTINATION <directory>]
#                     [START <registered name>=<module name>...] [STOP <registered name>...]
#                     [RESTART <registered name>...] [APPLY <module name>:<step>@<point>...]
#                     [SUPERVISE <supervisor>:<child id>=<module name>[,<option>=<value>...]...]
#                     [UNSUPERVISE <supervisor>:<child id>...])
#
# A release for hotswap's release handler: its name, its vsn and its modules' files, written as
# <name>-<vsn>.release.json into DESTINATION (by default the directory of the first module). A
# module beside the manifest is named by its file name, others by their full path; the release
# handler reads each module's name from its file (docs/releases.md describes the format). Each
# of MODULES is a target hotswap_add_module made before: a name that is none, or another kind of
# target (the program itself), is refused when the project is configured. START, STOP and RESTART
# name the servers the release starts (on the named module's version in the release), stops and
# restarts, by the names they are registered as. APPLY names the steps of its modules
# (HOTSWAP_MODULE_STEP) it runs, in order, each at a point of the upgrade: before_suspend or
# after_commit (tally:warm_cache@before_suspend). SUPERVISE names the children it adds to running
# supervisors (by their registered names), or whose specs it changes, each a server on a module of
# the release, with the options name=<registered name>, restart=permanent|transient|temporary and
# shutdown_ms=<ms> if wanted (anemone.sup:leaderboard=anemone.leaderboard,restart=transient);
# UNSUPERVISE the children it removes (anemone.sup:inspector).
function(hotswap_add_release name)
  cmake_parse_arguments(PARSE_ARGV 1 release "" "VERSION;DESTINATION"
                        "MODULES;START;STOP;RESTART;APPLY;SUPERVISE;UNSUPERVISE")
  foreach(word IN ITEMS name release_VERSION)
    if(NOT "${${word}}" MATCHES "^[A-Za-z0-9][A-Za-z0-9._-]*$")
      message(FATAL_ERROR "hotswap_add_release: a release's name and VERSION are letters, digits, '.', '_' and '-' "
                          "(not first '.', '_' or '-'), not \"${${word}}\"")
    endif()
  endforeach()
  if(NOT release_MODULES)
    message(FATAL_ERROR "hotswap_add_release(${name}): list its modules' targets after MODULES")
  endif()
  # Each is checked here, where the mistake can be named: past this, a name that is no target is a
  # generator-expression error at generate time, and a program is listed as if it were a module.
  foreach(module IN LISTS release_MODULES)
    if(NOT TARGET "${module}")
      message(FATAL_ERROR "hotswap_add_release(${name}): ${module} is no target: MODULES lists the targets made by "
                          "hotswap_add_module, each made before the release")
    endif()
    get_target_property(type "${module}" TYPE)
    if(NOT type STREQUAL "MODULE_LIBRARY")
      message(FATAL_ERROR "hotswap_add_release(${name}): ${module} is no module (an ${type}): MODULES lists the "
                          "targets made by hotswap_add_module, not the program that loads them")
    endif()
  endforeach()
  list(GET release_MODULES 0 first)
  set(directory "$<TARGET_FILE_DIR:${first}>")
  if(DEFINED release_DESTINATION)
    get_filename_component(directory "${release_DESTINATION}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
  endif()
  set(files)
  foreach(module IN LISTS release_MODULES)
    set(beside "$<STREQUAL:$<TARGET_FILE_DIR:${module}>,${directory}>")
    list(APPEND files "\"$<IF:${beside},$<TARGET_FILE_NAME:${module}>,$<TARGET_FILE:${module}>>\"")
  endforeach()
  list(JOIN files ", " files)
  # The servers it starts, stops and restarts, the steps it applies and the supervisors' children
  # it changes, each key's list of JSON values (the handler checks them again).
  set(word "[A-Za-z0-9][A-Za-z0-9._-]*")
  set(start)
  foreach(one IN LISTS release_START)
    if(NOT one MATCHES "^(${word})=(${word})$")
      message(FATAL_ERROR "hotswap_add_release(${name}): START lists <registered name>=<module name>, not \"${one}\"")
    endif()
    list(APPEND start "{\"name\": \"${CMAKE_MATCH_1}\", \"module\": \"${CMAKE_MATCH_2}\"}")
  endforeach()
  foreach(kind IN ITEMS STOP RESTART)
    string(TOLOWER ${kind} key)
    set(${key})
    foreach(one IN LISTS release_${kind})
      if(NOT one MATCHES "^${word}$")
        message(FATAL_ERROR "hotswap_add_release(${name}): ${kind} lists registered names, not \"${one}\"")
      endif()
      list(APPEND ${key} "\"${one}\"")
    endforeach()
  endforeach()
  set(apply)
  foreach(one IN LISTS release_APPLY)
    if(NOT one MATCHES "^(${word}):(${word})@(before_suspend|after_commit)$")
      message(FATAL_ERROR "hotswap_add_release(${name}): APPLY lists <module name>:<step>@<point> (a point is "
                          "before_suspend or after_commit), not \"${one}\"")
    endif()
    list(APPEND apply "{\"module\": \"${CMAKE_MATCH_1}\", \"step\": \"${CMAKE_MATCH_2}\", \"at\": \"${CMAKE_MATCH_3}\"}")
  endforeach()
  set(supervised)  # the supervisors, in the order first named
  set(option "name=${word}|restart=(permanent|transient|temporary)|shutdown_ms=[0-9]+")
  foreach(one IN LISTS release_SUPERVISE)
    if(NOT one MATCHES "^(${word}):(${word})=(${word})((,(${option}))*)$")
      message(FATAL_ERROR "hotswap_add_release(${name}): SUPERVISE lists <supervisor>:<child id>=<module name>, then "
                          ",name=<registered name> ,restart=permanent|transient|temporary ,shutdown_ms=<ms> if "
                          "wanted, not \"${one}\"")
    endif()
    set(child "{\"id\": \"${CMAKE_MATCH_2}\", \"module\": \"${CMAKE_MATCH_3}\"")
    string(REPLACE "," ";" options "${CMAKE_MATCH_4}")
    set(supervisor "${CMAKE_MATCH_1}")
    foreach(given IN LISTS options)
      if(given MATCHES "^shutdown_ms=(.*)$")
        string(APPEND child ", \"shutdown_ms\": ${CMAKE_MATCH_1}")
      elseif(given MATCHES "^(name|restart)=(.*)$")
        string(APPEND child ", \"${CMAKE_MATCH_1}\": \"${CMAKE_MATCH_2}\"")
      endif()
    endforeach()
    list(APPEND children_of_${supervisor} "${child}}")
    list(APPEND supervised ${supervisor})
  endforeach()
  foreach(one IN LISTS release_UNSUPERVISE)
    if(NOT one MATCHES "^(${word}):(${word})$")
      message(FATAL_ERROR "hotswap_add_release(${name}): UNSUPERVISE lists <supervisor>:<child id>, not \"${one}\"")
    endif()
    list(APPEND remove_of_${CMAKE_MATCH_1} "\"${CMAKE_MATCH_2}\"")
    list(APPEND supervised ${CMAKE_MATCH_1})
  endforeach()
  list(REMOVE_DUPLICATES supervised)
  set(supervisors)
  foreach(supervisor IN LISTS supervised)
    set(entry "{\"supervisor\": \"${supervisor}\"")
    foreach(key IN ITEMS children remove)
      if(${key}_of_${supervisor})
        list(JOIN ${key}_of_${supervisor} ", " values)
        string(APPEND entry ", \"${key}\": [${values}]")
      endif()
    endforeach()
    list(APPEND supervisors "${entry}}")
  endforeach()
  set(steps)
  foreach(key IN ITEMS start stop restart apply supervisors)
    if(${key})
      list(JOIN ${key} ", " values)
      string(APPEND steps ", \"${key}\": [${values}]")
    endif()
  endforeach()
  # What hotswap_add_release_archive packs: the manifest, and the module targets it waits for.
  set_property(GLOBAL PROPERTY hotswap_release_${name}_${release_VERSION}
                               "${directory}/${name}-${release_VERSION}.release.json;${release_MODULES}")
  file(GENERATE OUTPUT "${directory}/${name}-${release_VERSION}.release.json"
       CONTENT "{\"hotswap_release\": 1, \"name\": \"${name}\", \"vsn\": \"${release_VERSION}\", \"modules\": [${files}]${steps}}\n")
endfunction()

# hotswap_add_release_archive(<name> VERSION <vsn> [SIGNING_KEY <private key>])
#
# The release hotswap_add_release(<name> VERSION <vsn> ...) made before, as one archive for a
# release handler's unpack (`hotswapctl PROGRAM unpack ARCHIVE`): <name>-<vsn>.release.tar beside
# its manifest, a flat tar of the manifest, its modules and, given a key (SIGNING_KEY, else
# HOTSWAP_SIGNING_KEY), its signature, written by `hotswap-seal pack` (libarchive). Made with the
# default build, by the target hotswap_release_archive_<name>_<vsn> (as a C identifier).
function(hotswap_add_release_archive name)
  cmake_parse_arguments(PARSE_ARGV 1 archive "" "VERSION;SIGNING_KEY" "")
  get_property(made GLOBAL PROPERTY hotswap_release_${name}_${archive_VERSION})
  if(NOT made)
    message(FATAL_ERROR "hotswap_add_release_archive(${name} VERSION ${archive_VERSION}): no such release: "
                        "hotswap_add_release(${name} VERSION ${archive_VERSION} ...) makes it, before")
  endif()
  list(POP_FRONT made manifest)
  string(REGEX REPLACE "\\.json$" ".tar" packed "${manifest}")
  set(key "${HOTSWAP_SIGNING_KEY}")
  if(DEFINED archive_SIGNING_KEY)
    set(key "${archive_SIGNING_KEY}")
  endif()
  set(sign)
  if(key)
    get_filename_component(key "${key}" ABSOLUTE)
    set(sign --key ${key})
  endif()
  string(MAKE_C_IDENTIFIER "${name}_${archive_VERSION}" id)
  add_custom_target(hotswap_release_archive_${id} ALL
                    COMMAND ${CMAKE_COMMAND} -E rm -f ${packed}
                    COMMAND hotswap::seal pack ${manifest} ${packed} ${sign}
                    COMMENT "Packing release ${name} ${archive_VERSION}" VERBATIM)
  add_dependencies(hotswap_release_archive_${id} ${made})
endfunction()
