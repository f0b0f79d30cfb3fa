// runtime.cu for the hostsim addon: it holds no device code, so g++ compiles it as C++ against the stand-in
// cuda_runtime.h (include/). Included rather than compiled under its own name so that the shipped addon's
// runtime.cu stays a CUDA source (a source file's language is one for every target of a CMake directory).
#include "runtime.cu"
