# One GoogleTest binary per src/ folder (each libtorch binary costs ~0.7 s to start).
# Paths the tests need reach them through a generated header, so every test TU keeps the
# library's compile flags and can reuse its precompiled header.
find_package(GTest REQUIRED)
include(GoogleTest)

set(LS_SHARED_DIR ${CMAKE_SOURCE_DIR}/../shared CACHE PATH "The team's shared folder (fixtures, CLIP vocab)")
set(LS_LORASTUDIO_EXE $<TARGET_FILE:lorastudio>)
configure_file(${CMAKE_SOURCE_DIR}/tests/support/paths.h.in ${CMAKE_BINARY_DIR}/generated/test_paths.h.tmp @ONLY)
file(GENERATE OUTPUT ${CMAKE_BINARY_DIR}/generated/test_paths.h INPUT ${CMAKE_BINARY_DIR}/generated/test_paths.h.tmp)

file(GLOB LS_SUPPORT_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/support/*.cpp)
add_library(ls_test_support STATIC ${LS_SUPPORT_SOURCES})
target_include_directories(ls_test_support PUBLIC ${CMAKE_SOURCE_DIR}/tests ${CMAKE_BINARY_DIR}/generated)
target_link_libraries(ls_test_support PUBLIC lorastudio_lib GTest::gtest GTest::gmock)
if(LS_PCH)
  target_precompile_headers(ls_test_support REUSE_FROM lorastudio_lib)
endif()

# tests/cuda: the CUDA suite (label cuda; each test skips with one line without a GPU).
foreach(folder ${LS_FOLDERS} cli cuda)
  file(GLOB test_sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/${folder}/*.cpp)
  ls_filter_sources(test_sources)
  if(NOT test_sources)
    continue()
  endif()
  set(target test_${folder})
  ls_httplib_sources(${test_sources})
  add_executable(${target} ${test_sources})
  target_link_libraries(${target} PRIVATE ls_test_support GTest::gtest_main)
  # One unity file per test folder: test files are small and share every torch template.
  set_target_properties(${target} PROPERTIES UNITY_BUILD_BATCH_SIZE 0)
  ls_set_warnings(${target})
  if(LS_PCH)
    target_precompile_headers(${target} REUSE_FROM lorastudio_lib)
  endif()
  # Tests may run the built executable (ls::test::run_lorastudio).
  add_dependencies(${target} lorastudio)
  # Test names carry their label: Full* suites need LS_FULL_TESTS, Golden* use ../shared.
  # OpenMP threads that wait passively: ctest runs two binaries at once and many tests wait on a
  # lorastudio child process; libgomp's default spin-wait then burns the core the other process
  # needs (a CLI test: 47 s beside a copy of itself, 4.7 s with PASSIVE).
  set(ls_test_env "OMP_WAIT_POLICY=PASSIVE")
  gtest_discover_tests(${target}
    TEST_FILTER "-Full*:Cuda*"
    DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS unit ENVIRONMENT ${ls_test_env})
  gtest_discover_tests(${target} TEST_FILTER "Cuda*" DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS cuda ENVIRONMENT ${ls_test_env})
  if(LS_FULL_TESTS)
    gtest_discover_tests(${target} TEST_FILTER "Full*" TEST_PREFIX "full." DISCOVERY_TIMEOUT 60
      PROPERTIES LABELS full TIMEOUT 7200 ENVIRONMENT ${ls_test_env})
  endif()
endforeach()
