// Image trust (issue 22): berthd judges pulls by a containers-policy.json(5) policy, and its judgement
// equals that of Debian's skopeo and podman (containers/image, which CRI-O uses too) on the same policy
// and registries.d, for a table of images x policies. The GPG signatures are made by skopeo itself
// (`copy --sign-by`, simple signing, written to a lookaside directory the test serves over loopback HTTP).
// Sigstore signatures are made here exactly as cosign lays them out (Debian's skopeo has sigstore off),
// cross-checked with `openssl dgst -verify`, and judged against the published format.
import { execFile, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PodSandboxConfig } from '../../src/generated/runtime/v1/PodSandboxConfig';
import { runBerthd, startBerthd, type BerthdHandle } from '../support/berthd';
import { buildImage, buildIndex, jsonBlob, layer, MEDIA, type BuiltImage } from '../support/oci/image';
import { pushBlob, pushImage, pushIndex, pushManifest } from '../support/oci/push';
import { startRegistry, type TestRegistry } from '../support/registry';
import { until } from '../support/until';
import { busyboxImage } from '../../hack/images/busybox';

const run = promisify(execFile);

/** The images of the table: what each is and how it is signed (set up in beforeAll). */
const IMAGES = ['unsigned', 'signed', 'other-key', 'moved', 'tampered', 'unreachable', 'rejected', 'index'] as const;
type ImageName = (typeof IMAGES)[number];

/** The policies of the table, by name (each also a namespace with that policy of its own). */
const POLICIES = ['signed-by-a', 'signed-by-b', 'remap-moved', 'accept-all'] as const;
type PolicyName = (typeof POLICIES)[number];

/** A decision: admitted, refused by the policy, or (podman only) a pull that fails before the policy speaks. */
type Decision = boolean | 'cannot copy the signatures';

/**
 * Where podman's pull differs from its policy's decision: it stores an image's signatures with it, so it
 * reads them even where the policy needs none, and an unreachable lookaside fails the pull. berth (like
 * skopeo --remove-signatures) reads signatures only for a requirement that needs them.
 */
const PODMAN_PULL: Partial<Record<PolicyName, Partial<Record<ImageName, Decision>>>> = {
  'accept-all': { unreachable: 'cannot copy the signatures' },
};

/** What the policies are written to mean (the oracle's answer must agree). */
const EXPECTED: Record<PolicyName, Record<ImageName, boolean>> = {
  'signed-by-a': { unsigned: false, signed: true, 'other-key': false, moved: false, tampered: false, unreachable: false, rejected: false, index: true },
  'signed-by-b': { unsigned: false, signed: false, 'other-key': true, moved: false, tampered: false, unreachable: false, rejected: false, index: false },
  'remap-moved': { unsigned: false, signed: true, 'other-key': false, moved: true, tampered: false, unreachable: false, rejected: true, index: true },
  'accept-all': { unsigned: true, signed: true, 'other-key': true, moved: true, tampered: true, unreachable: true, rejected: true, index: true },
};

describe('image trust: signature policy at pull', { timeout: 300_000 }, () => {
  let dir: string;
  let registry: TestRegistry;
  let lookasideServer: http.Server;
  let berthd: BerthdHandle;
  let host: string;
  /** podman's stores (under /tmp: a short path). */
  let podmanStore = '';
  const fingerprints: Record<'a' | 'b', string> = { a: '', b: '' };
  const env = () => ({ ...process.env, GNUPGHOME: path.join(dir, 'gnupg') });
  const ref = (image: string) => `${host}/trust/${image}:1`;
  const policyFile = (name: string) => path.join(dir, 'policies', `${name}.json`);
  const registriesD = () => path.join(dir, 'registries.d');

  /** A small image of its own per name: distinct digests. */
  const imageOf = (name: string, env: string[] = []): BuiltImage => buildImage([layer([{ type: 'file', path: 'hello', content: `${name}\n` }])], { Cmd: ['/hello'], Env: env });

  async function gpgKey(name: string): Promise<string> {
    await run('gpg', ['--batch', '--passphrase', '', '--quick-gen-key', `berth test ${name} <${name}@berth.test>`, 'default', 'default', 'never'], { env: env() });
    const out = execFileSync('gpg', ['--batch', '--with-colons', '--list-keys', `${name}@berth.test`], { env: env(), encoding: 'utf8' });
    const fpr = /^fpr:+([0-9A-F]{40}):/m.exec(out)![1];
    fs.writeFileSync(path.join(dir, `key-${name}.gpg`), execFileSync('gpg', ['--batch', '--export', fpr], { env: env() }));
    return fpr;
  }

  /** skopeo signs the image in place with the key (simple signing, to the lookaside staging dir); an index and each of its images with all. */
  async function sign(image: string, fpr: string, all = false): Promise<void> {
    // prettier-ignore
    await run('skopeo', ['--policy', policyFile('accept-all'), '--registries.d', registriesD(), 'copy', '--quiet', ...(all ? ['--all'] : []),
      '--src-tls-verify=false', '--dest-tls-verify=false', '--sign-by', fpr, `docker://${ref(image)}`, `docker://${ref(image)}`], { env: env() });
  }

  const lookasideDirOf = (image: string, digest: string) => path.join(dir, 'lookaside', 'trust', `${image}@${digest.replace(':', '=')}`);

  function writePolicy(name: string, docker: Record<string, unknown[]>, defaults: unknown[] = [{ type: 'reject' }]): void {
    fs.writeFileSync(policyFile(name), JSON.stringify({ default: defaults, transports: { docker } }, null, 2));
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-trust-test-'));
    for (const d of ['gnupg', 'policies', 'registries.d', 'lookaside', 'oracle']) fs.mkdirSync(path.join(dir, d), { mode: 0o700 });
    registry = await startRegistry();
    host = registry.host;
    // The lookaside over loopback HTTP, as a web server would serve it.
    lookasideServer = http.createServer((req, res) => {
      const file = path.join(dir, 'lookaside', decodeURIComponent(new URL(req.url!, 'http://x').pathname));
      if (!file.startsWith(path.join(dir, 'lookaside')) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(fs.readFileSync(file));
    });
    await new Promise<void>((resolve) => lookasideServer.listen(0, '127.0.0.1', resolve));
    const lookaside = `http://127.0.0.1:${(lookasideServer.address() as AddressInfo).port}`;
    // Where signatures are; the unreachable image's lookaside is set once it is signed (signing reads it).
    const writeRegistriesD = (unreachable: boolean) =>
      fs.writeFileSync(
        path.join(registriesD(), 'berth-test.yaml'),
        [
          'default-docker:',
          `  lookaside: ${lookaside}`,
          `  lookaside-staging: file://${path.join(dir, 'lookaside')}`,
          '  use-sigstore-attachments: true',
          ...(unreachable ? ['docker:', `  ${host}/trust/unreachable:`, '    lookaside: http://127.0.0.1:1'] : []),
          '',
        ].join('\n'),
      );
    writeRegistriesD(false);
    writePolicy('accept-all', {}, [{ type: 'insecureAcceptAnything' }]);

    fingerprints.a = await gpgKey('a');
    fingerprints.b = await gpgKey('b');
    const signedBy = (key: 'a' | 'b', signedIdentity?: unknown) => ({ type: 'signedBy', keyType: 'GPGKeys', keyPath: path.join(dir, `key-${key}.gpg`), ...(signedIdentity ? { signedIdentity } : {}) });
    writePolicy('signed-by-a', { [host]: [signedBy('a')], [`${host}/trust/rejected`]: [{ type: 'reject' }] });
    writePolicy('signed-by-b', { [host]: [signedBy('b')] });
    writePolicy('remap-moved', {
      [host]: [signedBy('a')],
      [`${host}/trust/moved`]: [signedBy('a', { type: 'remapIdentity', prefix: `${host}/trust/moved`, signedPrefix: `${host}/trust/signed` })],
    });

    const digests = new Map<string, string>();
    for (const name of IMAGES) digests.set(name, await pushImage({ host, repository: `trust/${name}` }, imageOf(name), ['1']));
    // index: two platforms; berth (as containers/image) judges the linux/amd64 manifest it runs.
    const platforms = ['amd64', 'arm64'].map((architecture) => buildImage([layer([{ type: 'file', path: 'arch', content: architecture }])], {}, { platform: { os: 'linux', architecture } }));
    await pushIndex({ host, repository: 'trust/index' }, platforms, buildIndex(platforms), ['1']);
    await sign('index', fingerprints.a, true);
    for (const name of ['signed', 'unreachable', 'rejected'] as const) await sign(name, fingerprints.a);
    await sign('other-key', fingerprints.b);
    // moved: the signed image's manifest and signature under another repository (the signature names trust/signed).
    const signed = imageOf('signed');
    await pushImage({ host, repository: 'trust/moved' }, signed, ['1']);
    fs.cpSync(lookasideDirOf('signed', signed.manifest.digest), lookasideDirOf('moved', signed.manifest.digest), { recursive: true });
    // tampered: the manifest changed after signing (another config), the signature of the original kept.
    await sign('tampered', fingerprints.a);
    const tampered = imageOf('tampered', ['TAMPERED=1']);
    await pushImage({ host, repository: 'trust/tampered' }, tampered, ['1']);
    fs.cpSync(lookasideDirOf('tampered', digests.get('tampered')!), lookasideDirOf('tampered', tampered.manifest.digest), { recursive: true });
    writeRegistriesD(true);

    // upstream.test is served only by its mirror (this registry); blocked.test by nothing.
    writePolicy('mirror-identity', { 'upstream.test': [signedBy('a')] });
    writePolicy('mirror-remapped', { 'upstream.test': [signedBy('a', { type: 'remapIdentity', prefix: 'upstream.test', signedPrefix: host })] });
    berthd = await startBerthd({
      configToml: [
        '[metrics]',
        'enabled = true',
        'port = 0',
        '[image.trust]',
        `policy = "${policyFile('signed-by-a')}"`,
        `namespace_policy_dir = "${path.join(dir, 'policies')}"`,
        `registries_d = "${registriesD()}"`,
        '[image.registries."upstream.test"]',
        `mirrors = ["http://${host}"]`,
        'mirror_only = true',
        '[image.registries."blocked.test"]',
        `mirrors = ["http://${host}"]`,
        'blocked = true',
        '',
      ].join('\n'),
    });
  }, 300_000);

  afterAll(async () => {
    // What a verification cost berthd, from its own log (the whole judgement: policy, signatures fetched, checked).
    const costs = (berthd?.output() ?? '').split('\n').filter((l) => l.includes('image admitted by the trust policy')).map((l) => JSON.parse(l) as { ms: number; admittedBy: string[] });
    for (const kind of ['signedBy', 'sigstoreSigned']) {
      const ms = costs.filter((c) => c.admittedBy.some((a) => a.startsWith(kind))).map((c) => c.ms).sort((a, b) => a - b);
      if (ms.length) console.log(`[trust] ${kind} verifications: ${ms.length}, median ${ms[ms.length >> 1]} ms, max ${ms[ms.length - 1]} ms`);
    }
    await berthd?.cleanup();
    await registry?.stop();
    lookasideServer?.close();
    execFileSync('gpgconf', ['--kill', 'all'], { env: env() });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (podmanStore) fs.rmSync(podmanStore, { recursive: true, force: true });
  });

  const podIn = (namespace: string): PodSandboxConfig => ({ metadata: { name: 'p', namespace, uid: `uid-${namespace}`, attempt: 0 } });

  /** berth's decision: pulled, or refused (with the error). */
  async function berthPull(image: string, namespace?: string): Promise<{ ok: true } | { ok: false; code: number; details: string }> {
    try {
      await berthd.client.image.PullImage({ image: { image: ref(image) }, ...(namespace ? { sandbox_config: podIn(namespace) } : {}) });
      return { ok: true };
    } catch (err) {
      const e = err as { code: number; details: string };
      return { ok: false, code: e.code, details: e.details };
    }
  }

  /**
   * An oracle's decision from its exit: 0 admitted; a failure counts as a refusal only when it says the
   * policy refused (anything else, such as a registry error, fails the test rather than pass for one).
   */
  async function oracle(cmd: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Decision> {
    try {
      await run(cmd, args, { env: { ...env(), ...extraEnv } });
      return true;
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr ?? String(err);
      if (/Source image rejected/.test(stderr)) return false;
      // podman's pull stores the signatures with the image, so it reads them whatever the policy.
      if (/Error: reading signatures: /.test(stderr)) return 'cannot copy the signatures';
      throw new Error(`${cmd} failed for another reason than the policy: ${stderr}`);
    }
  }

  /**
   * skopeo's decision, with the same policy and registries.d. --remove-signatures: the copy itself must
   * not read signatures (it would fail on an unreachable lookaside under any policy); the policy still
   * reads them where a requirement needs them.
   */
  async function skopeoPull(image: string, policy: PolicyName): Promise<Decision> {
    const out = path.join(dir, 'oracle', `${policy}-${image}`);
    fs.rmSync(out, { recursive: true, force: true });
    // prettier-ignore
    return oracle('skopeo', ['--policy', policyFile(policy), '--registries.d', registriesD(), 'copy', '--quiet', '--remove-signatures', '--src-tls-verify=false', `docker://${ref(image)}`, `dir:${out}`]);
  }

  /**
   * podman's decision: a pull into a storage of its own per policy (vfs: nothing mounted; a short path:
   * podman refuses a run root over 50 characters), reading the same registries.d (from
   * $HOME/.config/containers/registries.d: podman has no flag for it).
   */
  async function podmanPull(image: string, policy: PolicyName): Promise<Decision> {
    const home = path.join(dir, 'podman-home');
    if (!fs.existsSync(home)) {
      fs.mkdirSync(path.join(home, '.config', 'containers'), { recursive: true });
      fs.symlinkSync(registriesD(), path.join(home, '.config', 'containers', 'registries.d'));
      podmanStore = fs.mkdtempSync('/tmp/bpod-');
    }
    const store = path.join(podmanStore, policy);
    // prettier-ignore
    return oracle('podman', ['--root', path.join(store, 'root'), '--runroot', path.join(store, 'run'), '--storage-driver', 'vfs', '--events-backend', 'none', '--cgroup-manager', 'cgroupfs',
      'pull', '--quiet', '--signature-policy', policyFile(policy), '--tls-verify=false', `docker://${ref(image)}`], { HOME: home });
  }

  it.each(POLICIES)("decides as skopeo and podman (containers/image) do for every image under the %s policy", async (policy) => {
    const decisions: Record<string, { berth: Decision; skopeo: Decision; podman: Decision }> = {};
    for (const image of IMAGES) {
      const berth = await berthPull(image, policy);
      decisions[image] = { berth: berth.ok, skopeo: await skopeoPull(image, policy), podman: await podmanPull(image, policy) };
      if (!berth.ok) expect(berth, image).toMatchObject({ code: 2, details: expect.stringMatching(/^SignatureValidationFailed: image /) });
      // Pulled images go, so that the next pull of it is judged from nothing.
      if (berth.ok) await berthd.client.image.RemoveImage({ image: { image: ref(image) } });
    }
    const expected = Object.fromEntries(IMAGES.map((i) => [i, { berth: EXPECTED[policy][i], skopeo: EXPECTED[policy][i], podman: PODMAN_PULL[policy]?.[i] ?? EXPECTED[policy][i] }]));
    expect(decisions).toEqual(expected);
  });

  it('refuses with SignatureValidationFailed naming the image, the policy, the scope and the reason, and leaves nothing behind', async () => {
    const before = execFileSync('find', [berthd.root, '-type', 'f'], { encoding: 'utf8' }).split('\n').sort();
    const refused = await berthPull('unsigned');
    expect(refused).toMatchObject({ ok: false, code: 2 });
    const details = (refused as { details: string }).details;
    expect(details).toMatch(new RegExp(`^SignatureValidationFailed: image ${ref('unsigned').replace(/[.]/g, '\\.')} \\(sha256:[a-f0-9]{64}\\) refused by ${policyFile('signed-by-a')}, scope "${host}": A signature was required, but no GPG signature exists$`));
    expect((await berthd.client.image.ImageStatus({ image: { image: ref('unsigned') } })).image).toBeNull();
    expect(execFileSync('find', [berthd.root, '-type', 'f'], { encoding: 'utf8' }).split('\n').sort()).toEqual(before);

    const rejected = await berthPull('rejected');
    expect((rejected as { details: string }).details).toContain(`scope "${host}/trust/rejected": Running image docker://${ref('rejected')} is rejected by policy.`);
    const unreachable = await berthPull('unreachable');
    expect((unreachable as { details: string }).details).toContain('reading signature from http://127.0.0.1:1/trust/unreachable@sha256=');
    const tampered = await berthPull('tampered');
    expect((tampered as { details: string }).details).toMatch(/Signature for digest sha256:[a-f0-9]{64} does not match$/);
    const moved = await berthPull('moved');
    expect((moved as { details: string }).details).toContain(`Signature for identity ${ref('signed')} is not accepted`);
  });

  it("admits a signed image, runs what it verified, and shows what admitted it in ImageStatus verbose", async () => {
    const t0 = performance.now();
    expect(await berthPull('signed')).toEqual({ ok: true });
    const ms = performance.now() - t0;
    console.log(`[trust] a verified pull of a one-layer image: ${ms.toFixed(0)} ms`);
    const status = await berthd.client.image.ImageStatus({ image: { image: ref('signed') }, verbose: true });
    const info = JSON.parse(status.info.info) as { manifestDigests: string[]; trust: { policy: string; scope: string; admittedBy: string[]; digest: string } };
    expect(info.trust).toMatchObject({ policy: policyFile('signed-by-a'), scope: host, admittedBy: [`signedBy: GPG key ${fingerprints.a}, identity ${ref('signed')}`] });
    expect(status.image!.repo_digests).toEqual([`${host}/trust/signed@${info.trust.digest}`]);
    expect(info.manifestDigests).toEqual([info.trust.digest]);
  });

  it('runs a container of a signed image, from the manifest it verified', async () => {
    const digest = await pushImage({ host, repository: 'trust/busybox' }, busyboxImage(), ['1']);
    await sign('busybox', fingerprints.a);
    expect(await berthPull('busybox', 'signed-by-a')).toEqual({ ok: true });
    const image = (await berthd.client.image.ImageStatus({ image: { image: ref('busybox') }, verbose: true }));
    expect((JSON.parse(image.info.info) as { trust: { digest: string } }).trust.digest).toBe(digest);
    const config: PodSandboxConfig = { ...podIn('signed-by-a'), log_directory: path.join(dir, 'logs'), linux: { security_context: { namespace_options: { network: 'NODE' } } } };
    const rt = berthd.client.runtime;
    const pod = (await rt.RunPodSandbox({ config })).pod_sandbox_id;
    try {
      const id = (await rt.CreateContainer({ pod_sandbox_id: pod, config: { metadata: { name: 'main', attempt: 0 }, image: { image: ref('busybox') }, command: ['echo', 'signed and running'], log_path: 'main.log' }, sandbox_config: config })).container_id;
      await rt.StartContainer({ container_id: id });
      const status = await until('the container to exit', async () => {
        const s = (await rt.ContainerStatus({ container_id: id })).status!;
        return s.state === 'CONTAINER_EXITED' ? s : undefined;
      }, 30_000);
      // What runs is what was verified: the container's image is the verified manifest's.
      expect({ exit: status.exit_code, image: status.image_ref }).toEqual({ exit: 0, image: `${host}/trust/busybox@${digest}` });
      expect(fs.readFileSync(path.join(dir, 'logs', 'main.log'), 'utf8')).toMatch(/ stdout F signed and running\n$/);
    } finally {
      await rt.RemovePodSandbox({ pod_sandbox_id: pod });
    }
  });

  it("judges a pod's pull by its namespace's own policy, over the node's", async () => {
    // The node's policy refuses the unsigned image; the namespace accept-all admits it for its pods.
    expect(await berthPull('unsigned')).toMatchObject({ ok: false, code: 2 });
    expect(await berthPull('unsigned', 'accept-all')).toEqual({ ok: true });
    const info = JSON.parse((await berthd.client.image.ImageStatus({ image: { image: ref('unsigned') }, verbose: true })).info.info) as { trust: { policy: string; admittedBy: string[] } };
    expect(info.trust).toMatchObject({ policy: policyFile('accept-all'), admittedBy: ['insecureAcceptAnything'] });
    // A namespace without a file of its own is judged by the node's policy.
    expect(await berthPull('other-key', 'no-policy-here')).toMatchObject({ ok: false, code: 2 });
    await berthd.client.image.RemoveImage({ image: { image: ref('unsigned') } });
  });

  it('checks the identity the pod asked for, not the mirror it came from; a mirror-only registry is never contacted; a blocked one never pulled', async () => {
    const pull = (image: string, namespace: string) =>
      berthd.client.image.PullImage({ image: { image }, sandbox_config: podIn(namespace) }).then(
        () => ({ ok: true as const }),
        (e: { code: number; details: string }) => ({ ok: false as const, code: e.code, details: e.details }),
      );
    // The mirror serves trust/signed, whose signature names the mirror's own name: not upstream.test's.
    expect(await pull('upstream.test/trust/signed:1', 'mirror-identity')).toMatchObject({ ok: false, code: 2, details: expect.stringContaining(`Signature for identity ${ref('signed')} is not accepted`) });
    // Remapped (upstream.test is signed as the registry it mirrors), it is admitted.
    expect(await pull('upstream.test/trust/signed:1', 'mirror-remapped')).toEqual({ ok: true });
    // Only the mirror is asked: the failure names it alone, never upstream.test itself.
    const missing = await pull('upstream.test/trust/missing:1', 'accept-all');
    expect(missing).toMatchObject({ ok: false, code: 14 });
    expect((missing as { details: string }).details).toMatch(new RegExp(`^registry upstream\\.test unreachable for manifest of upstream\\.test/trust/missing:1: mirror http://${host.replace(/[.]/g, '\\.')}: [^;]*$`));
    expect(await pull('blocked.test/trust/signed:1', 'accept-all')).toMatchObject({ ok: false, code: 9, details: expect.stringContaining('registry blocked.test is blocked') });
  });

  it('`berthd config` shows the policy in force, each namespace\'s too, and refuses one that cannot be applied', async () => {
    const shown = await runBerthd(['config', '--config', berthd.configPath]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`# The image trust policy in force (image.trust):\n# ${policyFile('signed-by-a')}\n#   default: reject\n#   docker "${host}": signedBy GPG ${fingerprints.a}\n#   docker "${host}/trust/rejected": reject\n`);
    expect(shown.stdout).toContain(`# namespace remap-moved: ${policyFile('remap-moved')}\n`);
    expect(shown.stdout).toContain(`#   docker "${host}/trust/moved": signedBy GPG ${fingerprints.a} identity remapIdentity ${host}/trust/moved -> ${host}/trust/signed\n`);
    fs.writeFileSync(policyFile('broken'), JSON.stringify({ default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/nonexistent.gpg' }] }));
    try {
      const refused = await runBerthd(['config', '--config', berthd.configPath]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`berthd: the trust policy ${policyFile('broken')} cannot be applied: default[0]: reading /nonexistent.gpg`);
      // A pull judged by it fails as a precondition (the node's configuration), never as the image's fault.
      expect(await berthPull('signed', 'broken')).toMatchObject({ ok: false, code: 9, details: expect.stringContaining('the trust policy cannot be applied') });
    } finally {
      fs.rmSync(policyFile('broken'));
    }
  });

  it('counts verifications by result and requirement in berth_image_signature_verifications_total', async () => {
    const line = berthd.output().split('\n').find((l) => l.includes('serving metrics'));
    const port = (JSON.parse(line ?? '{}') as { address?: { port: number } }).address?.port;
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const count = (result: string, reason: string) => Number(new RegExp(`^berth_image_signature_verifications_total\\{result="${result}",reason="${reason}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    // The table alone: each policy judged every image (signedBy accepted and refused, reject, accept-all).
    expect(count('accepted', 'signedBy')).toBeGreaterThanOrEqual(5);
    expect(count('rejected', 'signedBy')).toBeGreaterThanOrEqual(10);
    expect(count('rejected', 'reject')).toBeGreaterThanOrEqual(1);
    expect(count('accepted', 'insecureAcceptAnything')).toBeGreaterThanOrEqual(IMAGES.length);
  });

  describe('sigstore signatures (cosign attachments)', () => {
    let keys: Record<'right' | 'wrong', crypto.KeyPairKeyObjectResult>;

    /** Attaches a cosign signature to the image: the sha256-<hex>.sig tag, one simple-signing layer. */
    /** Attaches a cosign signature; `vouch` adds the annotations of a keyless signature (certificate, chain, Rekor bundle). */
    async function attach(
      repository: string,
      digest: string,
      claims: { reference: string; digest: string },
      key: crypto.KeyObject,
      vouch: (payload: Buffer, signature: Buffer) => Record<string, string> = () => ({}),
    ): Promise<void> {
      const payload = Buffer.from(JSON.stringify({ critical: { identity: { 'docker-reference': claims.reference }, image: { 'docker-manifest-digest': claims.digest }, type: 'cosign container image signature' }, optional: null }));
      const signature = crypto.sign('sha256', payload, key);
      // Cross-checked with OpenSSL, which no one here wrote.
      const pub = path.join(dir, `${repository.replace('/', '-')}.pem`);
      fs.writeFileSync(pub, crypto.createPublicKey(key).export({ type: 'spki', format: 'pem' }));
      fs.writeFileSync(`${pub}.payload`, payload);
      fs.writeFileSync(`${pub}.sig`, signature);
      expect(execFileSync('openssl', ['dgst', '-sha256', '-verify', pub, '-signature', `${pub}.sig`, `${pub}.payload`], { encoding: 'utf8' }).trim()).toBe('Verified OK');
      const layerBlob = { ...jsonBlob('application/vnd.dev.cosign.simplesigning.v1+json', {}), data: payload, digest: `sha256:${crypto.createHash('sha256').update(payload).digest('hex')}`, size: payload.length };
      const config = jsonBlob(MEDIA.ociConfig, { architecture: '', os: '', config: {}, rootfs: { type: 'layers', diff_ids: [] } });
      const target = { host, repository };
      await pushBlob(target, layerBlob);
      await pushBlob(target, config);
      const manifest = jsonBlob(MEDIA.ociManifest, {
        schemaVersion: 2,
        mediaType: MEDIA.ociManifest,
        config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
        layers: [{ mediaType: layerBlob.mediaType, digest: layerBlob.digest, size: layerBlob.size, annotations: { 'dev.cosignproject.cosign/signature': signature.toString('base64'), ...vouch(payload, signature) } }],
      });
      await pushManifest(target, `${digest.replace(':', '-')}.sig`, manifest);
    }

    beforeAll(async () => {
      keys = { right: crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }), wrong: crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }) };
      fs.writeFileSync(path.join(dir, 'cosign.pub'), keys.right.publicKey.export({ type: 'spki', format: 'pem' }));
      writePolicy('sigstore', { [host]: [{ type: 'sigstoreSigned', keyPath: path.join(dir, 'cosign.pub') }] });
      const push = async (name: string) => pushImage({ host, repository: `trust/${name}` }, imageOf(name), ['1']);
      const good = await push('cosigned');
      await attach('trust/cosigned', good, { reference: ref('cosigned'), digest: good }, keys.right.privateKey);
      const wrongKey = await push('cosigned-wrong-key');
      await attach('trust/cosigned-wrong-key', wrongKey, { reference: ref('cosigned-wrong-key'), digest: wrongKey }, keys.wrong.privateKey);
      const wrongDigest = await push('cosigned-wrong-digest');
      await attach('trust/cosigned-wrong-digest', wrongDigest, { reference: ref('cosigned-wrong-digest'), digest: good }, keys.right.privateKey);
      const wrongIdentity = await push('cosigned-wrong-identity');
      await attach('trust/cosigned-wrong-identity', wrongIdentity, { reference: ref('cosigned'), digest: wrongIdentity }, keys.right.privateKey);
      await push('cosign-unsigned');
    });

    describe('keyless: a Fulcio certificate, logged by Rekor', () => {
      const issuer = 'https://issuer.berth.test';
      const email = 'dev@berth.test';
      let rekor: crypto.KeyPairKeyObjectResult;
      let otherRekor: crypto.KeyPairKeyObjectResult;
      const pki = () => path.join(dir, 'pki');
      const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: pki(), stdio: ['ignore', 'pipe', 'pipe'] });

      /** A CA (root, or intermediate under `parent`), as Fulcio's: key and certificate in pki/. */
      function makeCa(name: string, parent?: string): void {
        openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
        const ext = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'];
        if (!parent) {
          openssl('req', '-x509', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-days', '2', '-out', `${name}.pem`, ...ext.flatMap((e) => ['-addext', e]));
          return;
        }
        openssl('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`);
        fs.writeFileSync(path.join(pki(), `${name}.ext`), `${ext.join('\n')}\n`);
        openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${parent}.pem`, '-CAkey', `${parent}.key`, '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
      }

      /** A signing certificate as Fulcio issues one: code signing, the email as SAN, the OIDC issuer extension. */
      function makeLeaf(name: string, ca: string, leafEmail: string, leafIssuer: string): { key: crypto.KeyObject; pem: string } {
        openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);
        openssl('req', '-new', '-key', `${name}.key`, '-subj', '/O=sigstore.dev', '-out', `${name}.csr`);
        // prettier-ignore
        fs.writeFileSync(path.join(pki(), `${name}.ext`), [
          'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=codeSigning',
          `subjectAltName=email:${leafEmail}`, `1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:${leafIssuer}`, '',
        ].join('\n'));
        openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
        return { key: crypto.createPrivateKey(fs.readFileSync(path.join(pki(), `${name}.key`))), pem: fs.readFileSync(path.join(pki(), `${name}.pem`), 'utf8') };
      }

      /** cosign's annotations for a keyless signature: the certificate, the chain, and Rekor's bundle (SET over the entry). */
      const keyless =
        (leafPem: string, chain: string, opts: { rekorKey?: crypto.KeyObject; integratedTime?: number; bundle?: boolean } = {}) =>
        (payload: Buffer, signature: Buffer): Record<string, string> => {
          const out: Record<string, string> = { 'dev.sigstore.cosign/certificate': leafPem, 'dev.sigstore.cosign/chain': chain };
          if (opts.bundle === false) return out;
          const body = Buffer.from(JSON.stringify({
            apiVersion: '0.0.1',
            kind: 'hashedrekord',
            spec: {
              data: { hash: { algorithm: 'sha256', value: crypto.createHash('sha256').update(payload).digest('hex') } },
              signature: { content: signature.toString('base64'), publicKey: { content: Buffer.from(leafPem).toString('base64') } },
            },
          })).toString('base64');
          const logID = crypto.createHash('sha256').update(rekor.publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
          // Canonical JSON (RFC 8785 for these values): the keys sorted, no white space.
          const entry = { body, integratedTime: opts.integratedTime ?? Math.floor(Date.now() / 1000), logID, logIndex: 7 };
          const set = crypto.sign('sha256', Buffer.from(JSON.stringify(entry)), opts.rekorKey ?? rekor.privateKey);
          out['dev.sigstore.cosign/bundle'] = JSON.stringify({ SignedEntryTimestamp: set.toString('base64'), Payload: entry });
          return out;
        };

      beforeAll(async () => {
        fs.mkdirSync(pki());
        rekor = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
        otherRekor = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
        fs.writeFileSync(path.join(pki(), 'rekor.pub'), rekor.publicKey.export({ type: 'spki', format: 'pem' }));
        makeCa('fulcio-root');
        makeCa('fulcio-intermediate', 'fulcio-root');
        makeCa('other-root');
        const chain = fs.readFileSync(path.join(pki(), 'fulcio-intermediate.pem'), 'utf8');
        writePolicy('keyless', {
          [host]: [{ type: 'sigstoreSigned', fulcio: { caPath: path.join(pki(), 'fulcio-root.pem'), oidcIssuer: issuer, subjectEmail: email }, rekorPublicKeyPath: path.join(pki(), 'rekor.pub') }],
        });
        const cases: Array<[string, { key: crypto.KeyObject; pem: string }, Parameters<typeof keyless>[2]]> = [
          ['keyless', makeLeaf('good', 'fulcio-intermediate', email, issuer), {}],
          ['keyless-other-email', makeLeaf('other-email', 'fulcio-intermediate', 'mallory@berth.test', issuer), {}],
          ['keyless-other-issuer', makeLeaf('other-issuer', 'fulcio-intermediate', email, 'https://evil.test'), {}],
          ['keyless-other-ca', makeLeaf('other-ca', 'other-root', email, issuer), {}],
          ['keyless-no-rekor', makeLeaf('no-rekor', 'fulcio-intermediate', email, issuer), { bundle: false }],
          ['keyless-other-rekor', makeLeaf('other-rekor', 'fulcio-intermediate', email, issuer), { rekorKey: otherRekor.privateKey }],
          ['keyless-logged-outside-validity', makeLeaf('late', 'fulcio-intermediate', email, issuer), { integratedTime: Math.floor(Date.now() / 1000) + 3 * 86400 }],
        ];
        for (const [name, leaf, opts] of cases) {
          const digest = await pushImage({ host, repository: `trust/${name}` }, imageOf(name), ['1']);
          await attach(`trust/${name}`, digest, { reference: ref(name), digest }, leaf.key, keyless(leaf.pem, chain, opts));
        }
      });

      it.each([
        ['keyless', ''],
        ['keyless-other-email', 'the certificate is for mallory@berth.test, not dev@berth.test'],
        ['keyless-other-issuer', 'the certificate\'s OIDC issuer "https://evil.test" is not "https://issuer.berth.test"'],
        ['keyless-other-ca', 'the certificate does not chain to a Fulcio root of the policy'],
        ['keyless-no-rekor', 'missing dev.sigstore.cosign/bundle annotation'],
        ['keyless-other-rekor', 'not signed by a Rekor key of the policy'],
        ['keyless-logged-outside-validity', 'is not valid at'],
      ] as const)('%s', async (image, reason) => {
        const result = await berthPull(image, 'keyless');
        if (!reason) {
          expect(result).toEqual({ ok: true });
          const info = JSON.parse((await berthd.client.image.ImageStatus({ image: { image: ref(image) }, verbose: true })).info.info) as { trust: { admittedBy: string[] } };
          expect(info.trust.admittedBy[0]).toMatch(new RegExp(`^sigstoreSigned: Fulcio certificate for ${email} \\(issuer ${issuer}\\), logged by Rekor at `));
        } else {
          expect(result).toMatchObject({ ok: false, code: 2, details: expect.stringContaining(reason) });
        }
      });
    });

    it.each([
      ['cosigned', true, ''],
      ['cosigned-wrong-key', false, 'cryptographic signature verification failed'],
      ['cosigned-wrong-digest', false, 'does not match'],
      ['cosigned-wrong-identity', false, 'Signature for identity'],
      ['cosign-unsigned', false, 'A signature was required, but no sigstore signature exists'],
    ] as const)('%s: admitted %s', async (image, admitted, reason) => {
      const result = await berthPull(image, 'sigstore');
      if (admitted) {
        expect(result).toEqual({ ok: true });
        const info = JSON.parse((await berthd.client.image.ImageStatus({ image: { image: ref(image) }, verbose: true })).info.info) as { trust: { admittedBy: string[] } };
        expect(info.trust.admittedBy).toEqual([`sigstoreSigned: sigstore key 1, identity ${ref(image)}`]);
      } else {
        expect(result).toMatchObject({ ok: false, code: 2, details: expect.stringContaining(reason) });
      }
    });
  });
});
