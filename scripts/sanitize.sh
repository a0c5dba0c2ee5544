#!/usr/bin/env bash
# npm run test:sanitize [-- <jest args>]: builds the addon (CPU only) with AddressSanitizer and UBSan
# into build-asan/ and runs the CPU tests with it loaded into node (libasan preloaded: node itself is
# not instrumented). Any finding aborts the process and fails the run. Default: the op-family tests
# and the hardening regressions (every native entry point, a few minutes under ASan); the layer,
# attention, training and CLI files run the same kernels on larger shapes, 10x slower under ASan:
# MIXT_SANITIZE_TESTS='.*' runs everything.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build-asan
npx cmake-js compile --out "$out" --CDMIXT_CUDA=OFF --CDMIXT_SANITIZE=ON > "$out.log" 2>&1 || { tail -30 "$out.log"; exit 1; }
npx tsc -p tsconfig.json
asan=$(${CXX:-c++} -print-file-name=libasan.so)
[ -f "$asan" ] || { echo "sanitize: libasan.so not found (install the compiler's sanitizer runtime)"; exit 1; }
export MIXT_ADDON="$PWD/$out/Release/mixt.node"
export MIXT_SKIP_LOAD_CHECK=1
# node leaks by design at exit and installs its own SEGV handler: check memory errors and UB only
export ASAN_OPTIONS="detect_leaks=0:handle_segv=1:allow_user_segv_handler=1:abort_on_error=1:print_summary=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
pattern=${MIXT_SANITIZE_TESTS:-'(hardening|elementwise|routing|moe_ops|norm|loss|grouped_gemm|reduce|tensor|random|matmul|safetensors)\.test\.ts$'}
LD_PRELOAD="$asan" npx jest --testPathPattern "$pattern" "$@"
