#!/usr/bin/env bash
# Proof on a GPU machine: every CUDA parity test (each test in its own process, so one kernel
# fault cannot poison the others), the opt-in Hopper kernels against the same tests, then the
# bench suites beside PyTorch. Logs go to $OUT (or ./gpu-out): jest.log, bench.txt, bench.err. Usage: scripts/gpu-check.sh [tests|foundation|model|hopper|mma|bench|bench-hopper|bench-mma|attention|bench-attention]...
# The attention proof in one call of under 8 minutes: scripts/gpu-check.sh attention bench-attention
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
steps=${*:-tests hopper mma bench bench-mma}
export MIXT_SKIP_LOAD_CHECK=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
node -e "const m=require('./dist');console.log(JSON.stringify(m.devices()))"
jestrun() { # label, timeout, jest args...
  local label=$1 t=$2; shift 2
  local start=$SECONDS
  timeout "$t" npx jest --ci "$@" >/tmp/jest-$label.log 2>&1
  local rc=$?
  { echo "######## $label rc=$rc"; cat /tmp/jest-$label.log; } >>"$OUT/jest.log"
  echo "== $label rc=$rc $((SECONDS - start))s: $(grep -E '^Tests:' /tmp/jest-$label.log | tail -1)"
  grep -E '✕|●.*›|Error:|max relative' /tmp/jest-$label.log | head -20
}
bench() { # label, suites...
  local label=$1; shift
  for s in "$@"; do
    start=$SECONDS
    local limit=${BENCH_TIMEOUT:-120}
    [ "$s" = attention ] && limit=$((limit * 3)) # 28 cases up to 16k tokens, forward and backward
    timeout "$limit" node bin/mixt.js bench --suite "$s" ${BENCH_FILTER:+--filter "$BENCH_FILTER"} ${BENCH_CASE_SECONDS:+--case-seconds "$BENCH_CASE_SECONDS"} >/tmp/bench-$s.txt 2>/tmp/bench-$s.err
    echo "== $label $s rc=$? $((SECONDS - start))s"
    cat /tmp/bench-$s.txt; tail -3 /tmp/bench-$s.err
    { echo "######## $label $s"; cat /tmp/bench-$s.txt; } >>"$OUT/bench.txt"
    { echo "######## $label $s"; cat /tmp/bench-$s.err; } >>"$OUT/bench.err"
  done
}
for step in $steps; do
  case $step in
  tests) # every CUDA parity test
    jestrun foundation 150 test/cuda/foundation.test.ts
    for pat in 'routing plan' 'norms and SwiGLU' 'grouped GEMM' 'attention forward' 'rope, cross'; do
      jestrun "ops-${pat%% *}" 200 test/cuda/ops.test.ts -t "$pat"
    done
    jestrun model 300 test/cuda/model.test.ts
    ;;
  foundation) jestrun foundation 150 test/cuda/foundation.test.ts ;;
  model) jestrun model 300 test/cuda/model.test.ts ;;
  hopper) # the opt-in sm_90a kernels against the same tests
    MIXT_HOPPER_GEMM=1 jestrun hopper-gemm 150 test/cuda/ops.test.ts -t 'grouped GEMM'
    MIXT_HOPPER_GEMM=1 jestrun hopper-matmul 150 test/cuda/foundation.test.ts -t 'matmul'
    MIXT_HOPPER_ATTENTION=1 jestrun hopper-attention 100 test/cuda/ops.test.ts -t 'attention forward.*bf16'
    ;;
  mma) # the opt-in tensor-core attention (forward and backward, f32 and bf16) against the same tests
    MIXT_MMA_ATTENTION=1 jestrun mma-attention 200 test/cuda/ops.test.ts -t 'attention forward'
    ;;
  bench) bench bench ${BENCH_SUITES:-gemm grouped-gemm attention norm routing loss adamw block step} ;;
  bench-hopper) MIXT_HOPPER_GEMM=1 MIXT_HOPPER_ATTENTION=1 bench bench-hopper ${BENCH_SUITES:-gemm grouped-gemm attention} ;;
  bench-mma) MIXT_MMA_ATTENTION=1 bench bench-mma attention ;;
  attention) # the tensor-core attention kernels against the CPU reference (every mask, hd 64/128, GQA 1/2/4, f32 and bf16):
    # Hopper forward + mma.sync backward, then mma.sync alone (on sm_90 the Hopper forward shadows it)
    MIXT_HOPPER_ATTENTION=1 MIXT_MMA_ATTENTION=1 jestrun attention-hopper 200 test/cuda/ops.test.ts -t 'attention'
    MIXT_MMA_ATTENTION=1 jestrun attention-mma 200 test/cuda/ops.test.ts -t 'attention'
    ;;
  bench-attention) # the target shapes beside PyTorch SDPA, without the SIMT kernel: causal S 4096 / 8192 at
    # hd 64 and 128 (16k tokens), image spans and packed documents (TFLOP/s on visible pairs)
    MIXT_HOPPER_ATTENTION=1 MIXT_MMA_ATTENTION=1 BENCH_FILTER='(4x4096|2x8192) tokens|spans|docs' BENCH_CASE_SECONDS=${BENCH_CASE_SECONDS:-3} \
      BENCH_TIMEOUT=${BENCH_TIMEOUT:-80} bench bench-attention attention ;;
  esac
done
