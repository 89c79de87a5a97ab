# CMake generated Testfile for 
# Source directory: /work/main/tests
# Build directory: /work/main/build/tests
# 
# This file includes the relevant testing commands required for 
# testing this directory and lists subdirectories to be tested as well.
add_test([=[test_smoke]=] "/work/main/build/tests/test_smoke")
set_tests_properties([=[test_smoke]=] PROPERTIES  ENVIRONMENT "ECF8_TEST_DATA=/work/main/tests/data;ECF8_BUILD_DIR=/work/main/build;POCL_CACHE_DIR=/work/main/build/pocl-cache;XDG_CACHE_HOME=/work/main/build/xdg-cache" TIMEOUT "600" _BACKTRACE_TRIPLES "/work/main/tests/CMakeLists.txt;30;add_test;/work/main/tests/CMakeLists.txt;0;")
