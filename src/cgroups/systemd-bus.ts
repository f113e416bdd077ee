// The few calls berthd makes to systemd's manager over the system D-Bus (org.freedesktop.systemd1):
// transient units started and stopped, each call waiting for its job to finish as runc and crun do.
import type dbusNative from '@homebridge/dbus-native';
import type { Logger } from 'pino';

const MANAGER = { destination: 'org.freedesktop.systemd1', path: '/org/freedesktop/systemd1', interface: 'org.freedesktop.systemd1.Manager' };
const JOB_TIMEOUT_MS = 30_000;

/** A unit property as StartTransientUnit takes it: a name and a variant given as [signature, value]. */
export type UnitProperty = [name: string, value: [signature: string, value: unknown]];

interface BusError {
  name: string;
  message: unknown;
}

/** The part of @homebridge/dbus-native's MessageBus berthd uses (its typings leave out signals and addMatch). */
interface Bus {
  connection: NodeJS.EventEmitter & { stream?: { end(): void } };
  signals: NodeJS.EventEmitter;
  invoke(message: object, callback: (err: BusError | undefined, value: never) => void): void;
  addMatch(rule: string, callback: (err?: BusError) => void): void;
}

export class SystemdError extends Error {
  constructor(
    message: string,
    readonly dbusName?: string,
  ) {
    super(message);
  }
}

export class SystemdManager {
  private bus: Bus | undefined;
  private subscribed: Promise<void> | undefined;
  /** Jobs berthd waits for, by object path; and results that arrived before their caller asked. */
  private readonly waiting = new Map<string, (result: string) => void>();
  private readonly finished = new Map<string, string>();

  constructor(private readonly log: Logger) {}

  private connect(): Bus {
    if (this.bus) return this.bus;
    // Loaded with the systemd driver only: the D-Bus library and its XML parser are megabytes a cgroupfs node never needs.
    const dbus = require('@homebridge/dbus-native') as typeof dbusNative;
    const bus = dbus.systemBus() as unknown as Bus;
    bus.connection.on('error', (err: Error) => {
      this.log.warn({ error: err.message }, 'systemd D-Bus connection failed; the next call reconnects');
      if (this.bus === bus) {
        this.bus = undefined;
        this.subscribed = undefined;
      }
    });
    bus.connection.on('end', () => {
      if (this.bus === bus) {
        this.bus = undefined;
        this.subscribed = undefined;
      }
    });
    const signal = JSON.stringify({ path: MANAGER.path, interface: MANAGER.interface, member: 'JobRemoved' });
    bus.signals.on(signal, (body: [number, string, string, string]) => this.jobRemoved(body[1], body[3]));
    this.bus = bus;
    return bus;
  }

  private jobRemoved(job: string, result: string): void {
    const resolve = this.waiting.get(job);
    if (resolve) {
      this.waiting.delete(job);
      resolve(result);
    } else {
      this.finished.set(job, result);
      // A job nobody waits for (another client's, or one whose caller gave up) is not kept for long.
      setTimeout(() => this.finished.delete(job), JOB_TIMEOUT_MS).unref();
    }
  }

  private invoke<T>(member: string, signature: string, body: unknown[], target = MANAGER): Promise<T> {
    const bus = this.connect();
    return new Promise((resolve, reject) => {
      bus.invoke({ ...target, member, signature, body }, (err: BusError | undefined, value: T) => {
        if (err) reject(new SystemdError(`systemd ${member} failed: ${err.name}: ${String(err.message)}`, err.name));
        else resolve(value);
      });
    });
  }

  /** Asks systemd for its manager signals (JobRemoved) once per connection. */
  private subscribe(): Promise<void> {
    this.subscribed ??= (async () => {
      const bus = this.connect();
      await new Promise<void>((resolve, reject) =>
        bus.addMatch(`type='signal',sender='${MANAGER.destination}',path='${MANAGER.path}',interface='${MANAGER.interface}',member='JobRemoved'`, (err?: BusError) =>
          err ? reject(new SystemdError(`D-Bus AddMatch failed: ${String(err.message)}`)) : resolve(),
        ),
      );
      await this.invoke('Subscribe', '', []);
    })().catch((err: unknown) => {
      this.subscribed = undefined;
      throw err;
    });
    return this.subscribed;
  }

  private waitForJob(job: string, what: string): Promise<string> {
    const early = this.finished.get(job);
    if (early !== undefined) {
      this.finished.delete(job);
      return Promise.resolve(early);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(job);
        reject(new SystemdError(`systemd did not finish ${what} within ${JOB_TIMEOUT_MS / 1000} s`));
      }, JOB_TIMEOUT_MS);
      this.waiting.set(job, (result) => {
        clearTimeout(timer);
        resolve(result);
      });
    });
  }

  /** Starts a transient unit (a scope or a slice) and waits until systemd has started it. */
  async startTransientUnit(name: string, properties: UnitProperty[]): Promise<void> {
    await this.subscribe();
    const job = await this.invoke<string>('StartTransientUnit', 'ssa(sv)a(sa(sv))', [name, 'fail', properties, []]);
    const result = await this.waitForJob(job, `starting ${name}`);
    if (result !== 'done') throw new SystemdError(`systemd could not start ${name}: job ${result} (journalctl -u ${name})`);
  }

  /** Stops a unit and waits for it; a unit systemd does not know (any more) is fine. */
  async stopUnit(name: string): Promise<void> {
    await this.subscribe();
    let job: string;
    try {
      job = await this.invoke<string>('StopUnit', 'ss', [name, 'replace']);
    } catch (err) {
      if (err instanceof SystemdError && err.dbusName === 'org.freedesktop.systemd1.NoSuchUnit') return;
      throw err;
    }
    const result = await this.waitForJob(job, `stopping ${name}`);
    if (result !== 'done') throw new SystemdError(`systemd could not stop ${name}: job ${result}`);
  }

  close(): void {
    this.bus?.connection.stream?.end();
    this.bus = undefined;
    this.subscribed = undefined;
  }
}
