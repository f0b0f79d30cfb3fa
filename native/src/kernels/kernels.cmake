# Included by CMakeLists.txt after the `deepsentry` target exists (DS_ROOT, DS_SRC are set there).
# The compute sources behind native/src/lstm.h. The driver (lstm_forward.cpp, lstm_backward.cpp, sgemm.cpp
# over the planning helpers of lstm_plan.h), dispatch and the thread pool are
# compiled with the target's baseline flags; each kernels_<isa>.cpp is the same code (kernels_impl.h)
# compiled for one instruction set in its own namespace, picked at run time by dispatch.cpp. Never
# -march=native (machines differ, and valgrind hides AVX-512). The AVX-512 flags must match the check in dispatch.cpp.
set(DS_KERNEL_SOURCES
  "${DS_SRC}/lstm_forward.cpp"
  "${DS_SRC}/lstm_backward.cpp"
  "${DS_SRC}/sgemm.cpp"
  "${DS_SRC}/bilstm_dense.cpp"
  "${DS_SRC}/dispatch.cpp"
  "${DS_SRC}/threadpool.cpp"
  "${DS_SRC}/adam.cpp"
  "${DS_SRC}/dense_xent.cpp"
  "${DS_SRC}/dense_mse.cpp"
  "${DS_SRC}/scatter_add.cpp"
  "${DS_SRC}/kernels/kernels_baseline.cpp"
  "${DS_SRC}/kernels/kernels_bf16_portable.cpp")
# adam.cpp: v >= 0, so sqrt needs no errno path, which would keep the loop from vectorising.
set_source_files_properties("${DS_SRC}/adam.cpp" PROPERTIES COMPILE_OPTIONS "-fno-math-errno")
# -ffp-contract=fast: a*b+c in lstm_math.h becomes one FMA where the ISA has it (the CUDA compiler does the
# same by default), whatever -std mode the target uses.
set_source_files_properties("${DS_SRC}/kernels/kernels_baseline.cpp" PROPERTIES
  COMPILE_OPTIONS "-ffp-contract=fast")
# The portable bf16 kernels emulate vdpbf16ps one rounding at a time: no contraction (it would fuse the
# accumulator's addition with the product on an ISA with FMA and change the numbers).
set_source_files_properties("${DS_SRC}/kernels/kernels_bf16_portable.cpp" PROPERTIES
  COMPILE_OPTIONS "-ffp-contract=off")
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  list(APPEND DS_KERNEL_SOURCES
    "${DS_SRC}/kernels/kernels_avx2.cpp"
    "${DS_SRC}/kernels/kernels_avx512.cpp"
    "${DS_SRC}/kernels/kernels_bf16_avx512.cpp")
  set_source_files_properties("${DS_SRC}/kernels/kernels_avx2.cpp" PROPERTIES
    COMPILE_OPTIONS "-mavx2;-mfma;-ffp-contract=fast")
  set_source_files_properties("${DS_SRC}/kernels/kernels_avx512.cpp" PROPERTIES
    COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx512dq;-mavx512vl;-mavx2;-mfma;-ffp-contract=fast")
  # the AVX-512 level's flags plus AVX512-BF16 (dispatch.cpp checks exactly these)
  set_source_files_properties("${DS_SRC}/kernels/kernels_bf16_avx512.cpp" PROPERTIES
    COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx512dq;-mavx512vl;-mavx512bf16;-mavx2;-mfma;-ffp-contract=off")
endif()
find_package(Threads REQUIRED)
target_link_libraries(deepsentry PRIVATE Threads::Threads)

# A standalone self-test and micro-benchmark of the kernels against a float64 reference (no Node needed):
#   cmake --build build --target ds_kernel_selftest && build/ds_kernel_selftest
add_executable(ds_kernel_selftest EXCLUDE_FROM_ALL "${DS_SRC}/kernels/selftest.cpp" ${DS_KERNEL_SOURCES})
target_include_directories(ds_kernel_selftest PRIVATE "${DS_SRC}" "${DS_ROOT}/native")
target_compile_options(ds_kernel_selftest PRIVATE -O3 -Wall -Wextra -Wno-unused-parameter)
target_link_libraries(ds_kernel_selftest PRIVATE Threads::Threads)
