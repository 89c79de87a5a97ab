file(REMOVE_RECURSE
  "libecf8.a"
  "libecf8.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/ecf8_static.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
