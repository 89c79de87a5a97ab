
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/src/codebook.c" "CMakeFiles/ecf8_objects.dir/src/codebook.c.o" "gcc" "CMakeFiles/ecf8_objects.dir/src/codebook.c.o.d"
  "/work/main/src/container.c" "CMakeFiles/ecf8_objects.dir/src/container.c.o" "gcc" "CMakeFiles/ecf8_objects.dir/src/container.c.o.d"
  "/work/main/src/inspect.c" "CMakeFiles/ecf8_objects.dir/src/inspect.c.o" "gcc" "CMakeFiles/ecf8_objects.dir/src/inspect.c.o.d"
  "/work/main/src/io.c" "CMakeFiles/ecf8_objects.dir/src/io.c.o" "gcc" "CMakeFiles/ecf8_objects.dir/src/io.c.o.d"
  "/work/main/src/pool.c" "CMakeFiles/ecf8_objects.dir/src/pool.c.o" "gcc" "CMakeFiles/ecf8_objects.dir/src/pool.c.o.d"
  "/work/main/src/safetensors.c" "CMakeFiles/ecf8_objects.dir/src/safetensors.c.o" "gcc" "CMakeFiles/ecf8_objects.dir/src/safetensors.c.o.d"
  "/work/main/src/status.c" "CMakeFiles/ecf8_objects.dir/src/status.c.o" "gcc" "CMakeFiles/ecf8_objects.dir/src/status.c.o.d"
  "/work/main/src/stream_codec.c" "CMakeFiles/ecf8_objects.dir/src/stream_codec.c.o" "gcc" "CMakeFiles/ecf8_objects.dir/src/stream_codec.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
