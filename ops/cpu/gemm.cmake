# ops/cpu/gemm.cmake — the CPU GEMM library (bertforge_gemm); include()d by the root CMakeLists.
# Its test is tests/ops/test_gemm.cpp and its benchmark tests/bench/bench_gemm.cpp.
#
# The own kernel's files: gemm.cpp (loop nest, threads, path choice), gemm_pack.h (FP32 panel packing),
# gemm_kernels.h (the microkernels' traits), gemm_avx2.cpp, gemm_avx512.cpp, gemm_bf16_avx512.cpp (one microkernel
# each, compiled with __attribute__((target)) in every x86-64 build and chosen at run time, see gemm.h).
#
# BERTFORGE_BLAS picks the implementation behind bertforge::cpu::gemm:
#   own      — our packed kernels (ops/cpu/gemm.cpp). The default because it measured faster: on the 2-core
#              AMD EPYC (Zen 3) dev machine, 2 threads, it beats OpenBLAS 0.3.21 (which PyTorch also calls) by about
#              1.1-1.3x on the BERT-base linear-layer shapes and 2x or more on the batched attention products
#              (tests/bench/bench_gemm.cpp).
#   openblas — cblas_sgemm from OpenBLAS, kept so the two can be compared.

set(BERTFORGE_BLAS "own" CACHE STRING "GEMM implementation: own or openblas")
set_property(CACHE BERTFORGE_BLAS PROPERTY STRINGS own openblas)

set(BERTFORGE_GEMM_SOURCES ${CMAKE_CURRENT_LIST_DIR}/gemm.cpp ${CMAKE_CURRENT_LIST_DIR}/gemm_avx2.cpp
    ${CMAKE_CURRENT_LIST_DIR}/gemm_avx512.cpp ${CMAKE_CURRENT_LIST_DIR}/gemm_bf16_avx512.cpp)
add_library(bertforge_gemm STATIC ${BERTFORGE_GEMM_SOURCES})
target_link_libraries(bertforge_gemm PUBLIC OpenMP::OpenMP_CXX bertforge_core)  # core: dtypes, errors

# The root CMakeLists globs ops/cpu/*.cpp into bertforge_ops and filters out ops/cpu/gemm*.cpp, which are
# compiled into bertforge_gemm alone.

if(BERTFORGE_BLAS STREQUAL "openblas")
  # Debian ships openblas.pc (headers in /usr/include/<triplet>/openblas-<threading>/).
  pkg_check_modules(OPENBLAS REQUIRED IMPORTED_TARGET openblas)
  target_link_libraries(bertforge_gemm PRIVATE PkgConfig::OPENBLAS)
  target_compile_definitions(bertforge_gemm PRIVATE BERTFORGE_USE_OPENBLAS)
elseif(NOT BERTFORGE_BLAS STREQUAL "own")
  message(FATAL_ERROR "BERTFORGE_BLAS must be 'own' or 'openblas', got '${BERTFORGE_BLAS}'")
endif()
