import type { ExecSyncRequest__Output } from '../../generated/runtime/v1/ExecSyncRequest';
import type { ExecSyncResponse } from '../../generated/runtime/v1/ExecSyncResponse';
import { InvalidArgumentError } from '../../errors';
import type { UnaryHandler } from '../instrument';
import { execCommand } from './field-rules';
import type { ServerDeps } from '../deps';

export function execSync(deps: ServerDeps): UnaryHandler<ExecSyncRequest__Output, ExecSyncResponse> {
  return async (request) => {
    const timeout = Number(request.timeout);
    if (timeout < 0) throw new InvalidArgumentError(`ExecSync: timeout is ${timeout}; it must be 0 (none) or more seconds`);
    const result = await deps.containers.execSync(request.container_id, execCommand('ExecSync', request.cmd), timeout);
    return { stdout: result.stdout, stderr: result.stderr, exit_code: result.exitCode };
  };
}
