// (d) The reference: a minimal Fastify app answering {hello:'world'}, in its own process.
// Usage: node bench/children/hello.mjs PORT
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.get('/', async () => ({ hello: 'world' }));
app.get('/healthz', async () => ({ status: 'ok' }));
await app.listen({ host: '127.0.0.1', port: Number(process.argv[2]) });
process.stderr.write(`hello: listening on ${process.argv[2]}\n`);
const stop = () => app.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
