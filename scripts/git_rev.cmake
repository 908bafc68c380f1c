# Writes OUT (a header defining SPECPLAN_GIT_REV) from `git describe` of SRC.
# configure_file only touches OUT when the text changes, so nothing rebuilds
# unless the revision moved.
execute_process(COMMAND git -C "${SRC}" describe --always --dirty --abbrev=12
                OUTPUT_VARIABLE rev OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
# Where the tree travels without .git (the GPU machine), the caller passes
# the revision in the environment.
if((NOT rc EQUAL 0 OR rev STREQUAL "") AND DEFINED ENV{SPECPLAN_GIT_REV})
  set(rev "$ENV{SPECPLAN_GIT_REV}")
endif()
if(rev STREQUAL "")
  set(rev "unknown")
endif()
file(CONFIGURE OUTPUT "${OUT}" CONTENT "#pragma once\n#define SPECPLAN_GIT_REV \"${rev}\"\n" @ONLY)
