// gameopt: a Node.js worker library for the gameopt service (gameopt.v1).
//
// The proto is loaded at run time (@grpc/proto-loader) from
// ../../proto/gameopt/v1/gameopt.proto, or $GAMEOPT_PROTO_DIR. The worker
// loop and its retries mirror client/worker/worker.h:
//   join; GRADIENT -> game.drawMinibatches(n, seed), game.gradient(x, k)
//   (fused tasks: also game.vjp / game.jvp on sample k's own gradient);
//   PRODUCTS -> game.vjp / game.jvp per probe; UNAVAILABLE, CANCELLED (a
//   server stopping with the call in flight), ABORTED and DEADLINE_EXCEEDED
//   are retried with backoff resubmitting the same round;
//   FAILED_PRECONDITION rejoins with our worker id; DONE ends.
// Vectors are Float64Arrays in the server's flat layout (player by player,
// tensor by tensor, row-major). Tensor bytes are copied into typed arrays in
// one piece (little-endian hosts, as every platform Node.js runs on).
'use strict';

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const wireCodec = require('./wire_codec');

const PROTO_RELATIVE = 'gameopt/v1/gameopt.proto';

function protoRoot() {
  const candidates = [];
  if (process.env.GAMEOPT_PROTO_DIR) candidates.push(process.env.GAMEOPT_PROTO_DIR);
  candidates.push(path.resolve(__dirname, '..', '..', 'proto'));
  for (const root of candidates) {
    if (fs.existsSync(path.join(root, PROTO_RELATIVE))) return root;
  }
  throw new Error('gameopt.proto not found: set GAMEOPT_PROTO_DIR');
}

// The gameopt.v1 package object (GameOptimizer client constructor, enums).
function loadProto() {
  const root = protoRoot();
  const definition = protoLoader.loadSync(path.join(root, PROTO_RELATIVE), {
    includeDirs: [root],
    keepCase: true,    // field names as in the .proto: session_id, ...
    longs: String,     // int64 / uint64 as decimal strings, echoed back
    enums: String,     // 'GRADIENT', 'FLOAT64', ...
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).gameopt.v1;
}

// Adds `authorization: Bearer <token>` to every call. An interceptor, not
// call credentials, which gRPC refuses on plaintext channels.
function bearerInterceptor(token) {
  return (options, nextCall) => new grpc.InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      metadata.set('authorization', `Bearer ${token}`);
      next(metadata, listener);
    },
  });
}

// A GameOptimizer client with the 4 MiB message limits raised. Options:
// tlsRoots (path of the PEM roots of the server's certificate: TLS; else
// plaintext) and token (a bearer token for servers with a tokens file).
function makeClient(address, maxMessageMb = 1024, { tlsRoots, token } = {}) {
  const v1 = loadProto();
  const limit = Math.min(maxMessageMb, 2047) * 1024 * 1024;
  const credentials = tlsRoots
    ? grpc.credentials.createSsl(fs.readFileSync(tlsRoots))
    : grpc.credentials.createInsecure();
  return new v1.GameOptimizer(address, credentials, {
    'grpc.max_receive_message_length': limit,
    'grpc.max_send_message_length': limit,
    interceptors: token ? [bearerInterceptor(token)] : [],
  });
}

// Where each (player, tensor) lives in the flat vector.
class FlatLayout {
  // players: [{name, tensors: [{name, shape: [..]}]}] in session order.
  constructor(players) {
    this.players = players;
    this.offsets = new Map();
    let offset = 0;
    for (const player of players) {
      for (const tensor of player.tensors) {
        const size = tensor.shape.reduce((a, b) => a * b, 1);
        this.offsets.set(`${player.name}\u0000${tensor.name}`, { offset, size });
        offset += size;
      }
    }
    this.dimension = offset;
  }
  find(player, tensor) {
    return this.offsets.get(`${player}\u0000${tensor}`);
  }
}

// Writes the tensors of a Vector message into `out` (Float64Array).
function decodeVector(vector, layout, out) {
  for (const player of vector.players) {
    for (const tensor of player.tensors) {
      const where = layout.find(player.player, tensor.name);
      if (!where) {
        throw new Error(`the server sent unknown tensor '${player.player}/${tensor.name}'`);
      }
      if (wireCodec.COMPRESSED.has(tensor.dtype)) {
        out.set(wireCodec.decode(tensor.data, tensor.dtype, where.size), where.offset);
        continue;
      }
      const width = tensor.dtype === 'FLOAT64' ? 8 : 4;
      if (tensor.data.length !== where.size * width) {
        throw new Error(`tensor '${player.player}/${tensor.name}' has ${tensor.data.length} bytes, which does not fit the game`);
      }
      const bytes = new Uint8Array(tensor.data.length);  // aligned copy
      bytes.set(tensor.data);
      const values = width === 8 ? new Float64Array(bytes.buffer)
                                 : new Float32Array(bytes.buffer);
      out.set(values, where.offset);
    }
  }
  return out;
}

// The blocks of `players` (all when empty) of `values` as a Vector message
// of `dtype`: FLOAT64, FLOAT32 or a compressed one (wire_codec.js; rounded
// stochastically when `stochastic`, a tensor it cannot hold as FLOAT32).
function encodeVector(values, layout, players, dtype, stochastic = false) {
  const wanted = players && players.length ? new Set(players) : null;
  const vector = { players: [] };
  for (const spec of layout.players) {
    if (wanted && !wanted.has(spec.name)) continue;
    const tensors = [];
    for (const tensor of spec.tensors) {
      const { offset, size } = layout.find(spec.name, tensor.name);
      if (wireCodec.COMPRESSED.has(dtype)) {
        const data = wireCodec.encode(values.subarray(offset, offset + size), dtype, stochastic);
        if (data !== null) {
          tensors.push({ name: tensor.name, dtype, shape: tensor.shape, data });
          continue;
        }
      }
      const plain = dtype === 'FLOAT64' ? 'FLOAT64' : 'FLOAT32';
      const block = plain === 'FLOAT64'
        ? values.slice(offset, offset + size)
        : Float32Array.from(values.subarray(offset, offset + size));
      tensors.push({
        name: tensor.name, dtype: plain, shape: tensor.shape,
        data: Buffer.from(block.buffer, block.byteOffset, block.byteLength),
      });
    }
    vector.players.push({ player: spec.name, tensors });
  }
  return vector;
}

// l_x = x^T A y = -l_y (client/games/bilinear.h), d = 1 unless A is given.
class BilinearGame {
  constructor(a = [[1]]) {
    this.a = a;
    this.d = a.length;
  }
  players() {
    return [{ name: 'x', tensors: [{ name: 'x', shape: [this.d] }] },
            { name: 'y', tensors: [{ name: 'y', shape: [this.d] }] }];
  }
  drawMinibatches(count, seed) {}
  gradient(x, sample) {
    const d = this.d, a = this.a, out = new Float64Array(2 * d);
    for (let i = 0; i < d; ++i) {
      let ay = 0, atx = 0;
      for (let j = 0; j < d; ++j) {
        ay += a[i][j] * x[d + j];
        atx += a[j][i] * x[j];
      }
      out[i] = ay;
      out[d + i] = -atx;
    }
    return out;
  }
  vjp(x, w, sample) {  // J^T = [[0, -A], [A^T, 0]]
    const g = this.gradient(w, sample), d = this.d, out = new Float64Array(2 * d);
    for (let i = 0; i < d; ++i) {
      out[i] = -g[i];
      out[d + i] = -g[d + i];
    }
    return out;
  }
  jvp(x, u, sample) { return this.gradient(u, sample); }
}

// xi(x) = J x + b (client/games/quadratic.h, deterministic): players p0,
// p1, ... with tensor "x" of shape [d_i]. J and b as dumped by the C++ game
// (JSON {dims, J, b}).
class QuadraticGame {
  constructor({ dims, J, b }) {
    this.dims = dims;
    this.J = J;
    this.b = b;
    this.n = b.length;
  }
  static fromFile(file) {
    return new QuadraticGame(JSON.parse(fs.readFileSync(file, 'utf8')));
  }
  players() {
    return this.dims.map((d, i) => ({ name: `p${i}`, tensors: [{ name: 'x', shape: [d] }] }));
  }
  drawMinibatches(count, seed) {}
  multiply(v, transpose) {
    const out = new Float64Array(this.n);
    for (let i = 0; i < this.n; ++i) {
      let s = 0;
      for (let j = 0; j < this.n; ++j) s += (transpose ? this.J[j][i] : this.J[i][j]) * v[j];
      out[i] = s;
    }
    return out;
  }
  gradient(x, sample) {
    const out = this.multiply(x, false);
    for (let i = 0; i < this.n; ++i) out[i] += this.b[i];
    return out;
  }
  vjp(x, w, sample) { return this.multiply(w, true); }
  jvp(x, u, sample) { return this.multiply(u, false); }
}

const RETRYABLE = new Set([grpc.status.UNAVAILABLE, grpc.status.CANCELLED,
                           grpc.status.ABORTED, grpc.status.DEADLINE_EXCEEDED]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Joins a session and answers its tasks with `game` until DONE.
class Worker {
  constructor(client, sessionId, game, options = {}) {
    this.client = client;
    this.sessionId = sessionId;
    this.game = game;
    this.name = options.name || '';
    this.workerId = options.workerId || '0';
    this.maxRetries = options.maxRetries ?? 20;
    this.initialBackoffMs = options.initialBackoffMs ?? 20;
    this.maxBackoffMs = options.maxBackoffMs ?? 2000;
    this.callTimeoutMs = options.callTimeoutMs ?? 30 * 60 * 1000;
    this.layout = new FlatLayout(game.players());
    this.params = new Float64Array(this.layout.dimension);
    this.paramsVersion = '-1';
    this.dtype = 'FLOAT32';  // the session's, learned from the parameters
    // Compressed wire: the session's wire.from_workers ('BFLOAT16',
    // 'FLOAT16', 'INT8_BLOCK') and its stochastic_rounding.
    this.wireDtype = options.wireDtype || null;
    this.stochastic = !!options.stochasticRounding;
    this.tasksDone = 0;
    this.task = null;
  }

  unary(method, request) {
    return new Promise((resolve, reject) => {
      this.client[method](request, { deadline: Date.now() + this.callTimeoutMs },
        (error, response) => (error ? reject(error) : resolve(response)));
    });
  }

  joinRequest() {
    return { session_id: this.sessionId, worker_id: this.workerId,
             worker_name: this.name, known_params_version: this.paramsVersion };
  }

  // One call with retries; rejoins on FAILED_PRECONDITION.
  async call(method, request) {
    let backoff = this.initialBackoffMs;
    for (let attempt = 0; ; ++attempt) {
      let failure;
      try {
        return await this.unary(method, request);
      } catch (error) {
        failure = error;
      }
      if (failure.code === grpc.status.FAILED_PRECONDITION && this.workerId !== '0') {
        try {
          return await this.unary('JoinSession', this.joinRequest());
        } catch (error) {
          failure = error;
        }
      }
      if (!RETRYABLE.has(failure.code) || attempt >= this.maxRetries) throw failure;
      await sleep(backoff);
      backoff = Math.min(backoff * 2, this.maxBackoffMs);
    }
  }

  accept(response) {
    this.workerId = response.worker_id;
    this.task = response.task;
    if (this.task.params_included) {
      decodeVector(this.task.params, this.layout, this.params);
      this.paramsVersion = this.task.params_version;
      const first = this.task.params.players[0];
      if (first && first.tensors.length &&
          !wireCodec.COMPRESSED.has(first.tensors[0].dtype)) {
        this.dtype = first.tensors[0].dtype;
      }
    }
  }

  encode(values, players = []) {
    return encodeVector(values, this.layout, players, this.wireDtype || this.dtype,
                        this.stochastic);
  }

  async compute(task) {
    const header = {
      session_id: this.sessionId, worker_id: this.workerId, round: task.round,
      step: task.step, phase: task.phase,
      known_params_version: this.paramsVersion,
    };
    if (task.full_shard) {
      throw new Error('the task asks for a full-shard gradient or products ' +
                      '(algorithm l_svrhg); this worker computes on ' +
                      'minibatches only: use the C++ worker library (a Game ' +
                      'with DrawFullShard) or algorithm shgd');
    }
    if (task.kind === 'GRADIENT') {
      this.game.drawMinibatches(task.num_samples, task.seed);
      const gradients = [], vjp = [], jvp = [];
      const fused = task.fused_vjp || task.fused_jvp;
      if (fused && (typeof this.game.vjp !== 'function' ||
                    (task.fused_jvp && typeof this.game.jvp !== 'function'))) {
        throw new Error('the session fuses local products ' +
                        '(fuse_local_products): the game needs vjp(x, w, k)' +
                        (task.fused_jvp ? ' and jvp(x, u, k)' : ''));
      }
      for (let k = 0; k < task.num_samples; ++k) {
        const g = this.game.gradient(this.params, k);
        gradients.push(this.encode(g, task.players));
        if (fused) {
          // Sample k's own gradient as the server holds it (the LOCAL
          // probe of the unfused products round).
          const probe = this.wireDtype
            ? decodeVector(gradients[gradients.length - 1], this.layout,
                           new Float64Array(this.layout.dimension))
            : this.dtype === 'FLOAT64' ? g : Float64Array.from(Float32Array.from(g));
          if (task.fused_vjp) vjp.push(this.encode(this.game.vjp(this.params, probe, k)));
          if (task.fused_jvp) jvp.push(this.encode(this.game.jvp(this.params, probe, k)));
        }
      }
      return this.call('SubmitGradient', { ...header, gradients, vjp, jvp });
    }
    const vjp = [], jvp = [];
    task.probes.forEach((message, k) => {
      const probe = decodeVector(message, this.layout,
                                 new Float64Array(this.layout.dimension));
      if (task.vjp) vjp.push(this.encode(this.game.vjp(this.params, probe, k)));
      if (task.jvp) jvp.push(this.encode(this.game.jvp(this.params, probe, k)));
    });
    return this.call('SubmitJacobianProducts', { ...header, vjp, jvp });
  }

  // Resolves when the session is DONE; rejects with the gRPC error otherwise.
  async run() {
    this.accept(await this.call('JoinSession', this.joinRequest()));
    while (this.task.kind !== 'DONE') {
      const task = this.task;
      this.accept(await this.compute(task));
      ++this.tasksDone;
    }
  }
}

module.exports = {
  loadProto, makeClient, FlatLayout, decodeVector, encodeVector, wireCodec,
  BilinearGame, QuadraticGame, Worker,
};
