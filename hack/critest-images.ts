// Builds the images critest v1.26 uses from Debian packages (hack/images/critest/) and pushes them to a
// registry on loopback under their upstream repository paths, for berthd to pull through registry
// mirrors of registry.k8s.io and gcr.io (see hack/critest.sh and docs/critest.md):
//   node dist/hack/critest-images.js --registry 127.0.0.1:PORT [--start] [--only NAME[,NAME]]
//   node dist/hack/critest-images.js --list
// --start runs Debian's docker-registry at that address first; after the push it keeps running until
// this process gets SIGINT or SIGTERM (the registry dies with it, and its data directory is removed).
import { CRITEST_IMAGES, pushCritestImages, upstreamReferences } from './images/critest';
import { startRegistryAt, type TestRegistry } from '../test/support/registry';

function usage(code = 2): never {
  process.stderr.write('usage: critest-images --registry 127.0.0.1:PORT [--start] [--only NAME[,NAME]] | --list\n');
  process.exit(code);
}

async function main(argv: string[]): Promise<void> {
  let registry: string | undefined;
  let start = false;
  let only: string[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const value = () => argv[++i] ?? usage();
    switch (argv[i]) {
      case '--registry':
        registry = value();
        break;
      case '--start':
        start = true;
        break;
      case '--only':
        only = value().split(',').filter(Boolean);
        break;
      case '--list':
        for (const image of CRITEST_IMAGES) process.stdout.write(`${upstreamReferences(image).join(' ')} (${image.packages.join(', ')})\n`);
        return;
      case '--help':
      case '-h':
        usage(0);
        break;
      default:
        usage();
    }
  }
  if (!registry) usage();
  let running: TestRegistry | undefined;
  if (start) running = await startRegistryAt(registry);
  try {
    await pushCritestImages(registry, only, (line) => process.stdout.write(`${line}\n`));
  } catch (err) {
    if (running) await running.stop();
    throw err;
  }
  if (!running) return;
  process.stdout.write(`registry running at ${registry} (data in ${running.dir}); Ctrl-C stops it\n`);
  const registryRunning = running;
  const stop = () => void registryRunning.stop().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main(process.argv.slice(2)).catch((err: Error) => {
  process.stderr.write(`critest-images: ${err.message}\n`);
  process.exit(1);
});
