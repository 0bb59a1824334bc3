// Compressed tensors on the wire: BFLOAT16, FLOAT16 and INT8_BLOCK (the
// formats of proto/gameopt/v1/gameopt.proto, enum DType, and
// server/core/wire_codec.h), over typed arrays. Round-to-nearest-even
// writes the same bytes as the C++ and Python codecs; stochastic rounding
// draws its bits from crypto.randomFillSync, so E[decoded] = the float32
// value. Values are first rounded to float32 (Float32Array.from).
// encode() returns null when a finite value does not fit the format
// (FLOAT16 past 65504): send that tensor as FLOAT32.
'use strict';

const crypto = require('crypto');

const BLOCK = 256;  // INT8_BLOCK values per float32 scale
const COMPRESSED = new Set(['BFLOAT16', 'FLOAT16', 'INT8_BLOCK']);
const EXP = 0x7f800000;

const scratchF = new Float32Array(1);
const scratchU = new Uint32Array(scratchF.buffer);
function bitsOf(f) { scratchF[0] = f; return scratchU[0]; }
function floatOf(u) { scratchU[0] = u >>> 0; return scratchF[0]; }

function nbytes(dtype, n) {
  return dtype === 'INT8_BLOCK' ? n + 4 * Math.ceil(n / BLOCK) : 2 * n;
}

function randomWords(n) {
  const words = new Uint32Array(n);
  for (let at = 0; at < n; at += 16384) {
    crypto.randomFillSync(words.subarray(at, Math.min(n, at + 16384)));
  }
  return words;
}

function bf16(u, r) {
  if ((u & 0x7fffffff) >>> 0 > EXP) return ((u >>> 16) | 0x40) & 0xffff;
  if (r === null) return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
  return ((u + (r >>> 16)) >>> 16) & 0xffff;
}

function f16Nearest(u) {
  const sign = (u >>> 16) & 0x8000;
  const x = (u & 0x7fffffff) >>> 0;
  let o;
  if (x >= 0x47800000) {
    o = x > EXP ? 0x7e00 : 0x7c00;
  } else if (x < 0x38800000) {
    // The float32 addition rounds to nearest-even at 2^-24.
    o = bitsOf(Math.fround(floatOf(x) + 0.5)) - 0x3f000000;
  } else {
    o = (x - (112 << 23) + 0xfff + ((x >>> 13) & 1)) >>> 13;
  }
  return o | sign;
}

function f16Stochastic(u, r) {
  const sign = (u >>> 16) & 0x8000;
  const x = (u & 0x7fffffff) >>> 0;
  let o;
  if (x >= EXP) {
    o = x > EXP ? 0x7e00 : 0x7c00;
  } else if (x >= 0x38800000) {
    o = Math.min((x - (112 << 23) + (r & 0x1fff)) / 8192 | 0, 0x7c00);
  } else {
    const e = x >>> 23, s = 126 - e;
    const m = (x & 0x7fffff) | 0x800000;
    // (m + (r >> (32 - s))) >> s in doubles: exact below 2^53.
    o = e === 0 || s > 32 ? 0
      : Math.floor((m + Math.floor(r / 2 ** (32 - s))) / 2 ** s);
  }
  return o | sign;
}

function roundEven(q) {
  let r = Math.round(q);  // half up
  if (r - q === 0.5 && r % 2 !== 0) r -= 1;
  return r;
}

function int8(v, r, out) {
  const n = v.length;
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let b = 0, at = 0; b < n; b += BLOCK) {
    const len = Math.min(BLOCK, n - b);
    let amax = 0, finite = true;
    for (let i = 0; i < len; ++i) {
      const a = Math.abs(v[b + i]);
      if (!Number.isFinite(a)) finite = false;
      else if (a > amax) amax = a;
    }
    const scale = finite ? Math.fround(amax / 127) : NaN;
    view.setFloat32(at, scale, true);
    at += 4;
    for (let i = 0; i < len; ++i) {
      let q = 0;
      if (scale > 0) {
        const x = Math.fround(v[b + i] / scale);
        if (r === null) {
          q = roundEven(x);
        } else {
          const near = roundEven(x);
          const floor = near > x ? near - 1 : near;
          const u = Math.fround((r[b + i] >>> 8) / 16777216);
          q = u < x - floor ? floor + 1 : floor;
        }
        q = Math.max(-127, Math.min(127, q));
      }
      view.setInt8(at++, q);
    }
  }
}

// `values` (any numeric array) in the compressed `dtype` as a Buffer, or
// null when a finite value does not fit.
function encode(values, dtype, stochastic = false) {
  const v = Float32Array.from(values);
  const u = new Uint32Array(v.buffer);
  const n = v.length;
  const r = stochastic ? randomWords(n) : null;
  const out = Buffer.alloc(nbytes(dtype, n));
  if (dtype === 'INT8_BLOCK') {
    int8(v, r, out);
    return out;
  }
  const half = new Uint16Array(n);
  const inf = dtype === 'BFLOAT16' ? 0x7f80 : 0x7c00;
  for (let i = 0; i < n; ++i) {
    let o;
    if (dtype === 'BFLOAT16') o = bf16(u[i], r === null ? null : r[i]);
    else if (dtype === 'FLOAT16') o = r === null ? f16Nearest(u[i]) : f16Stochastic(u[i], r[i]);
    else throw new Error(`${dtype} is not a compressed wire dtype`);
    if ((o & inf) === inf && (u[i] & EXP) >>> 0 !== EXP) return null;
    half[i] = o;
  }
  for (let i = 0; i < n; ++i) out.writeUInt16LE(half[i], 2 * i);
  return out;
}

function f16ToFloat(h) {
  const e = (h >>> 10) & 0x1f, m = h & 0x3ff;
  const sign = h & 0x8000 ? -1 : 1;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1024 + m) * 2 ** (e - 25);
}

// n float32 values (a Float32Array) from the bytes of the compressed dtype.
function decode(bytes, dtype, n) {
  if (bytes.length !== nbytes(dtype, n)) {
    throw new Error(`${bytes.length} bytes do not hold ${n} values of ${dtype}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  if (dtype === 'BFLOAT16') {
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < n; ++i) u[i] = view.getUint16(2 * i, true) << 16;
  } else if (dtype === 'FLOAT16') {
    for (let i = 0; i < n; ++i) out[i] = f16ToFloat(view.getUint16(2 * i, true));
  } else if (dtype === 'INT8_BLOCK') {
    for (let b = 0, at = 0; b < n; b += BLOCK) {
      const len = Math.min(BLOCK, n - b);
      const scale = view.getFloat32(at, true);
      at += 4;
      for (let i = 0; i < len; ++i) out[b + i] = Math.fround(view.getInt8(at++) * scale);
    }
  } else {
    throw new Error(`${dtype} is not a compressed wire dtype`);
  }
  return out;
}

module.exports = { BLOCK, COMPRESSED, nbytes, encode, decode };
