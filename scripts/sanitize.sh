#!/usr/bin/env bash
# npm run test:sanitize [-- <jest args>]: builds the addon (CPU only) with AddressSanitizer and UBSan
# into build-asan/ and runs the CPU tests with it loaded into node (libasan preloaded: node itself is
# not instrumented). Any finding aborts the process and fails the run. Default: the whole CPU suite
# but the CLI/train/bench files (slow under ASan, and they exercise no other native code);
# MIXT_SANITIZE_TESTS overrides the jest path pattern.
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
pattern=${MIXT_SANITIZE_TESTS:-'^(?!.*(train|transfusion|bench|cli|data|reliability|device|cuda/)).*\.test\.ts$'}
LD_PRELOAD="$asan" npx jest --testPathPattern "$pattern" "$@"
