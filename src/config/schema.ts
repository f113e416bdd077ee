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
    cgroup_driver: str('cgroup driver reported to the kubelet. Only cgroupfs is supported so far.', 'cgroupfs', {
      oneOf: ['cgroupfs'],
    }),
    default_handler: str('Handler used when a pod names no RuntimeClass handler.', 'berth'),
    handlers: mapOf('OCI runtime handlers by name.', handler, {
      berth: { runtime_path: 'builtin' },
      runc: { runtime_path: '/usr/bin/runc' },
    }),
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
  }),
});

export type BerthConfig = Infer<typeof configSchema>;
export type HandlerConfig = BerthConfig['runtime']['handlers'][string];
