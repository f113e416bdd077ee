import type { ExecRequest__Output } from '../../generated/runtime/v1/ExecRequest';
import type { ExecResponse } from '../../generated/runtime/v1/ExecResponse';
import { FailedPreconditionError, InvalidArgumentError } from '../../errors';
import type { UnaryHandler } from '../instrument';
import { execCommand } from './field-rules';
import type { ServerDeps } from '../deps';

export function exec(deps: ServerDeps): UnaryHandler<ExecRequest__Output, ExecResponse> {
  return async (request) => {
    if (!request.container_id) throw new InvalidArgumentError('Exec: container_id is empty');
    execCommand('Exec', request.cmd);
    const record = await deps.containers.status(request.container_id);
    if (record.state !== 'running') throw new FailedPreconditionError(`Exec: container ${record.id} is not running (${record.state})`);
    const url = deps.streaming.register({ containerId: record.id, cmd: request.cmd, tty: request.tty, stdin: request.stdin, stdout: request.stdout, stderr: request.stderr });
    return { url };
  };
}
