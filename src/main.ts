#!/usr/bin/env -S node --max-semi-space-size=1
// berthd: the berth CRI runtime daemon. Sub-commands: serve (default), config, version.
import { loadConfig } from './config/load';
import { parseArgs, usage, UsageError, type ParsedArgs } from './config/flags';
import { printConfig } from './config/print';
import { describeTrust } from './image/trust/describe';
import { configSchema, type BerthConfig } from './config/schema';
import { ConfigError } from './config/schema-kit';
import { BerthError } from './errors';
import { startDaemon } from './daemon';
import { createLogger } from './log';
import { versionReport } from './util/version-report';
import { ImageService } from './image/image-service';
import { createMetrics } from './metrics/registry';

const EXIT_USAGE = 2;

function configFrom(args: ParsedArgs): BerthConfig {
  return loadConfig({ path: args.configPath, explicit: args.configExplicit }, args.overrides);
}

async function serve(config: BerthConfig): Promise<void> {
  const log = createLogger({ level: config.log_level, format: config.log_format });
  const daemon = await startDaemon(config, log).catch((err: Error) => {
    log.fatal({ err }, `berthd failed to start: ${err.message}`);
    process.exit(1);
  });
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    daemon.stop(signal).then(
      () => process.exit(0),
      (err: Error) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/** `berthd images import FILE...`: loads archives into the store a running berthd (or the next) serves. */
async function imagesCommand(config: BerthConfig, args: string[]): Promise<void> {
  const [sub, ...files] = args;
  if (sub !== 'import' || files.length === 0) throw new UsageError('usage: berthd images import FILE [FILE...]');
  const log = createLogger({ level: 'warn', format: config.log_format });
  const images = await ImageService.open(config.root, config.image, log, createMetrics(false).pull);
  for (const file of files) {
    for (const image of await images.importArchive(file)) {
      process.stdout.write(`imported ${image.repoTags.join(', ') || '(untagged)'} ${image.id}\n`);
    }
  }
}

async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const [command = 'serve', ...rest] = args.command;
  if (rest.length && command !== 'images') throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
  switch (command) {
    case 'serve':
      return serve(configFrom(args));
    case 'config': {
      const config = configFrom(args);
      process.stdout.write(printConfig(configSchema, config));
      // The trust policy is read at each pull, not at start-up: shown (and checked) here.
      process.stdout.write(await describeTrust(config.image.trust));
      return;
    }
    case 'images':
      return imagesCommand(configFrom(args), rest);
    case 'version':
      process.stdout.write(versionReport());
      return;
    case 'help':
      process.stdout.write(usage());
      return;
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) {
    process.stderr.write(`berthd: ${err.message}\n\n${usage()}`);
  } else if (err instanceof ConfigError) {
    process.stderr.write(`berthd: invalid configuration: ${err.message}\n`);
  } else if (err instanceof BerthError) {
    process.stderr.write(`berthd: ${err.message}\n`);
    process.exit(1);
  } else {
    process.stderr.write(`berthd: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  }
  process.exit(EXIT_USAGE);
});
