// Builds berth's test images from Debian packages installed on this machine and pushes them to a
// registry (see hack/images/):
//   node dist/hack/test-images.js --registry 127.0.0.1:5000 [--only busybox[,NAME]] [--username U --password P]
//   node dist/hack/test-images.js --list
import { pushTestImages, TEST_IMAGES } from './images';

function usage(code = 2): never {
  const names = TEST_IMAGES.map((i) => `${i.repository}:{${i.tags.join(',')}}`).join(' ');
  process.stderr.write(`usage: test-images --registry HOST:PORT [--only NAME[,NAME]] [--username U --password P] | --list\nimages: ${names}\n`);
  process.exit(code);
}

async function main(argv: string[]): Promise<void> {
  let registry: string | undefined;
  let only: string[] | undefined;
  let username: string | undefined;
  let password: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const value = () => argv[++i] ?? usage();
    switch (argv[i]) {
      case '--registry':
        registry = value();
        break;
      case '--only':
        only = value().split(',').filter(Boolean);
        break;
      case '--username':
        username = value();
        break;
      case '--password':
        password = value();
        break;
      case '--list':
        for (const image of TEST_IMAGES) process.stdout.write(`${image.repository} ${image.tags.join(',')} (${image.packages.join(', ')})\n`);
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
  if ((username === undefined) !== (password === undefined)) usage();
  const auth = username !== undefined && password !== undefined ? { username, password } : undefined;
  const digests = await pushTestImages(registry, only, auth);
  for (const [name, digest] of Object.entries(digests)) process.stdout.write(`${registry}/${name} ${digest}\n`);
}

main(process.argv.slice(2)).catch((err: Error) => {
  process.stderr.write(`test-images: ${err.message}\n`);
  process.exit(1);
});
