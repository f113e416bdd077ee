// Builds berth's test images from Debian packages and pushes them to a registry:
//   node dist/hack/test-images.js --registry 127.0.0.1:5000 [--only busybox]
import { pushTestImages, TEST_IMAGES } from './images';

function usage(): never {
  process.stderr.write(
    `usage: test-images --registry HOST:PORT [--only NAME[,NAME]]\nimages: ${TEST_IMAGES.map((i) => i.repository).join(', ')}\n`,
  );
  process.exit(2);
}

async function main(argv: string[]): Promise<void> {
  let registry: string | undefined;
  let only: string[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--registry') registry = argv[++i];
    else if (argv[i] === '--only') only = (argv[++i] ?? '').split(',');
    else usage();
  }
  if (!registry) usage();
  const digests = await pushTestImages(registry, only);
  for (const [name, digest] of Object.entries(digests)) process.stdout.write(`${registry}/${name} ${digest}\n`);
}

main(process.argv.slice(2)).catch((err: Error) => {
  process.stderr.write(`test-images: ${err.message}\n`);
  process.exit(1);
});
