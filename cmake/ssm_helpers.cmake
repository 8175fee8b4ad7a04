# One-line helpers to add an app, a test file or a benchmark (DESIGN.md, "CMake as fmt does it").

# The CPU flags of SSM_NATIVE, one list for every user: ssm_target_defaults (the build tree's
# targets), ssm::core's installed interface and ssmlab.pc (their consumers: Eigen's ABI depends on
# the instruction set, lib/CMakeLists.txt). GCC keeps to 256-bit vectors by default even on
# AVX-512 CPUs; ask for 512 where it exists.
set(SSM_ARCH_FLAGS "")
if(SSM_NATIVE AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  set(SSM_ARCH_FLAGS -march=native)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    list(APPEND SSM_ARCH_FLAGS -mprefer-vector-width=512)
  endif()
endif()

# Warnings and CPU flags for every ssmlab target, kept off the global flags.
function(ssm_target_defaults target)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_compile_options(${target} PRIVATE
    $<$<CXX_COMPILER_ID:GNU,Clang>:-Wall -Wextra -Wpedantic -Wno-unused-parameter>
    # GCC 12 warns falsely inside its own AVX-512 intrinsics when Eigen uses them (GCC PR 105593).
    # GCC 12 also warns falsely about memcpy overlap inside std::string (GCC PR 105329).
    $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized -Wno-restrict>)
  if(SSM_ARCH_FLAGS)
    target_compile_options(${target} PRIVATE ${SSM_ARCH_FLAGS})
  endif()
endfunction()

# ssm_add_app(ssm-conv conv.cpp): an executable in apps/ linked with the library and the CLI kit.
function(ssm_add_app name)
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE ssm::appkit)
  ssm_target_defaults(${name})
endfunction()

# ssm_add_bench(bench-conv conv_bench.cpp)
function(ssm_add_bench name)
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE ssm::core benchmark::benchmark)
  ssm_target_defaults(${name})
endfunction()
