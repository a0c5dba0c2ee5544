// Inputs of `mixt data pack`, read as a stream of raw documents (segments of text, image paths or
// token ids) without loading whole files: JSONL documents, captioned-image lists (CSV or JSONL of
// file, caption), ImageFolder layouts (folder names are the captions), and plain text files.
import * as fs from 'fs';
import * as path from 'path';
import * as readline from 'readline';

// A caption segment followed by an image segment is a captioned image: the packer writes it in the
// directions asked (caption -> image, image -> caption).
export type RawSegment = { text: string } | { caption: string } | { image: string } | { modality: string; tokens: unknown };

export interface RawDoc {
  source: string; // file[:line], for messages
  key: string; // stable identity for the held-out split
  input: string; // the input argument it came from
  segments: RawSegment[];
}

export interface SourceProblem {
  source: string;
  reason: string;
}

export const IMAGE_EXT = ['.png', '.jpg', '.jpeg'];
const CAPTION_FILES = ['captions.csv', 'captions.jsonl', 'metadata.csv', 'metadata.jsonl'];
export const isImage = (f: string) => IMAGE_EXT.includes(path.extname(f).toLowerCase());
const isJsonl = (f: string) => ['.jsonl', '.ndjson'].includes(path.extname(f).toLowerCase());

// A document's identity for the held-out split: its path relative to the input it came from (the
// split does not change when the data moves).
const inputBase = new Map<string, string>();
function keyOf(input: string, file: string): string {
  let base = inputBase.get(input);
  if (base === undefined) inputBase.set(input, (base = fs.statSync(input).isDirectory() ? input : path.dirname(input)));
  return path.relative(base, file).split(path.sep).join('/');
}

// Every line of a file, streamed.
async function* lines(file: string): AsyncGenerator<[string, number]> {
  const rl = readline.createInterface({ input: fs.createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let n = 0;
  for await (const line of rl) yield [line, ++n];
}

// One CSV record (RFC 4180 quoting) of a single line.
export function parseCsvLine(line: string): string[] {
  const out: string[] = [];
  let cur = '', quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') (cur += '"'), i++;
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') out.push(cur), (cur = '');
    else cur += c;
  }
  out.push(cur);
  return out;
}

// A JSONL line -> a document: {"segments": [...]} (text, image or token-id segments), {"tokens": [...]},
// {"text": "..."}, or a captioned image {"file"|"image": path, "caption"|"text": "..."}.
function jsonDocument(value: unknown, dir: string): RawSegment[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('expected a JSON object');
  const v = value as Record<string, unknown>;
  const img = (p: unknown, field: string) => {
    if (typeof p !== 'string' || !p) throw new Error(`field "${field}" must be a file path, received ${JSON.stringify(p)}`);
    return { image: path.resolve(dir, p) };
  };
  if (v.segments !== undefined) {
    if (!Array.isArray(v.segments)) throw new Error('field "segments" must be an array');
    return v.segments.map((s, i) => {
      if (typeof s !== 'object' || s === null) throw new Error(`segments[${i}] must be an object {"text"}, {"image"} or {"modality", "tokens"}, received ${JSON.stringify(s)}`);
      const seg = s as Record<string, unknown>;
      if (typeof seg.text === 'string') return { text: seg.text };
      if (seg.image !== undefined) return img(seg.image, `segments[${i}].image`);
      if (seg.tokens !== undefined || seg.modality !== undefined) return { modality: String(seg.modality), tokens: seg.tokens };
      throw new Error(`segments[${i}] must have "text" (a string), "image" (a path) or "modality" and "tokens"`);
    });
  }
  const file = v.file ?? v.image;
  if (file !== undefined) {
    const cap = v.caption ?? v.text;
    if (typeof cap !== 'string') throw new Error(`field "caption" must be a string, received ${JSON.stringify(cap)}`);
    return [{ caption: cap }, img(file, v.file !== undefined ? 'file' : 'image')];
  }
  if (v.tokens !== undefined) return [{ modality: '*', tokens: v.tokens }];
  if (typeof v.text === 'string') return [{ text: v.text }];
  throw new Error(`expected "segments", "tokens", "text" or "file" and "caption"`);
}

// Plain text: documents at blank lines, long paragraphs cut at line ends near maxChars.
async function* textFile(file: string, input: string, maxChars: number): AsyncGenerator<RawDoc> {
  let buf: string[] = [], chars = 0, k = 0, startLine = 1;
  const emit = (): RawDoc => {
    const doc = { source: `${file}:${startLine}`, key: `${keyOf(input, file)}#${k++}`, input, segments: [{ text: buf.join('\n') }] };
    buf = [];
    chars = 0;
    return doc;
  };
  for await (const [line, n] of lines(file)) {
    if (!line.trim()) {
      if (buf.length) yield emit();
      startLine = n + 1;
      continue;
    }
    if (!buf.length) startLine = n;
    buf.push(line);
    chars += line.length + 1;
    if (chars >= maxChars) yield emit();
  }
  if (buf.length) yield emit();
}

async function* jsonlFile(file: string, input: string, problems: SourceProblem[]): AsyncGenerator<RawDoc> {
  const dir = path.dirname(file);
  for await (const [line, n] of lines(file)) {
    if (!line.trim()) continue;
    const where = `${file}:${n}`;
    try {
      yield { source: where, key: `${keyOf(input, file)}#${n}`, input, segments: jsonDocument(JSON.parse(line), dir) };
    } catch (e) {
      problems.push({ source: where, reason: e instanceof SyntaxError ? `not JSON (${e.message})` : (e as Error).message });
    }
  }
}

async function* csvCaptions(file: string, input: string, problems: SourceProblem[]): AsyncGenerator<RawDoc> {
  const dir = path.dirname(file);
  for await (const [line, n] of lines(file)) {
    if (!line.trim()) continue;
    const f = parseCsvLine(line);
    if (n === 1 && ['file', 'image', 'file_name', 'filename', 'path'].includes(f[0].trim().toLowerCase())) continue; // a header row
    if (f.length < 2 || !f[0].trim()) {
      problems.push({ source: `${file}:${n}`, reason: 'expected two columns: file, caption' });
      continue;
    }
    yield { source: `${file}:${n}`, key: `${keyOf(input, file)}#${n}`, input, segments: [{ caption: f.slice(1).join(',').trim() }, { image: path.resolve(dir, f[0].trim()) }] };
  }
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

// A folder: its caption list if it has one (captions.csv / metadata.jsonl ...), else an ImageFolder
// layout (each image's caption is its folder's name, underscores as spaces); text and JSONL files
// in it are read as such.
async function* folder(dir: string, input: string, problems: SourceProblem[], maxChars: number): AsyncGenerator<RawDoc> {
  const list = CAPTION_FILES.map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
  const files = walk(dir);
  if (list) yield* file(list, input, problems, maxChars);
  for (const f of files) {
    if (f === list) continue;
    if (isImage(f)) {
      if (list) continue; // images come from the caption list
      const rel = path.relative(dir, path.dirname(f));
      if (!rel) {
        problems.push({ source: f, reason: 'an image at the top of an ImageFolder has no class folder (its caption); skipped' });
        continue;
      }
      const caption = rel.split(path.sep).pop()!.replace(/[_-]+/g, ' ');
      yield { source: f, key: keyOf(input, f), input, segments: [{ caption }, { image: f }] };
    } else if (/\.(txt|md|text)$/i.test(f) || isJsonl(f)) yield* file(f, input, problems, maxChars);
  }
}

async function* file(f: string, input: string, problems: SourceProblem[], maxChars: number): AsyncGenerator<RawDoc> {
  if (isJsonl(f)) yield* jsonlFile(f, input, problems);
  else if (path.extname(f).toLowerCase() === '.csv') yield* csvCaptions(f, input, problems);
  else yield* textFile(f, input, maxChars);
}

// Every document of every input, in order. Problems (unreadable inputs, bad lines) are collected,
// never thrown: the run goes on and reports them at the end.
export async function* readInputs(inputs: string[], problems: SourceProblem[], maxChars = 4000): AsyncGenerator<RawDoc> {
  for (const input of inputs) {
    let st: fs.Stats;
    try {
      st = fs.statSync(input);
    } catch (e) {
      problems.push({ source: input, reason: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (e as Error).message });
      continue;
    }
    if (st.isDirectory()) yield* folder(input, input, problems, maxChars);
    else if (isImage(input)) problems.push({ source: input, reason: 'an image alone has no caption: give its folder or a caption list' });
    else yield* file(input, input, problems, maxChars);
  }
}
