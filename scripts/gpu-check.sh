#!/usr/bin/env bash
# Proof on a GPU machine: every CUDA parity test (each test in its own process, so one kernel
# fault cannot poison the others), the opt-in Hopper kernels against the same tests, then the
# bench suites beside PyTorch. Logs go to $OUT (or ./gpu-out): jest.log, bench.txt, bench.err.
# Usage: scripts/gpu-check.sh [step]...   steps: tests foundation model hopper hopper-gemm mma bench
#   bench-gemm bench-gemm-default step bench-hopper bench-mma attention bench-attention
# The default (hopper-gemm bench-gemm step) fits one device call of 8 minutes: the Hopper GEMM's parity
# (grouped forward/dX/dW, matmul), its gemm and grouped-gemm suites beside PyTorch, and the small
# preset's training step on it. Every step's time limit is cut to what is left of GPU_CHECK_BUDGET
# seconds (default 450), and a step that would start with under 20 s left is skipped, saying so.
# The attention proof: scripts/gpu-check.sh attention bench-attention (both together with the GEMM's
# default steps need GPU_CHECK_BUDGET raised past one 8-minute call: run them as a second call).
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
steps=${*:-hopper-gemm bench-gemm step}
budget=${GPU_CHECK_BUDGET:-450}
# seconds a step may run: its own cap, or what is left of the budget
limit() { local left=$((budget - SECONDS)); echo $(($1 < left ? $1 : left)); }
export MIXT_SKIP_LOAD_CHECK=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
node -e "const m=require('./dist');console.log(JSON.stringify(m.devices()))"
jestrun() { # label, timeout, jest args...
  local label=$1 t; t=$(limit "$2"); shift 2
  [ "$t" -lt 20 ] && { echo "== $label skipped: the ${budget} s budget is spent"; return; }
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
    local cap=${BENCH_TIMEOUT:-120}
    [ "$s" = attention ] && cap=$((cap * 3)) # 28 cases up to 16k tokens, forward and backward
    local t; t=$(limit "$cap")
    [ "$t" -lt 20 ] && { echo "== $label $s skipped: the ${budget} s budget is spent"; continue; }
    timeout "$t" node bin/mixt.js bench --suite "$s" ${BENCH_FILTER:+--filter "$BENCH_FILTER"} ${BENCH_CASE_SECONDS:+--case-seconds "$BENCH_CASE_SECONDS"} >/tmp/bench-$s.txt 2>/tmp/bench-$s.err
    echo "== $label $s rc=$? $((SECONDS - start))s"
    cat /tmp/bench-$s.txt; tail -3 /tmp/bench-$s.err
    { echo "######## $label $s"; cat /tmp/bench-$s.txt; } >>"$OUT/bench.txt"
    { echo "######## $label $s"; cat /tmp/bench-$s.err; } >>"$OUT/bench.err"
  done
}
# the sm_90a GEMM against the grouped GEMM (forward, dX, dW) and matmul parity tests
hopper_gemm_parity() {
  MIXT_HOPPER_GEMM=1 jestrun hopper-gemm 120 test/cuda/ops.test.ts -t 'grouped GEMM'
  MIXT_HOPPER_GEMM=1 jestrun hopper-matmul 90 test/cuda/foundation.test.ts -t 'matmul'
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
  hopper-gemm) hopper_gemm_parity ;;
  hopper) # the opt-in sm_90a kernels against the same tests
    hopper_gemm_parity
    MIXT_HOPPER_ATTENTION=1 jestrun hopper-attention 100 test/cuda/ops.test.ts -t 'attention forward.*bf16'
    ;;
  mma) # the opt-in tensor-core attention (forward and backward, f32 and bf16) against the same tests
    MIXT_MMA_ATTENTION=1 jestrun mma-attention 200 test/cuda/ops.test.ts -t 'attention forward'
    ;;
  bench) bench bench ${BENCH_SUITES:-gemm grouped-gemm attention norm routing loss adamw block step} ;;
  bench-gemm) MIXT_HOPPER_GEMM=1 BENCH_TIMEOUT=${BENCH_TIMEOUT:-110} bench bench-hopper-gemm gemm grouped-gemm ;;
  bench-gemm-default) BENCH_TIMEOUT=${BENCH_TIMEOUT:-110} bench bench-gemm-default gemm grouped-gemm ;;
  step) MIXT_HOPPER_GEMM=1 BENCH_FILTER=${BENCH_FILTER:-small} BENCH_TIMEOUT=${BENCH_TIMEOUT:-150} bench step-hopper-gemm step ;;
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
  *) echo "gpu-check: unknown step $step" ;;
  esac
done
echo "gpu-check: ${SECONDS} s of ${budget}"
