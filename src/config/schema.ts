// Every key of berth.toml, with its default and meaning. `berthd config` prints this as commented TOML.
import { bool, int, mapOf, str, strList, table, type Infer } from './schema-kit';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

const handler = table('An OCI runtime handler, selected by a pod\'s RuntimeClass.', {
  runtime_path: str(
    'Path of the OCI runtime binary (runc command-line subset). "builtin" means berth\'s own berth-runtime.',
    'builtin',
  ),
  runtime_root: str('State directory the runtime keeps its containers in; empty means <state>/runtime/<handler>.', '', {
    allowEmpty: true,
  }),
});

const registry = table('Settings for one registry host (e.g. "docker.io", "registry.k8s.io", "127.0.0.1:5000").', {
  mirrors: strList(
    'Endpoints tried in order before the registry itself, e.g. "http://127.0.0.1:5000" or "mirror.example:443".',
    [],
  ),
  insecure: bool(
    'Allow plain HTTP and unverified TLS. localhost and 127.0.0.0/8 are always insecure, as in Docker.',
    false,
  ),
  ca_file: str('PEM file of CA certificates to trust for this registry, in addition to the system ones.', '', {
    allowEmpty: true,
  }),
  mirror_only: bool(
    'Pull only through the mirrors: the registry\'s own host is never contacted (an air-gapped node). Needs mirrors.',
    false,
  ),
  blocked: bool('Refuse every pull of an image of this registry, through mirrors too.', false),
});

export const configSchema = table('berth configuration', {
  listen: str('Unix socket the CRI gRPC API is served on.', '/run/berth/berth.sock', { absolutePath: true }),
  root: str('Persistent data: images, layers, pod and container records.', '/var/lib/berth', { absolutePath: true }),
  state: str('Volatile state, gone at reboot: pinned namespaces, bundles, monitor sockets.', '/run/berth', {
    absolutePath: true,
  }),
  log_level: str('Least severe log level written.', 'info', { oneOf: LOG_LEVELS }),
  log_format: str('Log format: "json", "text", or "auto" (text when stderr is a terminal).', 'auto', {
    oneOf: ['auto', 'json', 'text'],
  }),
  shutdown_timeout_seconds: int('On SIGTERM/SIGINT, how long in-flight calls may run before they are cut.', 10, {
    min: 0,
    max: 3600,
  }),

  metrics: table('Prometheus metrics over HTTP.', {
    enabled: bool('Serve /metrics.', false),
    address: str('Address the metrics endpoint binds to.', '127.0.0.1'),
    port: int('Port of the metrics endpoint (0 picks a free port and logs it).', 9090, { min: 0, max: 65535 }),
  }),

  runtime: table('Container runtime settings.', {
    cgroup_driver: str(
      'How pod and container cgroups are made: "cgroupfs" (directories under /sys/fs/cgroup) or "systemd" (slices and transient scopes over D-Bus; needs systemd as init). Must match the kubelet\'s cgroupDriver; RuntimeConfig reports it.',
      'cgroupfs',
      { oneOf: ['cgroupfs', 'systemd'] },
    ),
    default_handler: str('Handler used when a pod names no RuntimeClass handler.', 'berth'),
    cdi_spec_dirs: strList(
      'Directories of CDI spec files (JSON or YAML) that define the devices a container may name (CDI_devices, cdi.k8s.io/ annotations); a later directory wins over an earlier one.',
      ['/etc/cdi', '/var/run/cdi'],
    ),
    handlers: mapOf('OCI runtime handlers by name.', handler, {
      berth: { runtime_path: 'builtin' },
      runc: { runtime_path: '/usr/bin/runc' },
    }, 'crun'),
  }),

  image: table('Image pulls and the image store.', {
    max_concurrent_downloads: int('Layers of 4 MiB or more downloaded at once per pull (twice as many smaller ones).', 3, { min: 1, max: 64 }),
    pull_progress_timeout_seconds: int(
      'A pull that receives no data for this long is cancelled (0 disables the check).',
      60,
      { min: 0, max: 86400 },
    ),
    progress_log_interval_seconds: int('How often a pull in progress logs its per-layer progress.', 5, {
      min: 1,
      max: 3600,
    }),
    platform: str('Platform chosen from multi-platform images, as os/architecture[/variant].', 'linux/amd64'),
    max_layer_bytes: int('Largest uncompressed layer accepted (decompression-bomb guard).', 64 * 1024 ** 3, {
      min: 1024,
      max: Number.MAX_SAFE_INTEGER,
    }),
    max_layer_entries: int('Most files a layer may hold (decompression-bomb guard).', 2_000_000, {
      min: 1,
      max: 1_000_000_000,
    }),
    auth_file: str('Registry credentials in Docker config.json format ({"auths": {...}}); empty for none.', '', {
      allowEmpty: true,
    }),
    pinned_images: strList('Images reported as pinned, so the kubelet never garbage-collects them.', []),
    registries: mapOf('Per-registry settings, keyed by registry host.', registry, {}, 'docker.io'),
    trust: table('Image signature verification at pull (docs/signed-images.md).', {
      policy: str(
        'The node\'s trust policy, a containers-policy.json(5) file (as CRI-O, podman and skopeo read it); empty accepts every image unverified.',
        '',
        { allowEmpty: true, absolutePath: true },
      ),
      namespace_policy_dir: str(
        'Directory of per-namespace policies: <dir>/<namespace>.json, if present, replaces the node\'s policy for pulls of pods in that Kubernetes namespace; empty for none.',
        '',
        { allowEmpty: true, absolutePath: true },
      ),
      registries_d: str(
        'Directory of registries.d(5) YAML files: where each registry\'s signatures are (lookaside, use-sigstore-attachments).',
        '/etc/containers/registries.d',
        { absolutePath: true },
      ),
    }),
  }),

  streaming: table('The streaming server Exec, Attach and PortForward point clients to.', {
    address: str('Address it listens on (the kubelet, or crictl, connects there).', '127.0.0.1'),
    port: int('Port it listens on; 0 picks a free port.', 0, { min: 0, max: 65535 }),
    tls_cert_file: str('Serve HTTPS with this PEM certificate (and tls_key_file); empty for plain HTTP.', '', { allowEmpty: true }),
    tls_key_file: str('PEM private key of tls_cert_file.', '', { allowEmpty: true }),
    url_ttl_seconds: int('How long a URL an Exec, Attach or PortForward call returned stays usable.', 60, { min: 1, max: 3600 }),
    idle_timeout_seconds: int('A session with no traffic for this long is closed.', 4 * 3600, { min: 1, max: 7 * 86400 }),
  }),

  network: table('CNI networking.', {
    conf_dir: str('Directory of CNI network configurations (.conflist, .conf, .json).', '/etc/cni/net.d', {
      absolutePath: true,
    }),
    plugin_dirs: strList('Directories searched for CNI plugin binaries, in order.', ['/opt/cni/bin', '/usr/lib/cni'], {
      absolutePath: true,
    }),
    network_name: str('Name of the CNI network to use; empty means the lexically first config file.', '', {
      allowEmpty: true,
    }),
    plugin_timeout_seconds: int('Longest a CNI plugin may run before it is killed and the call fails.', 60, {
      min: 1,
      max: 600,
    }),
  }),
});

export type BerthConfig = Infer<typeof configSchema>;
export type HandlerConfig = BerthConfig['runtime']['handlers'][string];
