# The CPU kernels for the node-gyp build (binding.gyp), the counterpart of kernels.cmake.
# gyp has no per-source flags, so each instruction set is its own static library with its own cflags. The
# addon target includes this file and depends on ds_kernels alone (which pulls in the per-ISA libraries):
#   'includes': ['native/src/kernels/kernels.gypi'],
#   ... in the addon target: 'dependencies': ['ds_kernels'],
# Paths below are relative to this file, as gyp resolves them. Never -march=native (machines differ, and valgrind hides AVX-512); the
# AVX-512 flags must match the check in native/src/dispatch.cpp.
{
  'targets': [
    {
      # the driver, dispatch, thread pool and the portable kernels: baseline flags
      'target_name': 'ds_kernels',
      'type': 'static_library',
      'sources': [
        '../lstm_forward.cpp',
        '../lstm_backward.cpp',
        '../sgemm.cpp',
        '../bilstm_dense.cpp',
        '../dispatch.cpp',
        '../threadpool.cpp',
        '../adam.cpp',
        '../dense_xent.cpp',
        '../dense_mse.cpp',
        '../scatter_add.cpp',
        'kernels_baseline.cpp',
      ],
      'dependencies': ['ds_kernels_bf16_portable'],
      'include_dirs': ['..', '../..'],
      'cflags': ['-fPIC', '-pthread'],
      # -fno-math-errno: adam.cpp's sqrt (of v >= 0) needs no errno path, which would keep it from vectorising
      'cflags_cc': ['-std=gnu++17', '-O3', '-fexceptions', '-ffp-contract=fast', '-fno-math-errno'],
      'cflags_cc!': ['-fno-exceptions'],
      'link_settings': { 'libraries': ['-pthread'] },
      'conditions': [
        ['target_arch=="x64"', { 'dependencies': ['ds_kernels_avx2', 'ds_kernels_avx512', 'ds_kernels_bf16_avx512'] }],
      ],
    },
    {
      # the portable bf16 kernels emulate vdpbf16ps one rounding at a time: no contraction
      'target_name': 'ds_kernels_bf16_portable',
      'type': 'static_library',
      'sources': ['kernels_bf16_portable.cpp'],
      'include_dirs': ['..', '../..'],
      'cflags': ['-fPIC'],
      'cflags_cc': ['-std=gnu++17', '-O3', '-ffp-contract=off'],
    },
  ],
  'conditions': [
    ['target_arch=="x64"', {
      'targets': [
        {
          'target_name': 'ds_kernels_avx2',
          'type': 'static_library',
          'sources': ['kernels_avx2.cpp'],
          'include_dirs': ['..', '../..'],
          'cflags': ['-fPIC'],
          'cflags_cc': ['-std=gnu++17', '-O3', '-mavx2', '-mfma', '-ffp-contract=fast'],
        },
        {
          'target_name': 'ds_kernels_avx512',
          'type': 'static_library',
          'sources': ['kernels_avx512.cpp'],
          'include_dirs': ['..', '../..'],
          'cflags': ['-fPIC'],
          'cflags_cc': ['-std=gnu++17', '-O3', '-mavx512f', '-mavx512bw', '-mavx512dq', '-mavx512vl',
                        '-mavx2', '-mfma', '-ffp-contract=fast'],
        },
        {
          'target_name': 'ds_kernels_bf16_avx512',
          'type': 'static_library',
          'sources': ['kernels_bf16_avx512.cpp'],
          'include_dirs': ['..', '../..'],
          'cflags': ['-fPIC'],
          'cflags_cc': ['-std=gnu++17', '-O3', '-mavx512f', '-mavx512bw', '-mavx512dq', '-mavx512vl',
                        '-mavx512bf16', '-mavx2', '-mfma', '-ffp-contract=off'],
        },
      ],
    }],
  ],
}
