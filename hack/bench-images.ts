// Pushes the benchmark's images to a registry on loopback (starting Debian's docker-registry there
// with --start, which then runs until interrupted):
//   node dist/hack/bench-images.js --registry 127.0.0.1:5000 [--start]
// bench/big:latest     5 layers of 20 MiB of random data (~100 MB to pull), for the `pull` workload
// bench/tiny:0 … :999  1,000 one-file images, for `list-images-many`
// bench/huge:latest    with --huge: one uncompressed 1 GiB layer, to watch berthd's RSS while pulling it
// bench/many-1m:latest     with --many: 30 layers of 1 MiB of random data each, for `pull-many`
// bench/many-small:latest  with --many: 30 layers of one 4 KiB file each, for `pull-many`
// --only-many pushes the two many-layer images alone (to a registry that has the others already).
// pause:3.9            Debian's static catatonit (-P): the pause image containerd's sandboxes need
// busybox:latest       the test suite's busybox (Debian's busybox-static), for the container workloads
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { buildImage, layer } from '../test/support/oci/image';
import { busyboxImage } from './images/busybox';
import { pushImage } from '../test/support/oci/push';
import { startRegistryAt } from '../test/support/registry';

/** The many-layer images: per-layer costs (a helper, a connection, a sync) dominate their pulls. */
async function pushMany(registry: string): Promise<void> {
  const mib = buildImage(
    Array.from({ length: 30 }, (_x, i) => layer([{ type: 'file', path: `data/m${i}`, content: randomBytes(1024 * 1024) }])),
  );
  process.stdout.write(`bench/many-1m ${await pushImage({ host: registry, repository: 'bench/many-1m' }, mib, ['latest'])}\n`);
  const small = buildImage(
    Array.from({ length: 30 }, (_x, i) => layer([{ type: 'file', path: `etc/s${i}`, content: randomBytes(4096) }])),
  );
  process.stdout.write(`bench/many-small ${await pushImage({ host: registry, repository: 'bench/many-small' }, small, ['latest'])}\n`);
}

async function main(argv: string[]): Promise<void> {
  const registry = argv[argv.indexOf('--registry') + 1];
  if (!argv.includes('--registry') || !registry) throw new Error('usage: bench-images --registry HOST:PORT [--start] [--tiny N] [--huge] [--many | --only-many]');
  const tiny = argv.includes('--tiny') ? Number(argv[argv.indexOf('--tiny') + 1]) : 1000;
  const running = argv.includes('--start') ? await startRegistryAt(registry) : undefined;
  if (argv.includes('--many') || argv.includes('--only-many')) await pushMany(registry);
  if (argv.includes('--only-many')) return;
  const big = buildImage(
    Array.from({ length: 5 }, (_x, i) => layer([{ type: 'file', path: `data/layer${i}`, content: randomBytes(20 * 1024 * 1024) }])),
  );
  process.stdout.write(`bench/big ${await pushImage({ host: registry, repository: 'bench/big' }, big, ['latest'])}\n`);
  for (let i = 0; i < tiny; i++) {
    const image = buildImage([layer([{ type: 'file', path: 'id', content: String(i) }])]);
    await pushImage({ host: registry, repository: 'bench/tiny' }, image, [String(i)]);
  }
  const pause = buildImage(
    [layer([{ type: 'file', path: 'pause', content: fs.readFileSync('/usr/bin/catatonit'), mode: 0o755 }])],
    { Entrypoint: ['/pause', '-P'] },
  );
  process.stdout.write(`pause ${await pushImage({ host: registry, repository: 'pause' }, pause, ['3.9'])}\n`);
  process.stdout.write(`busybox ${await pushImage({ host: registry, repository: 'busybox' }, busyboxImage(), ['latest'])}\n`);
  if (tiny > 0) process.stdout.write(`bench/tiny:0..${tiny - 1}\n`);
  if (argv.includes('--huge')) {
    const huge = buildImage([layer([{ type: 'file', path: 'huge', content: randomBytes(1024 * 1024 * 1024) }], 'none')]);
    process.stdout.write(`bench/huge ${await pushImage({ host: registry, repository: 'bench/huge' }, huge, ['latest'])}\n`);
  }
  if (running) {
    process.stdout.write(`registry running at ${registry} (data in ${running.dir}); Ctrl-C stops it\n`);
    const stop = () => void running.stop().then(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  }
}

main(process.argv.slice(2)).catch((err: Error) => {
  process.stderr.write(`bench-images: ${err.message}\n`);
  process.exit(1);
});
