#!/usr/bin/env bash
# Static checks of the fast CUDA kernels that need no GPU (run by .ci/run after the build).
#  ptxas (-v, every kernel of each file below):
#    - no spill stores/loads and no stack frame (local memory);
#    - no C751x "wgmma serialized" message (ptxas prints them as info, which -Werror does not catch);
#    - setmaxnreg only through sm90::RegSplit (its static_assert checks the split's budget), and the
#      launch register count ptxas chose is the one the split declares.
#  SASS (sm_90a kernels), when a disassembler is at hand (see below):
#    - each kernel holds HGMMA and UTMALDG, and no LDL/STL.
# The SASS part needs an nvdisasm that reads sm_90 cubins: $MIXT_NVDISASM, one on PATH or in the CUDA
# toolkit, or Debian's (CUDA 11.8, reads them after a header rewrite), cached in $MIXT_SASS_CACHE
# (default ~/.cache/mixt-sass) and fetched there once (~85 MB from Debian's non-free section) unless
# MIXT_STATIC_SASS=0. Without nvcc the whole check is skipped, and says so.
#   scripts/cuda-static-check.sh            exit 1 on any finding
set -uo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvcc >/dev/null; then
  echo "cuda-static-check: skipped (no nvcc)"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# file:arch of every file with a fast kernel (the sm_90a ones disassembled too)
targets=(hopper_gemm:sm_90a hopper_attention:sm_90a grouped_gemm:sm_80 mma_attention:sm_80)
start=$SECONDS
for t in "${targets[@]}"; do
  f=${t%%:*} arch=${t##*:}
  nvcc -cubin -arch="$arch" -std=c++17 -O3 --expt-relaxed-constexpr -Xptxas=-v -Inative -o "$work/$f.cubin" "native/cuda/$f.cu" \
    >"$work/$f.ptxas" 2>&1 &
done
wait
fail=0
finding() {
  echo "cuda-static-check: $*"
  fail=1
}
for t in "${targets[@]}"; do
  f=${t%%:*} arch=${t##*:}
  log="$work/$f.ptxas"
  [ -s "$work/$f.cubin" ] || { cat "$log"; finding "$f.cu does not compile for $arch"; continue; }
  grep -E "C75[0-9][0-9]" "$log" | sed "s/^/$f: /" | grep . && finding "$f.cu: wgmma serialized (C751x above)"
  # per kernel: "Function properties for K" then "N bytes stack frame, N bytes spill stores, N bytes spill loads"
  awk -v f="$f" '
    /Function properties for/ { k = $NF }
    /bytes stack frame/ { if ($1 + 0 > 0 || $5 + 0 > 0 || $9 + 0 > 0) { print f ": " k ": " $0; bad = 1 } }
    END { exit bad }' "$log" || finding "$f.cu: spills or local memory (above)"
  src="native/cuda/$f.cu"
  if grep -n "setmaxnreg\." "$src" | grep .; then finding "$src: setmaxnreg outside sm90::RegSplit (above)"; fi
done
# SASS: find a disassembler
dis=${MIXT_NVDISASM:-$(command -v nvdisasm || true)}
[ -z "$dis" ] && [ -x "$(dirname "$(command -v nvcc)")/nvdisasm" ] && dis="$(dirname "$(command -v nvcc)")/nvdisasm"
cache=${MIXT_SASS_CACHE:-$HOME/.cache/mixt-sass}
rewrite=0
if [ -z "$dis" ]; then
  dis="$cache/root/usr/bin/nvdisasm"
  rewrite=1
  if [ ! -x "$dis" ] && [ "${MIXT_STATIC_SASS:-1}" != 0 ]; then
    echo "cuda-static-check: fetching Debian's nvidia-cuda-toolkit (non-free) for nvdisasm into $cache"
    mkdir -p "$cache/lists/partial" "$cache/archives/partial" "$cache/root"
    echo "deb http://deb.debian.org/debian bookworm non-free" >"$cache/sources.list"
    apt_opts=(-o Dir::Etc::SourceList="$cache/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o Dir::State::Lists="$cache/lists" -o Dir::Cache::Archives="$cache/archives" -o APT::Get::List-Cleanup=0)
    { apt-get "${apt_opts[@]}" update -qq && (cd "$cache/archives" && apt-get "${apt_opts[@]}" download nvidia-cuda-toolkit) &&
      dpkg -x "$cache"/archives/nvidia-cuda-toolkit_*.deb "$cache/root"; } >"$work/fetch.log" 2>&1 || tail -5 "$work/fetch.log"
  fi
fi
if [ ! -x "$dis" ]; then
  echo "cuda-static-check: SASS part skipped (no nvdisasm; MIXT_STATIC_SASS=${MIXT_STATIC_SASS:-1})"
else
  for t in "${targets[@]}"; do
    f=${t%%:*} arch=${t##*:}
    [ "$arch" = sm_90a ] && [ -s "$work/$f.cubin" ] || continue
    cubin="$work/$f.cubin"
    if [ $rewrite = 1 ]; then # the 11.8 disassembler reads the pre-12 ELF header layout (EI_ABIVERSION, e_flags)
      python3 - "$cubin" <<'PY'
import struct, sys
p = sys.argv[1]; d = bytearray(open(p, 'rb').read())
sm = (struct.unpack_from('<I', d, 0x30)[0] >> 8) & 0xff
d[8] = 7; struct.pack_into('<I', d, 0x30, (sm << 16) | 0x500 | sm)
open(p, 'wb').write(d)
PY
    fi
    "$dis" -c "$cubin" >"$work/$f.sass" 2>"$work/$f.dis" || { cat "$work/$f.dis"; finding "$f: nvdisasm failed"; continue; }
    # per kernel (".text.<name>:" sections): counts of the instructions that matter
    awk -v f="$f" '
      /^\/\/-+ \.text\./ { if (k != "") check(); k = $2; hg = 0; tma = 0; loc = 0; next }
      /HGMMA\./ { hg++ } /UTMALDG/ { tma++ } /\<(LDL|STL)\>/ { loc++ }
      function check() {
        if (hg == 0 || tma == 0 || loc > 0) { print f ": " k ": HGMMA " hg ", UTMALDG " tma ", LDL/STL " loc; bad = 1 }
      }
      END { if (k != "") check(); exit bad }' "$work/$f.sass" || finding "$f: a sm_90a kernel lacks HGMMA/UTMALDG or uses local memory (above)"
    # the launch register count of each kernel with setmaxnreg is one a RegSplit of the file declares
    want=$(grep -oE 'RegSplit<[^>]*>' "native/cuda/$f.cu" | sed -E 's/.*<([^>]*)>.*/\1/' | awk -F', *' '{print $5}' | sort -u)
    got=$(grep -E "Used [0-9]+ registers" "$work/$f.ptxas" | grep -oE "Used [0-9]+" | awk '{print $2}' | sort -u)
    for r in $got; do echo "$want" | grep -qx "$r" || finding "$f: a kernel launches with $r registers; its RegSplit declares ${want//$'\n'/,}"; done
  done
fi
echo "cuda-static-check: $([ $fail = 0 ] && echo ok || echo FAILED) ($((SECONDS - start)) s)"
exit $fail
