#!/usr/bin/env node
// A Node.js gameopt worker: plays the bilinear game (or a quadratic game
// dumped by the C++ one) in an existing session until it is DONE.
//
//   node worker.js SERVER SESSION_ID [WORKER_NAME] [--quadratic FILE.json]
//                  [--wire=bfloat16|float16|int8_block] [--wire_stochastic]
//
// --wire: send gradients and products in the session's compressed
// wire.from_workers; --wire_stochastic: round them stochastically.
//
// TLS and tokens from the environment: GAMEOPT_TLS_ROOTS (path of the PEM
// roots of the server's certificate) and GAMEOPT_TOKEN (a bearer token).
//
// Exit status 0 when the session is DONE, 1 on an error (printed).
'use strict';

const { makeClient, BilinearGame, QuadraticGame, Worker } = require('./gameopt');

function main(argv) {
  const positional = [];
  let quadratic = null, wireDtype = null, stochasticRounding = false;
  for (let i = 0; i < argv.length; ++i) {
    if (argv[i].startsWith('--wire=')) wireDtype = argv[i].slice(7).toUpperCase();
    else if (argv[i] === '--wire_stochastic') stochasticRounding = true;
    else if (argv[i] === '--quadratic') quadratic = argv[++i];
    else if (argv[i].startsWith('--quadratic=')) quadratic = argv[i].slice(12);
    else positional.push(argv[i]);
  }
  if (positional.length < 2 || positional.length > 3 || (argv.includes('--quadratic') && !quadratic)) {
    console.error('usage: node worker.js SERVER SESSION_ID [WORKER_NAME] [--quadratic FILE.json]');
    return Promise.resolve(2);
  }
  const [server, sessionId, name = 'node-worker'] = positional;
  const game = quadratic ? QuadraticGame.fromFile(quadratic) : new BilinearGame();
  const client = makeClient(server, 1024, {
    tlsRoots: process.env.GAMEOPT_TLS_ROOTS,
    token: process.env.GAMEOPT_TOKEN,
  });
  const worker = new Worker(client, sessionId, game,
                            { name, wireDtype, stochasticRounding });
  return worker.run().then(() => {
    console.log(`worker ${worker.workerId} done after ${worker.tasksDone} tasks`);
    client.close();
    return 0;
  }, (error) => {
    console.error(`gameopt worker: ${error.message || error}`);
    client.close();
    return 1;
  });
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
