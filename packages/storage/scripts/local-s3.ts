// The local S3 server of the one-command start (scripts/start.mjs runs it when S3_ENDPOINT is
// unset): `tsx scripts/local-s3.ts <directory> <port> [host]`. Prints one line when it listens,
// stops on SIGTERM / SIGINT.
import { startLocalS3 } from '../src/local-s3.ts';

const [directory, port, host = '127.0.0.1'] = process.argv.slice(2);
if (!directory || !port || !/^\d+$/.test(port)) {
  process.stderr.write('usage: local-s3.ts <directory> <port> [host]\n');
  process.exit(64);
}

try {
  const server = await startLocalS3({ directory, port: Number(port), host });
  process.stdout.write(`local S3 server listening on ${server.endpoint}, data in ${directory}\n`);
  const stop = () => {
    void server.stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
} catch (err) {
  process.stderr.write(`local S3 server could not start: ${(err as Error).message}\n`);
  process.exit(1);
}
