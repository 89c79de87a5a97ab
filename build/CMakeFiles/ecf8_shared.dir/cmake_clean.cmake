file(REMOVE_RECURSE
  "libecf8.pdb"
  "libecf8.so"
  "libecf8.so.1"
  "libecf8.so.1.0.0"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/ecf8_shared.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
