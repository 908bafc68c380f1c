# Writes OUT (a header defining SPECPLAN_GIT_REV) from `git describe` of SRC.
# configure_file only touches OUT when the text changes, so nothing rebuilds
# unless the revision moved.
# Where the tree travels without its own .git (the GPU machine, whose copy
# may sit inside another checkout: `git describe` there answered a stale
# a3e21729afad-dirty on 2026-12-07), the caller passes the revision in the
# environment, and it wins.
if(DEFINED ENV{SPECPLAN_GIT_REV} AND NOT "$ENV{SPECPLAN_GIT_REV}" STREQUAL "")
  set(rev "$ENV{SPECPLAN_GIT_REV}")
else()
  execute_process(COMMAND git -C "${SRC}" describe --always --dirty --abbrev=12
                  OUTPUT_VARIABLE rev OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    set(rev "")
  endif()
endif()
if(rev STREQUAL "")
  set(rev "unknown")
endif()
file(CONFIGURE OUTPUT "${OUT}" CONTENT "#pragma once\n#define SPECPLAN_GIT_REV \"${rev}\"\n" @ONLY)
