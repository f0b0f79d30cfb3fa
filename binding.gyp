# The same CPU addon as CMakeLists.txt, built by node-gyp — the alternative build, without CUDA:
#   npm run build:gyp   (scripts/build-gyp.js → build-gyp/Release/deepsentry.node; never touches build/)
# The kernel sources and their per-instruction-set flags come from native/src/kernels/kernels.gypi (owned
# by the kernels, like kernels.cmake for CMake). scripts/build-gyp.js passes ds_version (package.json) and
# node_addon_api_dir (absolute); the defaults below let a plain `node-gyp rebuild` in this directory work too.
{
  'variables': {
    'ds_version%': '0.0.0-unknown',
    'node_addon_api_dir%': 'node_modules/node-addon-api',
  },
  'includes': ['native/src/kernels/kernels.gypi'],
  'targets': [
    {
      'target_name': 'deepsentry',
      'sources': [
        'native/src/addon.cpp',
        'native/src/binding_adam.cpp',
        'native/src/binding_check.cpp',
        'native/src/binding_common.cpp',
        'native/src/binding_dense.cpp',
        'native/src/binding_lstm.cpp',
        'native/src/binding_predict.cpp',
        'native/src/binding_runtime.cpp',
      ],
      'include_dirs': ['<(node_addon_api_dir)', 'native/src', 'native'],
      'dependencies': ['ds_kernels'],
      'defines': [
        'NAPI_VERSION=8',
        'NODE_ADDON_API_DISABLE_DEPRECATED',
        'NAPI_CPP_EXCEPTIONS',
        'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',  # see CMakeLists.txt
        'DS_VERSION="<(ds_version)"',
      ],
      # Never -march=native (BUILD-NOTES): only the kernel libraries get ISA flags, in kernels.gypi.
      'cflags!': ['-fno-exceptions'],
      'cflags_cc!': ['-fno-exceptions', '-std=gnu++17', '-std=gnu++20'],
      'cflags_cc': ['-std=c++17', '-O3', '-fexceptions', '-Wall', '-Wextra', '-Wno-unused-parameter',
                    '-fvisibility=hidden'],
    },
  ],
}
