file(REMOVE_RECURSE
  "CMakeFiles/ecf8_objects.dir/src/codebook.c.o"
  "CMakeFiles/ecf8_objects.dir/src/codebook.c.o.d"
  "CMakeFiles/ecf8_objects.dir/src/container.c.o"
  "CMakeFiles/ecf8_objects.dir/src/container.c.o.d"
  "CMakeFiles/ecf8_objects.dir/src/inspect.c.o"
  "CMakeFiles/ecf8_objects.dir/src/inspect.c.o.d"
  "CMakeFiles/ecf8_objects.dir/src/io.c.o"
  "CMakeFiles/ecf8_objects.dir/src/io.c.o.d"
  "CMakeFiles/ecf8_objects.dir/src/pool.c.o"
  "CMakeFiles/ecf8_objects.dir/src/pool.c.o.d"
  "CMakeFiles/ecf8_objects.dir/src/safetensors.c.o"
  "CMakeFiles/ecf8_objects.dir/src/safetensors.c.o.d"
  "CMakeFiles/ecf8_objects.dir/src/status.c.o"
  "CMakeFiles/ecf8_objects.dir/src/status.c.o.d"
  "CMakeFiles/ecf8_objects.dir/src/stream_codec.c.o"
  "CMakeFiles/ecf8_objects.dir/src/stream_codec.c.o.d"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/ecf8_objects.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
