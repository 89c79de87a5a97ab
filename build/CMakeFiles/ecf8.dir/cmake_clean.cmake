file(REMOVE_RECURSE
  "CMakeFiles/ecf8.dir/src/cli/cli_info.c.o"
  "CMakeFiles/ecf8.dir/src/cli/cli_info.c.o.d"
  "CMakeFiles/ecf8.dir/src/cli/cli_nodevice.c.o"
  "CMakeFiles/ecf8.dir/src/cli/cli_nodevice.c.o.d"
  "CMakeFiles/ecf8.dir/src/cli/main.c.o"
  "CMakeFiles/ecf8.dir/src/cli/main.c.o.d"
  "ecf8"
  "ecf8.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/ecf8.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
