# ops/cpu/gemm.cmake — the CPU GEMM library (bertforge_gemm); include()d by the root CMakeLists.
# Its test is tests/ops/test_gemm.cpp and its benchmark tests/bench/bench_gemm.cpp.
#
# Build with -march=native: the AVX2/FMA microkernel is chosen by the compiler's __AVX2__/__FMA__ macros;
# without them the portable kernel is compiled instead.
#
# BERTFORGE_BLAS picks the implementation behind bertforge::cpu::gemm:
#   own      — our packed AVX2/FMA kernel (ops/cpu/gemm.cpp). The default because it measured faster: on the 2-core
#              AMD EPYC (Zen 3) dev machine, 2 threads, it beats OpenBLAS 0.3.21 (which PyTorch also calls) by about
#              1.1-1.3x on the BERT-base linear-layer shapes and 2x or more on the batched attention products
#              (tests/bench/bench_gemm.cpp).
#   openblas — cblas_sgemm from OpenBLAS, kept so the two can be compared.

set(BERTFORGE_BLAS "own" CACHE STRING "GEMM implementation: own or openblas")
set_property(CACHE BERTFORGE_BLAS PROPERTY STRINGS own openblas)

add_library(bertforge_gemm STATIC ${CMAKE_CURRENT_LIST_DIR}/gemm.cpp)
target_link_libraries(bertforge_gemm PUBLIC OpenMP::OpenMP_CXX bertforge_core)  # core: dtypes, errors

if(BERTFORGE_BLAS STREQUAL "openblas")
  # Debian ships openblas.pc (headers in /usr/include/<triplet>/openblas-<threading>/).
  pkg_check_modules(OPENBLAS REQUIRED IMPORTED_TARGET openblas)
  target_link_libraries(bertforge_gemm PRIVATE PkgConfig::OPENBLAS)
  target_compile_definitions(bertforge_gemm PRIVATE BERTFORGE_USE_OPENBLAS)
elseif(NOT BERTFORGE_BLAS STREQUAL "own")
  message(FATAL_ERROR "BERTFORGE_BLAS must be 'own' or 'openblas', got '${BERTFORGE_BLAS}'")
endif()
