// Which tokens of each sequence go through a Mixture-of-Depths block. 'sequence': the k = ceil(C * S)
// highest router scores of each packed row, all modalities together (the MoD paper's text-only
// setting). 'modality': the same k per row, shared among the modalities in proportion to their
// tokens in the row (largest remainder), each modality's share taken by its own top scores. With
// one router over interleaved modalities the shared top-k lets one modality's scores crowd out
// another's (on the embedded corpus, under 2% of the picture tokens were chosen against 32 to 45% of
// the caption tokens); README, Mixture-of-Depths, says why 'sequence' stays the default.
// Ties go to the earlier token. The result is ascending token indices [R * k] and a 0/1 mask [T].
import { Tensor } from '../core/tensor';
import { add, full, gatherRows, scatterRows, tensor, topkRows } from '../ops';

export type ModCapacityBy = 'sequence' | 'modality';

// Slots of each modality in one row: k split in proportion to `counts` (largest remainder; equal
// remainders to the lower modality id); sums to k; a modality gets at most its count.
export function modalityQuota(counts: number[], k: number): number[] {
  const n = counts.reduce((a, b) => a + b, 0);
  // a k beyond the tokens could never be handed out (the loop below would not end)
  if (!Number.isSafeInteger(k) || k < 0 || k > n) throw new RangeError(`modalityQuota: argument "k" expected an integer in [0, ${n}], received ${k}`);
  if (n === 0) return counts.map(() => 0);
  const exact = counts.map((c) => (k * c) / n);
  const quota = exact.map(Math.floor);
  const order = exact.map((e, m) => ({ m, r: e - Math.floor(e) })).sort((a, b) => b.r - a.r || a.m - b.m);
  for (let left = k - quota.reduce((a, b) => a + b, 0), i = 0; left > 0; i++) {
    const m = order[i % order.length].m;
    if (quota[m] < counts[m]) {
      quota[m]++;
      left--;
    }
  }
  return quota;
}

// Host tables of the per-modality choice: one segment (a row of the padded score matrix) per
// (row, modality) with a quota q > 0, holding its tokens' scores, then (K - q) slots that always
// win (so the top K of the segment keep exactly its q best tokens), then slots that never win.
interface SegmentTables {
  segments: number;
  width: number; // P: slots per segment
  K: number; // greatest quota
  slotToken: Int32Array; // [segments * P] token of each slot (0 for the padding)
  slotReal: Float64Array; // [segments * P] 1 for a token's slot
  slotBias: Float64Array; // [segments * P] 0 for a token, +BIG always wins, -BIG never
}

const BIG = 1e30;

function segmentTables(modality: Int32Array, modalities: number, rowLength: number, k: number): SegmentTables {
  const R = modality.length / rowLength;
  const segs: { tokens: number[]; q: number }[] = [];
  for (let r = 0; r < R; r++) {
    const members = Array.from({ length: modalities }, () => [] as number[]);
    for (let i = r * rowLength; i < (r + 1) * rowLength; i++) {
      const m = modality[i];
      if (!(m >= 0 && m < modalities)) throw new RangeError(`chooseTokens: modality id ${m} of token ${i} is outside [0, ${modalities})`);
      members[m].push(i);
    }
    const quota = modalityQuota(members.map((t) => t.length), k);
    members.forEach((tokens, m) => quota[m] > 0 && segs.push({ tokens, q: quota[m] }));
  }
  const K = Math.max(...segs.map((s) => s.q));
  const P = Math.max(...segs.map((s) => s.tokens.length + K - s.q));
  const slotToken = new Int32Array(segs.length * P), slotReal = new Float64Array(segs.length * P), slotBias = new Float64Array(segs.length * P).fill(-BIG);
  segs.forEach((s, g) => {
    const base = g * P;
    s.tokens.forEach((t, j) => {
      slotToken[base + j] = t;
      slotReal[base + j] = 1;
      slotBias[base + j] = 0;
    });
    for (let j = 0; j < K - s.q; j++) slotBias[base + s.tokens.length + j] = BIG;
  });
  return { segments: segs.length, width: P, K, slotToken, slotReal, slotBias };
}

// Chosen tokens of each row: the k best of the row ('sequence') or of each modality's share of it
// ('modality'), as ascending indices [R * k] (i32) and a mask [T] (1 where chosen, scores' dtype).
export function chooseTokens(
  scores: Tensor, // [T] router logits, original order
  modality: Int32Array | null, // [T] host modality ids (needed for 'modality')
  modalities: number,
  rowLength: number,
  k: number,
  by: ModCapacityBy,
): { idx: Tensor; mask: Tensor } {
  const T = scores.shape[0], R = T / rowLength;
  const dev = scores.device, dtype = scores.dtype;
  let ranked = scores; // [T]: the row's top-k of these are the chosen ones
  let mask: Tensor | null = null;
  if (by === 'modality' && modalities > 1) {
    if (!modality) throw new Error('chooseTokens: capacity by modality needs the modality ids on the host');
    const tab = segmentTables(modality, modalities, rowLength, k);
    const slotToken = tensor(tab.slotToken, [tab.slotToken.length], { dtype: 'i32', device: dev });
    const slotReal = tensor(tab.slotReal, [tab.slotReal.length], { dtype, device: dev });
    const slotBias = tensor(tab.slotBias, [tab.slotBias.length], { dtype, device: dev });
    const gathered = gatherRows(scores, slotToken);
    const padded = add(gathered, slotBias, gathered).reshape([tab.segments, tab.width]);
    const pick = topkRows(padded, tab.K, { flat: true });
    const picked = pick.reshape([tab.segments * tab.K]);
    const tokenOf = gatherRows(slotToken, picked), realOf = gatherRows(slotReal, picked);
    mask = scatterRows(realOf, tokenOf, T, { accumulate: true }); // exactly k ones per row
    for (const t of [slotToken, slotReal, slotBias, gathered, padded, pick, picked, tokenOf, realOf]) t.dispose();
    ranked = mask;
  }
  const rows = ranked.reshape([R, rowLength]);
  const idx2 = topkRows(rows, k, { flat: true });
  rows.dispose();
  const idx = idx2.reshape([R * k]);
  idx2.dispose();
  if (!mask) {
    const ones = full([R * k], 1, { device: dev, dtype });
    mask = scatterRows(ones, idx, T);
    ones.dispose();
  }
  return { idx, mask };
}
