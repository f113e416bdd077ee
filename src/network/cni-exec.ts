// Runs one CNI plugin binary as the CNI spec says: the command and context in CNI_* environment
// variables, the network configuration on stdin, the result (or a structured error) on stdout.
import fs from 'node:fs';
import path from 'node:path';
import { CommandTimeoutError, describeEnd, runCommand, type CommandResult } from '../util/spawn';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION';

export interface PluginCall {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS: `K=V;K=V`. */
  args: string;
  pluginDirs: readonly string[];
  config: Record<string, unknown>;
  timeoutMs: number;
}

export class CniError extends Error {
  constructor(
    message: string,
    readonly plugin: string,
    readonly cniCode?: number,
  ) {
    super(message);
    this.name = 'CniError';
  }
}

/** Finds a plugin binary by type in the plugin dirs, in order. A type is a file name, never a path. */
export function findPlugin(type: string, pluginDirs: readonly string[]): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(type)) throw new CniError(`invalid CNI plugin type ${JSON.stringify(type)}`, type);
  for (const dir of pluginDirs) {
    const candidate = path.join(dir, type);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not in this dir
    }
  }
  throw new CniError(`CNI plugin "${type}" not found in ${pluginDirs.join(', ')}`, type);
}

interface CniErrorBody {
  code?: number;
  msg?: string;
  details?: string;
}

function describeFailure(type: string, command: CniCommand, stdout: string, stderr: string, status: string): CniError {
  let body: CniErrorBody = {};
  try {
    body = JSON.parse(stdout) as CniErrorBody;
  } catch {
    // not a structured error
  }
  const what = [body.msg, body.details].filter(Boolean).join(': ') || stderr.trim() || stdout.trim() || status;
  return new CniError(`CNI plugin ${type} ${command} failed: ${what}`, type, body.code);
}

/** Runs the plugin; resolves its parsed stdout (undefined when empty, as DEL and CHECK may answer). */
export async function execPlugin(type: string, call: PluginCall): Promise<Record<string, unknown> | undefined> {
  const binary = findPlugin(type, call.pluginDirs);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.containerId,
    CNI_NETNS: call.netns,
    CNI_IFNAME: call.ifname,
    CNI_ARGS: call.args,
    CNI_PATH: call.pluginDirs.join(':'),
  };
  let end: CommandResult;
  try {
    end = await runCommand([binary], { env, input: JSON.stringify(call.config), timeoutMs: call.timeoutMs });
  } catch (err) {
    if (err instanceof CommandTimeoutError) throw new CniError(`CNI plugin ${type} ${call.command} timed out after ${call.timeoutMs / 1000}s`, type);
    throw new CniError(`cannot run CNI plugin ${binary}: ${(err as Error).message}`, type);
  }
  if (end.code !== 0) throw describeFailure(type, call.command, end.stdout, end.stderr, describeEnd(end));
  if (end.stdout.trim() === '') return undefined;
  try {
    return JSON.parse(end.stdout) as Record<string, unknown>;
  } catch {
    throw new CniError(`CNI plugin ${type} ${call.command} printed a result that is not JSON: ${end.stdout.slice(0, 200)}`, type);
  }
}
