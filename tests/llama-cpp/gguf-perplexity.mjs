// SPDX-License-Identifier: Apache-2.0
//
// gguf-perplexity.mjs: llama.cpp (through node-llama-cpp's prebuilt CPU
// binaries) scores a GGUF file on token ids, with slimflow eval's protocol
// (slim-eval.h, shared/ref/REFERENCE.md): the ids (BOS first) are cut into
// non-overlapping windows of --ctx tokens from token 0; each window is
// evaluated alone in a fresh sequence and predicts its tokens 2..n; the
// result is the mean negative log-likelihood over all predictions and
// perplexity = exp(mean NLL).  The probabilities are llama.cpp's softmax of
// the raw logits (greedy sampler: nothing filtered); the KV cache is
// float32, as in slimflow eval.
//
// It also tokenizes --text with the tokenizer embedded in the file (BOS
// added as the file says) and reports how many ids differ from --ids.
//
//   node gguf-perplexity.mjs --modules DIR --model FILE.gguf --text FILE
//                            --ctx N [--ids IDS.json]
//
// DIR is the node_modules folder node-llama-cpp was installed into.
// Prints one JSON object on stdout.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || i + 1 >= argv.length)
      throw new Error(`bad argument ${argv[i]}`);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  for (const k of ["modules", "model", "text", "ctx"])
    if (out[k] === undefined) throw new Error(`--${k} is required`);
  return out;
}

const args = parseArgs(process.argv.slice(2));
const ctxSize = Number.parseInt(args.ctx, 10);
const text = readFileSync(args.text, "utf8").replace(/\r\n/g, "\n");

const { getLlama, LlamaLogLevel } = await import(
  pathToFileURL(join(args.modules, "node-llama-cpp", "dist", "index.js")).href
);
// prebuilt binaries from npm only: never build, never download
const llama = await getLlama({
  gpu: false,
  build: "never",
  usePrebuiltBinaries: true,
  progressLogs: false,
  logLevel: LlamaLogLevel.error,
});
const model = await llama.loadModel({ modelPath: args.model, gpuLayers: 0 });
const context = await model.createContext({
  contextSize: ctxSize,
  batchSize: ctxSize,
  sequences: 1,
  threads: 1,
  // float32 K/V as slimflow eval keeps them (llama.cpp's default is f16)
  experimentalKvCacheKeyType: "F32",
  experimentalKvCacheValueType: "F32",
});
const sequence = context.getSequence();
const llamaIds = [model.tokens.bos, ...model.tokenize(text, false)];
// without --ids, llama.cpp's own tokenization is scored
const ids = args.ids !== undefined ? JSON.parse(readFileSync(args.ids, "utf8")) : llamaIds;

let nll = 0;
let predictions = 0;
let windows = 0;
let minMass = 1;
let maxMass = 1;
for (let start = 0; start < ids.length; start += ctxSize) {
  const w = ids.slice(start, start + ctxSize);
  windows++;
  if (w.length < 2) continue;
  await sequence.clearHistory();
  const input = w.map((t, i) =>
    i + 1 < w.length ? [t, { generateNext: { probabilities: true } }] : t,
  );
  const results = await sequence.controlledEvaluate(input);
  for (let i = 0; i + 1 < w.length; i++) {
    const probs = results[i].next.probabilities;
    let mass = 0;
    for (const p of probs.values()) mass += p;
    minMass = Math.min(minMass, mass);
    maxMass = Math.max(maxMass, mass);
    const p = probs.get(w[i + 1]) ?? 0;
    nll -= Math.log(p);
    predictions++;
  }
}

// the embedded tokenizer against slimflow's ids
let differ = Math.abs(llamaIds.length - ids.length);
for (let i = 0; i < Math.min(llamaIds.length, ids.length); i++)
  if (llamaIds[i] !== ids[i]) differ++;

const meanNll = nll / predictions;
console.log(
  JSON.stringify({
    model: args.model,
    tokens: ids.length,
    windows,
    predictions,
    nll: meanNll,
    perplexity: Math.exp(meanNll),
    probability_mass_min: minMass,
    probability_mass_max: maxMass,
    llama_tokens: llamaIds.length,
    token_ids_differing: differ,
  }),
);
await context.dispose();
await model.dispose();
await llama.dispose();
